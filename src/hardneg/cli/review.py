"""`review export` and `review import`: a human review round trip for negatives through Label Studio."""

from __future__ import annotations

from pathlib import Path

import typer

from hardneg.cli.common import app, console, print_counts, user_errors

review_app = typer.Typer(
    help="Human review of negatives in Label Studio: export tasks, import the annotations.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")


@review_app.command("export")
def export_command(
    inputs: list[Path] = typer.Argument(
        ..., help="Run folders (from `hardneg run`) or triplet files (JSONL)."
    ),
    per_source: int = typer.Option(
        ..., "--per-source", "-n", min=1, help="Negatives drawn at random per source."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Folder for tasks.json, labeling_config.xml, key.json."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the draw and of the task order."),
    borderline: int = typer.Option(
        0,
        "--borderline",
        min=0,
        help="Up to this many more per source whose audit margin is nearest a class boundary.",
    ),
    scorer: str = typer.Option(
        None,
        "--scorer",
        help="Audit triplet files with this scorer ('dense:MODEL' or 'cross-encoder:MODEL').",
    ),
) -> None:
    """Write a Label Studio project folder: tasks without their source, and key.json kept apart."""
    from hardneg.review import export_review

    with user_errors():
        counts = export_review(inputs, output, per_source, borderline=borderline, seed=seed, scorer=scorer)
    print_counts(counts, f"wrote {output}")
    console.print("annotators get tasks.json and labeling_config.xml; key.json stays with you", markup=False)


@review_app.command("import")
def import_command(
    export: Path = typer.Argument(..., help="Label Studio's JSON export (a list of tasks with annotations)."),
    key: Path = typer.Option(None, "--key", help="key.json from `review export` (default: beside EXPORT)."),
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="Folder for review.md and review.json (default: the key's); "
        "a review of one run also goes into the run.",
    ),
) -> None:
    """Label shares per source, agreement between annotators, and the audit against the humans."""
    from hardneg.review import import_review

    with user_errors():
        report = import_review(export, key, output)
    f, audit = report["fleiss"], report["audit"]
    console.print(
        f"{report['labelled_items']} items labelled; "
        f"Fleiss' kappa {f['kappa'] if f['kappa'] is None else round(f['kappa'], 3)} "
        f"over {f['items']} items; audit vs humans: Cohen's kappa "
        f"{audit['cohen_kappa'] if audit['cohen_kappa'] is None else round(audit['cohen_kappa'], 3)} "
        f"over {audit['items']} items",
        markup=False,
        highlight=False,
    )
    for folder in report["written"]:
        console.print(f"wrote {Path(folder) / 'review.md'}, review.json", markup=False, highlight=False)
