"""The contract every stage kind keeps: one small class per kind declares its config type, its
inputs, its output, its resources, and how it runs, estimates and records itself. The planner, the
dry run, the executors and the report all read these declarations instead of keeping their own."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from hardneg.config import Settings, key_settings
from hardneg.manifest import write_manifest


class Resources(BaseModel):
    """What an executor reserves for one stage (Ray: ``num_cpus``, ``num_gpus``, ``memory``)."""

    cpus: float = 1.0
    gpus: float = 0.0
    gpus_if_any: float = 0.0
    """GPUs it takes when the cluster has them (a device left to choose itself: None = 'a GPU when there is one')."""
    memory_gb: float = 1.0

    def describe(self) -> str:
        gpus = f", {self.gpus:g} GPU" if self.gpus else f", {self.gpus_if_any:g} GPU if any" if self.gpus_if_any else ""
        return f"{self.cpus:g} CPU{gpus}, ~{self.memory_gb:g} GB"


class Estimate(BaseModel):
    """The dry run's view of a stage: its work in its own units and a rough CPU time. ``pairs`` and
    ``documents`` flow downstream so a training stage can size itself from its pairs."""

    work: str = ""
    seconds: float | None = None
    """Rough seconds on 2 CPU cores; None when it depends on what we cannot see (a server, remote data)."""
    pairs: int | None = None
    documents: int | None = None
    text_chars: int | None = None
    """Mean characters of a pair's query + positive: sizes an LLM's prompts."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


class InputSpec(BaseModel):
    """One named input of a kind: another stage's output."""

    many: bool = False
    optional: bool = False


@dataclass
class StageCall:
    """Everything ``run`` gets: the typed config, input paths by role, where to write."""

    config: Any
    inputs: dict[str, list[Path]]
    output: Path
    label: str
    show_progress: bool
    context: RunContext

    def input(self, role: str) -> Path | None:
        paths = self.inputs.get(role) or []
        return paths[0] if paths else None


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


INPUT = "@input:"
"""A config value ``@input:ROLE`` stands for the output path of the stage's input ROLE (a model
trained upstream): the key then holds the upstream key, never a path that depends on the run folder."""


def input_ref(role: str) -> str:
    return INPUT + role


class StageKind:
    """Subclass once per kind and register it in ``hardneg.stages.KINDS``."""

    name: ClassVar[str]
    """The kind as users read it: 'mine', 'train', 'evaluate'..."""
    folder: ClassVar[str]
    """Where its outputs go under ``RUN/stages/``."""
    config_type: ClassVar[type[Settings]]
    inputs: ClassVar[dict[str, InputSpec]] = {}
    suffix: ClassVar[str] = ".jsonl"
    """The output's suffix; '' for a folder (a model)."""
    done_file: ClassVar[str | None] = None
    """For a folder output: the file written last, whose presence means done."""
    own_manifest: ClassVar[bool] = False
    """Its pipeline function writes the manifest itself (the stand-alone command's, with its counts)."""
    reads_dataset: ClassVar[bool] = False
    """Its config names a dataset, whose files' identity enters the key."""

    def key_settings(self, config: Settings) -> dict[str, Any]:
        """Its result-relevant settings (runtime fields are marked in the config types)."""
        return key_settings(config)

    def resources(self, config: Settings, estimate: Estimate) -> Resources:
        return Resources(memory_gb=_memory_gb(estimate))

    def model(self, config: Settings) -> str | None:
        """The model (and endpoint) it uses, for the dry run."""
        return None

    def estimate(self, config: Settings, inputs: dict[str, list[Estimate]], data: DataSizes) -> Estimate:
        return Estimate()

    def leftovers(self, output: Path, label: str) -> list[Path]:
        """What an interrupted run leaves that this stage resumes from."""
        return []

    def run(self, call: StageCall) -> dict[str, Any] | None:
        """Write ``call.output`` last and atomically; return counts for the manifest."""
        raise NotImplementedError

    def manifest(self, call: StageCall, counts: dict[str, Any] | None, seconds: float) -> None:
        """Every stage leaves ``<output>.manifest.json``; kinds whose pipeline function writes a
        richer one (``own_manifest``) keep theirs."""
        if self.own_manifest:
            return
        inputs = {f"{role}{i or ''}": path for role, paths in call.inputs.items() for i, path in enumerate(paths)}
        write_manifest(call.output, self.name, call.config, inputs, counts or {}, {"total_s": round(seconds, 3)})

    def parse(self, config: dict[str, Any]) -> Settings:
        return self.config_type.model_validate(config)

    def done_marker(self, output: Path) -> Path:
        return output / self.done_file if self.done_file else output


def execute(kind: StageKind, call: StageCall) -> dict[str, Any] | None:
    """Run one stage and write its manifest: what both executors call, in whatever process."""
    began = time.perf_counter()
    call.output.parent.mkdir(parents=True, exist_ok=True)
    dumped = call.config.model_dump()
    resolved = _resolve_refs(dumped, call)
    if resolved != dumped:  # '@input:ROLE' -> the upstream output's path, as this process sees it
        call.config = type(call.config).model_validate(resolved)
    counts = kind.run(call)
    kind.manifest(call, counts, time.perf_counter() - began)
    return counts


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


class DataSizes:
    """Dataset sizes for estimates, counted from files (lines, judgments) without loading a corpus;
    None for data that is not local (a dry run never downloads)."""

    def __init__(self, data_root: str | None):
        self.data_root = data_root
        self._folders: dict[str, Path | None] = {}
        self._counts: dict[tuple[str, str], Any] = {}

    def folder(self, name: str) -> Path | None:
        from hardneg.data.registry import resolve_dataset
        from hardneg.errors import HardnegError

        if name not in self._folders:
            try:
                self._folders[name] = resolve_dataset(name, self.data_root, download=False)
            except HardnegError:
                self._folders[name] = None
        return self._folders[name]

    def documents(self, name: str) -> int | None:
        from hardneg.data.registry import PUBLISHED_SIZES

        folder = self.folder(name)
        if folder is None:
            return PUBLISHED_SIZES.get(name)
        if (name, "corpus") not in self._counts:
            self._counts[(name, "corpus")] = _count_lines(folder / "corpus.jsonl")
        return self._counts[(name, "corpus")]

    def pairs(self, name: str, split: str, one_per_query: bool) -> int | None:
        """(query, positive) pairs of a split: counted, or the published count of data not yet here."""
        from hardneg.data.registry import PUBLISHED_TRAIN

        qrels = self.qrels(name, split)
        if qrels is not None:
            return len(qrels) if one_per_query else sum(qrels.values())
        published = PUBLISHED_TRAIN.get(name) if split == "train" and self.folder(name) is None else None
        return published[0 if one_per_query else 1] if published else None

    def text_chars(self, name: str, sample: int = 500) -> int:
        """Mean characters of a query plus a document, from the first ``sample`` lines of each file;
        400 (an MS MARCO passage and its query) for data that is not here."""
        folder = self.folder(name)
        if folder is None:
            return 400
        if (name, "chars") not in self._counts:
            total = 0
            for file in ("queries.jsonl", "corpus.jsonl"):
                lengths = []
                with (folder / file).open(encoding="utf-8") as handle:
                    for line, _ in zip(handle, range(sample)):
                        record = json.loads(line)
                        lengths.append(len(record.get("title", "")) + len(record.get("text", "")))
                total += sum(lengths) // max(1, len(lengths))
            self._counts[(name, "chars")] = total
        return self._counts[(name, "chars")]

    def qrels(self, name: str, split: str) -> dict[str, int] | None:
        """Positive judgments per query in a split."""
        folder = self.folder(name)
        if folder is None or not (folder / "qrels" / f"{split}.tsv").is_file():
            return None
        if (name, split) not in self._counts:
            from hardneg.data.beir import Problems, read_qrels

            qrels = read_qrels(folder / "qrels" / f"{split}.tsv", Problems(strict=False))  # ids not checked: no corpus
            positives = {q: sum(grade > 0 for grade in docs.values()) for q, docs in qrels.items()}
            self._counts[(name, split)] = {q: n for q, n in positives.items() if n}
        return self._counts[(name, split)]


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            count += block.count(b"\n")
    return count


def _memory_gb(estimate: Estimate) -> float:
    """A model process (~1.5 GB) plus ~3 KB per document held (text, tokens, vectors)."""
    return round(1.5 + (estimate.documents or 0) * 3e-6, 1)


def cuda(device: str | None) -> bool:
    return bool(device) and str(device).startswith("cuda")


def gpus_for(device: str | None, devices: list[str] | None = None) -> float:
    """GPUs a stage asks for: one per CUDA device it names."""
    if devices:
        return float(sum(cuda(d) for d in devices))
    return 1.0 if cuda(device) else 0.0


def machine() -> dict[str, int]:
    """Cores and GPUs of this machine, for the dry run."""
    gpus = 0
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception:  # noqa: BLE001  (no torch, or a broken CUDA install: count none)
        pass
    return {"cpus": os.cpu_count() or 1, "gpus": gpus}

