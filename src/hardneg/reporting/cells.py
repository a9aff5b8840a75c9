"""Reading a study's results.json and plan.json: a row's value in a column, the base model's
values, a stage's settings as its key sees them. Shared by the report's sections."""

from __future__ import annotations

from typing import Any

from hardneg.experiment.planfile import StageNode


def keyed(stage: StageNode) -> dict[str, Any]:
    """A stage's settings as its key sees them: those that decide its output and differ from their
    defaults (no ports, timeouts or process counts). The raw config where its kind cannot read it."""
    from pydantic import ValidationError

    from hardneg.core.errors import HardnegError
    from hardneg.settings.base import key_settings
    from hardneg.stages.registry import kind_of

    try:
        return key_settings(kind_of(stage.kind).config_type.model_validate(stage.config))
    except (HardnegError, ValidationError):
        return stage.config


def cell_value(row: dict, column: str, metric: str) -> float | None:
    """A row's ``metric`` in ``column`` of results.json, or None where that cell was not run."""
    entry = row["cells"].get(column, {}).get("metrics", {}).get(metric)
    return None if entry is None else entry["value"]


def base_values(results: dict[str, Any]) -> dict[str, float | None]:
    """The base model's main-metric value per column (none without a base row)."""
    base_row = next((r for r in results["rows"] if r["source"] == "base"), None)
    metric = results["metrics"][0]
    return {} if base_row is None else {c: cell_value(base_row, c, metric) for c in base_row["cells"]}


def signed(value: float | None, reference: float | None) -> str:
    """``value`` against ``reference``: the difference and its share of the reference, or "-"."""
    if value is None or reference is None:
        return "-"
    relative = f" ({(value - reference) / reference:+.1%})" if reference else ""
    return f"{value - reference:+.4f}{relative}"


def row_audit(results: dict[str, Any], train: str | None, source: str) -> dict[str, Any] | None:
    """The audit of a row's negatives on its training set (its first scorer's), or None."""
    return next(iter(results.get("audits", {}).get(f"{train}/{source}", {}).values()), None)


def number(value: float | None, form: str = ".4f") -> str:
    """A figure in a table cell, or "-" where there is none."""
    return "-" if value is None else format(value, form)
