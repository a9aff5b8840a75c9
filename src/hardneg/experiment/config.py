"""Reading a grid's TOML: ``--set`` overrides, then validation into ``ExperimentSettings``
(``hardneg.settings.experiment``), with errors that name the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hardneg._moved import moved_from
from hardneg.core.errors import HardnegError, KeyedError
from hardneg.settings.experiment import SOURCE_TYPES, ExperimentSettings


def apply_overrides(data: dict, overrides: dict[str, Any], path: Path) -> dict:
    """``{"pairs.max_pairs": 48}``: set dotted keys (creating tables) before validation."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        table = data
        for depth, part in enumerate(parts[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise HardnegError(f"{path}: --set {dotted}: {'.'.join(parts[: depth + 1])} is not a table")
        table[parts[-1]] = value
    return data


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables, or a one-line error naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HardnegError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise HardnegError(f"{path}: not valid TOML: {exc}") from None


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentSettings:
    """Parse and validate a TOML experiment (with ``--set`` overrides); errors name the file and the key."""
    path = Path(path)
    overrides = overrides or {}
    return validate_experiment(apply_overrides(read_toml(path), overrides, path), path, set(overrides))


def validate_experiment(
    data: dict[str, Any], path: str | Path, overridden: set[str] = frozenset()
) -> ExperimentSettings:
    """A grid's tables validated, or one line naming ``path`` (a file, or what made the tables)
    and the key; ``--set`` before it when the value came from the command line, not the file."""
    try:
        return ExperimentSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        if loc[:1] == ["sources"] and len(loc) > 2 and loc[2] in SOURCE_TYPES:  # the union's tag: its kind
            del loc[2]
        where = ".".join(str(part) for part in loc) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        error = first.get("ctx", {}).get("error")
        if isinstance(error, KeyedError):  # a check across keys names its own (below ``loc``)
            where, message = ".".join([*map(str, loc), error.key]), error.message
        raise HardnegError(f"{path}: {'--set ' if where in overridden else ''}{where}: {message}") from None


__getattr__ = moved_from(__name__)
