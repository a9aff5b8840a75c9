"""Training: bi-encoders on triplets (`train`) and the cross-encoder used for mining."""

from __future__ import annotations

from pathlib import Path


def latest_checkpoint(folder: Path) -> str | None:
    """The trainer's newest ``checkpoint-<step>`` (by step number, not name) to resume from."""
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(checkpoints[-1]) if checkpoints else None
