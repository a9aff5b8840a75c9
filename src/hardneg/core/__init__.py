"""What every part of hardneg leans on: one-line errors, atomic writes, manifests, model names,
lazily loaded package names and console output that stays readable in a pipe."""
