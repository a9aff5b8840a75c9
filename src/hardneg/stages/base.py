"""The contract every stage kind keeps: one small class per kind declares its config type, its
inputs and how a grid wires them, its output, and how it runs; the planner, the dry run, the
executors, the CLI and the report read these declarations instead of keeping their own. Estimates
live in ``stages.estimates``, resources and the machine probe in ``stages.resources``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from hardneg.core.manifest import committed, write_manifest
from hardneg.settings.base import Settings, key_settings
from hardneg.settings.sources import SourceSettings
from hardneg.stages.corpus import spec_reads_corpus
from hardneg.stages.estimates import DataSizes, Estimate, memory_gb
from hardneg.stages.resources import Resources

if TYPE_CHECKING:
    from hardneg.experiment.planfile import StageNode
    from hardneg.stages.wiring import SourceContext


class InputSpec(BaseModel):
    """One named input of a kind: another stage's output."""

    many: bool = False
    optional: bool = False


@dataclass
class RunContext:
    """Per-process caches shared by the stages one process runs (a local run, or one Ray worker)."""

    datasets: dict[str, Any] = field(default_factory=dict)
    scorers: dict[Any, Any] = field(default_factory=dict)

    def dataset(self, name: str, data_root: str | None):
        from hardneg.data.registry import load_dataset

        if (name, data_root) not in self.datasets:
            self.datasets[(name, data_root)] = load_dataset(name, data_root)
        return self.datasets[(name, data_root)]

    def release(self, name: str) -> None:
        """Free a dataset after the last stage that reads it."""
        for key in [k for k in self.datasets if k[0] == name]:
            del self.datasets[key]


@dataclass
class StageCall:
    """Everything ``run`` gets: the typed config, input paths by role, where to write."""

    config: Any
    inputs: dict[str, list[Path]]
    output: Path
    label: str
    show_progress: bool
    context: RunContext = field(default_factory=RunContext)
    in_grid: bool = False
    """Run by ``hardneg run``: stores of LLM answers are shared by a run's stages, not kept beside one
    output."""

    def input(self, role: str) -> Path | None:
        paths = self.inputs.get(role) or []
        return paths[0] if paths else None


@dataclass
class StageResult:
    """What a stage's domain function reports: the manifest's counts and timings, and the files it
    read besides its inputs (a dataset folder). The contract writes the manifest from it."""

    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    read: dict[str, Path | str] = field(default_factory=dict)
    reused: bool = False
    """The output was already there from the same inputs and settings (a trained model): its manifest
    stands, and the output is not hashed again."""


INPUT = "@input:"
"""A config value ``@input:ROLE`` stands for the output path of the stage's input ROLE (a model
trained upstream): the key then holds the upstream key, never a path that depends on the run folder."""


def input_ref(role: str) -> str:
    return INPUT + role


def scores_with_corpus_knowledge(config: Settings) -> bool:
    """Whether a stage's filters or ``score_with`` name, by its path, a model that learned from a
    corpus's negatives (``stages.corpus``: what its records say it was trained on)."""
    filters = getattr(config, "filters", None)
    specs = [getattr(filters, "scorer", None), getattr(config, "score_with", None)]
    return any(spec_reads_corpus(spec) for spec in specs)


class StageKind:
    """Subclass once per kind and ``hardneg.stages.register`` an instance (or name it in the
    ``hardneg.stages`` entry point group of an installed package)."""

    name: ClassVar[str]
    """The kind as users read it: 'mine', 'train', 'evaluate'..."""
    title: ClassVar[str] = ""
    """How tables and reports name its stages ('mined negatives'); default: the name."""
    folder: ClassVar[str]
    """Where its outputs go under ``RUN/stages/``."""
    config_type: ClassVar[type[Settings]]
    inputs: ClassVar[dict[str, InputSpec]] = {}
    suffix: ClassVar[str] = ".jsonl"
    """The output's suffix; '' for a folder (a model)."""
    done_file: ClassVar[str | None] = None
    """For a folder output: the file written last, whose presence means done."""
    reads_dataset: ClassVar[bool] = False
    """Its config names a dataset (``DatasetRef``): the plan binds it, and the files' identity enters the
    key."""
    command: ClassVar[str | None] = None
    """Its own CLI command ('mine'); None: ``hardneg stage NAME``, made from its config."""
    source: ClassVar[bool] = False
    """Its output is a triplets file that a grid trains on: a ``[sources.NAME.<name>]`` table."""
    source_settings: ClassVar[type[SourceSettings] | None] = None
    """The grid table of a source kind; None: a table holding its config under its name."""

    @property
    def label(self) -> str:
        return self.title or self.name

    @property
    def cli(self) -> str:
        return self.command or f"stage {self.name}"

    def upstream(self, source: SourceSettings) -> list[str]:
        """The other sources (by grid name) a source of this kind is made from."""
        return []

    def check_source(self, name: str, source: SourceSettings, sources: dict[str, SourceSettings]) -> None:
        """Raise ``KeyedError(key, message)`` (or ValueError) for a grid source that cannot be planned;
        default: an unknown upstream name."""
        SourceSettings.check(source, name, sources)

    def wire(self, source: SourceSettings, context: SourceContext) -> StageNode:
        """Add this source's stages for one dataset; default: its config, fed the dataset's pairs."""
        return context.add(self.name, getattr(source, source.kind), {"pairs": [context.pairs]})

    def reads_corpus(self, config: Settings) -> bool:
        """Whether it reads its dataset's corpus beyond the pairs' own positives: a row trained on
        what such a stage made, directly or upstream, is not corpus-free (evaluation reads it by
        design and does not count). Default: whether it reads a dataset at all, or scores with a
        cross-encoder hardneg trained on corpus negatives."""
        return self.reads_dataset or scores_with_corpus_knowledge(config)

    def key_settings(self, config: Settings) -> dict[str, Any]:
        """Its result-relevant settings (runtime fields are marked in the config types)."""
        return key_settings(config)

    def resources(self, config: Settings, estimate: Estimate) -> Resources:
        return Resources(memory_gb=memory_gb(estimate))

    def model(self, config: Settings) -> str | None:
        """The model (and endpoint) it uses, for the dry run."""
        return None

    def estimate(self, config: Settings, inputs: dict[str, list[Estimate]], data: DataSizes) -> Estimate:
        return Estimate()

    def leftovers(self, output: Path, label: str) -> list[Path]:
        """What an interrupted run leaves that this stage resumes from."""
        return []

    def run(self, call: StageCall) -> StageResult | dict[str, Any] | None:
        """Write ``call.output`` last and atomically; return what the manifest records."""
        raise NotImplementedError

    def parse(self, config: dict[str, Any]) -> Settings:
        return self.config_type.model_validate(config)

    def done_marker(self, output: Path) -> Path:
        return output / self.done_file if self.done_file else output


def execute(kind: StageKind, call: StageCall) -> StageResult:
    """Run one stage and write its manifest (the one place that does): what both executors and
    every stage command call, in whatever process."""
    began = time.perf_counter()
    call.output.parent.mkdir(parents=True, exist_ok=True)
    dumped = call.config.model_dump()
    resolved = _resolve_refs(dumped, call)
    if resolved != dumped:  # '@input:ROLE' -> the upstream output's path, as this process sees it
        call.config = type(call.config).model_validate(resolved)
    result = kind.run(call)
    if not isinstance(result, StageResult):
        result = StageResult(counts=dict(result or {}))
    kept = result.reused and committed(call.output, kind.done_marker(call.output))
    if os.environ.get("RANK", "0") == "0" and not kept:  # under torchrun, rank 0 alone writes
        inputs = {
            f"{role}{i or ''}": path for role, paths in call.inputs.items() for i, path in enumerate(paths)
        }
        timings = {**result.timings, "total_s": round(time.perf_counter() - began, 3)}
        write_manifest(call.output, kind.name, call.config, {**inputs, **result.read}, result.counts, timings)
    return result


def _resolve_refs(value: Any, call: StageCall) -> Any:
    """Every '@input:ROLE' in a config, also nested or after a prefix ('cross-encoder:@input:scorer')."""
    if isinstance(value, str) and INPUT in value:
        head, _, role = value.partition(INPUT)
        return head + str(call.input(role))
    if isinstance(value, dict):
        return {key: _resolve_refs(item, call) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve_refs(item, call) for item in value)
    return value
