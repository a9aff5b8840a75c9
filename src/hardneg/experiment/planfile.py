"""``plan.json``, read and written through one typed model: the stages of a run (what the executors
ship to workers) and the cells of its table (what the report reads back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hardneg.core.errors import HardnegError
from hardneg.core.io import write_json
from hardneg.stages.estimates import Estimate
from hardneg.stages.resources import Resources

PLAN_FILE = "plan.json"


class StageNode(BaseModel):
    """One stage of a run: its kind's config (as JSON), where its inputs and output live (relative
    to the run folder, so a worker that mounts the folder elsewhere finds them), and its needs."""

    kind: str
    label: str
    key: str
    output: str
    deps: list[str] = []
    """Keys of the stages it waits for."""
    inputs: dict[str, list[str]] = {}
    """Input role -> upstream outputs (relative paths)."""
    config: dict[str, Any]
    model: str | None = None
    resources: Resources = Resources()
    estimate: Estimate = Estimate()
    reads_corpus: bool = False
    """It reads its dataset's corpus beyond the pairs' positives (``StageKind.reads_corpus``)."""
    data_path: str | None = None
    """Where its dataset resolved when the run was planned (a real run only)."""
    data_sha: str | None = None
    """The content hash of that dataset's files: a worker that reads other data stops the stage."""

    @property
    def title(self) -> str:
        return f"{self.kind} {self.label}"


class CellRef(BaseModel):
    """One row x column of the results: a source's model (or the base model) on a test set."""

    source: str
    label: str
    train: str | None
    test: str
    evaluation: str
    negatives: str | None = None
    audit: str | None = None
    model: str | None = None
    pool: str | None = None
    kind: str | None = None
    """The stage kind that made the source's negatives ('mine', 'generate', 'combine', a plugin's)."""
    corpus_reads: list[str] | None = None
    """The stages upstream of its training that read the train dataset's corpus (beyond the pairs'
    positives): none means the row is corpus-free. None: unknown (a plan of an older version)."""

    more_pairs: list[str] = []
    """Pairs stages upstream of its training besides the row's own training pairs (a pool drawn
    from more pairs, ``pool_pairs``): the row saw pairs that the others never see."""

    @property
    def corpus_free(self) -> bool | None:
        return None if self.corpus_reads is None else not self.corpus_reads


class PlanFile(BaseModel):
    name: str
    base_model: str
    baseline: str | None
    metrics: list[str]
    evaluation: dict[str, Any]
    audit: dict[str, Any]
    notes: list[str]
    cells: list[CellRef]
    stages: list[StageNode] = []

    def write(self, run_dir: Path) -> None:
        write_json(run_dir / PLAN_FILE, self.model_dump(mode="json"))

    @classmethod
    def read(cls, run_dir: Path) -> PlanFile:
        path = Path(run_dir) / PLAN_FILE
        if not path.exists():
            raise HardnegError(
                f"{run_dir}: no plan.json (not a run folder, or `hardneg run` has not started there)"
            )
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise HardnegError(
                f"{path}: {where}: {first['msg']} (written by another hardneg version?)"
            ) from None
