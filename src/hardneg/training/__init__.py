"""Training: bi-encoders on triplets (`train`) and the cross-encoder used for mining."""

from __future__ import annotations

from pathlib import Path


def latest_checkpoint(folder: Path) -> str | None:
    """The trainer's newest complete ``checkpoint-<step>`` (by step number, not name) to resume
    from. The trainer writes ``trainer_state.json`` last: a folder without it was cut short by a
    kill while saving, and is passed over for the one before."""
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    complete = [p for p in checkpoints if (p / "trainer_state.json").exists()]
    return str(complete[-1]) if complete else None
