"""One stage outside a grid: what each stage command and the Python API call, so a stand-alone
output gets the same manifest a grid's does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.settings.base import Settings
from hardneg.stages.base import StageCall, StageResult, execute
from hardneg.stages.registry import kind_of


def run_kind(
    kind: str,
    config: Settings | dict[str, Any],
    inputs: dict[str, Path | str | list[Path | str]],
    output: Path | str,
    show_progress: bool = True,
    label: str | None = None,
) -> StageResult:
    """Run stage kind ``kind`` on ``inputs`` (role -> path, or paths for a 'many' input) into ``output``."""
    stage = kind_of(kind)
    if not isinstance(config, Settings):
        config = stage.parse(config)
    paths = {
        role: [Path(p) for p in (value if isinstance(value, list) else [value])]
        for role, value in inputs.items()
    }
    output = Path(output)
    call = StageCall(config, paths, output, label or output.name, show_progress)
    return execute(stage, call)
