"""The study as a graph of stages. Each stage's key hashes its settings and its inputs' keys, and
its output path carries the key: a rerun finds the file and skips the stage, a changed setting
gives a new key to that stage and everything downstream of it, and nothing else moves."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hardneg.config import EvaluateConfig
from hardneg.errors import HardnegError
from hardneg.experiment.config import DatasetSpec, ExperimentConfig, SourceSpec

PLAN_VERSION = 1
"""Bumped when a stage's outputs change meaning, so old caches are not reused."""

BASE = "base"
"""The row of the base model without fine-tuning."""


@dataclass
class Stage:
    kind: str
    """'pairs', 'cross-encoder', 'negatives', 'model', 'pool', 'evaluation', 'audit'."""
    label: str
    key: str
    output: Path
    deps: list[Stage]
    action: Callable[[Stage, bool], None]
    """Runs the stage: (this stage, show_progress); writes ``output`` last and atomically."""
    work: str = ""
    """What the stage costs, in its own units (pairs, steps, documents), for the dry run."""
    seconds: float | None = None
    """A rough 2-core CPU estimate; None when it depends on something we cannot see (a server)."""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done_marker(self) -> Path:
        """Directories are done when their last-written file exists; files when they exist."""
        marker = self.info.get("done_file")
        return self.output / marker if marker else self.output

    @property
    def done(self) -> bool:
        return self.done_marker.exists()

    @property
    def partial(self) -> bool:
        """Something an interrupted run left that the stage resumes from."""
        return any(Path(p).exists() for p in self.info.get("resume_from", []))


@dataclass
class Cell:
    """One row x column of the results: a source's model (or the base model) on a test set."""

    source: str
    label: str
    train: str | None
    test: str
    evaluation: Stage
    negatives: Stage | None = None
    audit: Stage | None = None
    model: Stage | None = None


@dataclass
class Plan:
    run_dir: Path
    config: ExperimentConfig
    stages: list[Stage]
    cells: list[Cell]
    notes: list[str]

    def describe(self) -> dict[str, Any]:
        """What the report needs to find every result again: written as plan.json."""
        return {
            "name": self.config.name,
            "base_model": self.config.base_model,
            "baseline": self.config.baseline,
            "metrics": list(self.config.evaluation.metrics),
            "evaluation": self.config.evaluation.model_dump(mode="json"),
            "audit": self.config.audit.model_dump(mode="json"),
            "notes": self.notes,
            "cells": [
                {
                    "source": cell.source,
                    "label": cell.label,
                    "train": cell.train,
                    "test": cell.test,
                    "evaluation": str(cell.evaluation.output.relative_to(self.run_dir)),
                    "negatives": str(cell.negatives.output.relative_to(self.run_dir))
                    if cell.negatives
                    else None,
                    "audit": str(cell.audit.output.relative_to(self.run_dir)) if cell.audit else None,
                    "model": str(cell.model.output.relative_to(self.run_dir)) if cell.model else None,
                    "pool": _relative(cell.evaluation.info.get("pool"), self.run_dir),
                }
                for cell in self.cells
            ],
        }


def _relative(stage: Stage | None, run_dir: Path) -> str | None:
    return str(stage.output.relative_to(run_dir)) if stage is not None else None


def answer_store(stage: Stage) -> Path:
    """One store of LLM answers per source and dataset, whatever the settings: a rerun with, say, more
    attempts re-sends nothing it already asked (answers are keyed by the exact request)."""
    return stage.output.parent / f"{_slug(stage.label)}.responses.jsonl"


def stage_key(kind: str, settings: Any, deps: list[Stage], identity: Any = None) -> str:
    payload = {
        "version": PLAN_VERSION,
        "kind": kind,
        "settings": settings,
        "deps": [d.key for d in deps],
        "identity": identity,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def dataset_identity(name: str, data_root: str | None, fetch: bool) -> dict[str, Any]:
    """Name plus its files' sizes: data edited in place gets new keys, a copy elsewhere does not.
    A real run fetches a missing dataset first (it needs it anyway), so its keys do not change after
    the download; a dry run never downloads and keys such a dataset by name."""
    from hardneg.data.registry import BEIR_DATASETS, resolve_dataset

    try:
        folder = resolve_dataset(name, data_root, download=fetch)
    except HardnegError:
        if fetch or name not in BEIR_DATASETS:
            raise  # a dry run too: a name that is neither local nor downloadable can never run
        return {"name": name}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".jsonl", ".tsv"})
    return {"name": name, "files": [[str(p.relative_to(folder)), p.stat().st_size] for p in files]}


OPERATIONAL = {
    "generate": {
        "concurrency",
        "timeout",
        "max_retries",
        "backoff",
        "backoff_max",
        "slots",
        "port",
        "threads",
        "api_key_env",
    },
    "train": {"device"},
    "dense": {"batch_size", "corpus_chunk_size", "cache_embeddings"},
    "mine": {"batch_size"},
}
"""Settings that change how fast or where a stage runs, not what it makes: left out of keys, so
raising the concurrency does not retrain every model downstream."""


def result_settings(settings: dict[str, Any], kind: str) -> dict[str, Any]:
    """The settings that go into a key (the data root is out: the dataset's identity is in)."""
    dropped = OPERATIONAL.get(kind, set()) | {"data_root"}
    kept = {k: v for k, v in settings.items() if k not in dropped}
    if isinstance(kept.get("dense"), dict):
        kept["dense"] = result_settings(kept["dense"], "dense")
    return kept


class PlanBuilder:
    """Builds the stages once each: a stage another already made (same key) is shared."""

    def __init__(
        self, config: ExperimentConfig, run_dir: Path, actions: Any, estimates: Any, fetch: bool = False
    ):
        self.config = config
        self.fetch = fetch
        self.run_dir = run_dir
        self.actions = actions
        self.estimates = estimates
        self.stages: dict[str, Stage] = {}

    def add(
        self, kind: str, label: str, settings: Any, deps: list[Stage], suffix: str, identity: Any = None,
        resume: tuple[str, ...] = (), **info: Any,
    ) -> Stage:  # fmt: skip
        """``resume``: suffixes of what an interrupted stage leaves beside its output to resume from."""
        key = stage_key(kind, settings, deps, identity)
        if key in self.stages:
            return self.stages[key]
        folder = {"pairs": "pairs", "cross-encoder": "cross-encoders", "negatives": "negatives", "model": "models",
                  "pool": "pools", "evaluation": "evaluations", "audit": "audits"}[kind]  # fmt: skip
        output = self.run_dir / "stages" / folder / f"{_slug(label)}-{key}{suffix}"
        stage = Stage(
            kind, label, key, output, deps, getattr(self.actions, kind.replace("-", "_")), info=info
        )
        stage.info["settings"] = settings
        stage.info["resume_from"] = [output.with_name(output.name + end) for end in resume]
        if info.get("answers"):
            stage.info["resume_from"].append(answer_store(stage))
        self.estimates.fill(stage)
        self.stages[key] = stage
        return stage


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def build_plan(
    config: ExperimentConfig, run_dir: str | Path, actions: Any, estimates: Any, fetch: bool = False
) -> Plan:
    run_dir = Path(run_dir)
    builder = PlanBuilder(config, run_dir, actions, estimates, fetch)
    cells: list[Cell] = []
    for spec in config.datasets:
        pairs = _pairs_stage(builder, spec)
        negatives: dict[str, Stage] = {}
        for name in config.source_order():
            negatives[name] = _negatives_stage(builder, spec, name, config.sources[name], pairs, negatives)
        for test in spec.tests:
            pool = _pool_stage(builder, test, spec.test_split)
            base = _evaluation_stage(builder, BASE, config.base_model, None, test, spec.test_split, pool)
            cells.append(Cell(BASE, f"{BASE} ({config.base_model})", None, test, base))
            for name in config.source_order():
                model = _model_stage(builder, spec.train, name, negatives[name])
                evaluation = _evaluation_stage(
                    builder, name, str(model.output), model, test, spec.test_split, pool
                )
                audit = None
                if config.audit.enabled:
                    audit = builder.add(
                        "audit",
                        f"{spec.train}-{name}",
                        config.audit.model_dump(mode="json", exclude={"enabled"})
                        | {"scorer": _audit_scorer(config)},
                        [negatives[name]],
                        ".json",
                        triplets=negatives[name].output,
                    )
                label = config.sources[name].label or name
                cells.append(Cell(name, label, spec.train, test, evaluation, negatives[name], audit, model))
    return Plan(run_dir, config, list(builder.stages.values()), cells, _notes(config))


def _audit_scorer(config: ExperimentConfig) -> str:
    return config.audit.scorer or f"dense:{config.base_model}"


def _pairs_stage(builder: PlanBuilder, spec: DatasetSpec) -> Stage:
    config = builder.config.pairs.model_copy(
        update={"dataset": spec.train, "split": spec.train_split, "data_root": builder.config.data_root}
    )
    identity = dataset_identity(spec.train, config.data_root, builder.fetch)
    settings = result_settings(config.model_dump(mode="json"), "pairs")
    return builder.add("pairs", spec.train, settings, [], ".jsonl", identity=identity, config=config)


def _negatives_stage(
    builder: PlanBuilder,
    spec: DatasetSpec,
    name: str,
    source: SourceSpec,
    pairs: Stage,
    made: dict[str, Stage],
) -> Stage:
    label = f"{spec.train}-{name}"
    root = builder.config.data_root
    if source.generate is not None:
        settings = result_settings(source.generate.model_dump(mode="json"), "generate")
        return builder.add("negatives", label, settings, [pairs], ".jsonl", method="generate", config=source.generate,
                           answers=True)  # fmt: skip
    if source.combine is not None:
        inputs = [made[item] for item in source.combine.inputs]
        config = source.combine
        settings = result_settings(config.model_dump(mode="json"), "combine")
        return builder.add("negatives", label, settings, inputs, ".jsonl", method="combine", config=config)
    mine = source.mine.model_copy(update={"dataset": spec.train, "data_root": root})
    deps = [pairs]
    if source.train_cross_encoder is not None:
        ce_config = source.train_cross_encoder.model_copy(update={"dataset": spec.train, "data_root": root})
        ce = builder.add("cross-encoder", f"{spec.train}-{name}", result_settings(ce_config.model_dump(mode="json"), "cross-encoder"), [pairs], "", config=ce_config,
                         done_file="hardneg_training.json", resume=(".checkpoints",))  # fmt: skip
        deps.append(ce)
        mine = mine.model_copy(update={"model": str(ce.output)})
    settings = result_settings(mine.model_dump(mode="json"), "mine")
    if source.train_cross_encoder is not None:
        settings["model"] = "<cross-encoder stage>"  # its key is in deps; its path depends on the run folder
    return builder.add("negatives", label, settings, deps, ".jsonl", method="mine", config=mine)


def _model_stage(builder: PlanBuilder, train: str, name: str, negatives: Stage) -> Stage:
    config = builder.config.train
    return builder.add("model", f"{train}-{name}", result_settings(config.model_dump(mode="json"), "train"), [negatives], "", config=config, done_file="hardneg_training.json",
                       resume=(".checkpoints",))  # fmt: skip


def _pool_stage(builder: PlanBuilder, test: str, split: str) -> Stage | None:
    spec = builder.config.evaluation
    if spec.max_queries is None and spec.pool_depth is None:
        return None
    settings = {
        "dataset": test,
        "split": split,
        "max_queries": spec.max_queries,
        "pool_depth": spec.pool_depth,
        "seed": spec.seed,
    }
    identity = dataset_identity(test, builder.config.data_root, builder.fetch)
    return builder.add("pool", f"{test}-{split}", settings, [], ".json", identity=identity)


def _evaluation_stage(
    builder: PlanBuilder,
    name: str,
    retriever: str,
    model: Stage | None,
    test: str,
    split: str,
    pool: Stage | None,
) -> Stage:
    spec = builder.config.evaluation
    config = EvaluateConfig(dataset=test, split=split, retriever=retriever, top_k=spec.top_k, metrics=spec.metrics,
                            dense=spec.dense, data_root=builder.config.data_root)  # fmt: skip
    deps = [d for d in (model, pool) if d is not None]
    settings = result_settings(config.model_dump(mode="json"), "evaluation")
    if model is not None:
        settings["retriever"] = "<model stage>"  # the path holds the model key, already in deps
    identity = dataset_identity(test, builder.config.data_root, builder.fetch) if pool is None else None
    label = f"{name}-on-{test}" if model is None else f"{model.label}-on-{test}"
    return builder.add(
        "evaluation", label, settings, deps, ".json", identity=identity, config=config, pool=pool
    )


def _notes(config: ExperimentConfig) -> list[str]:
    """What a reader of the table must know about how it was made."""
    notes = []
    if config.pairs.max_pairs is not None:
        notes.append(f"training pairs: a seeded sample of at most {config.pairs.max_pairs} per dataset")
    if config.train.max_seq_length is not None:
        notes.append(f"training: texts cut to {config.train.max_seq_length} tokens")
    spec = config.evaluation
    if spec.max_queries is not None:
        notes.append(f"testing: a seeded sample of at most {spec.max_queries} test queries")
    if spec.pool_depth is not None:
        notes.append(
            f"testing: a pooled corpus (every judged document of the test queries plus BM25's top {spec.pool_depth} "
            "for each), not the full corpus: scores are higher than full-corpus scores, and Recall@100 is near 1 "
            "by construction when the pool holds few documents per query"
        )
    if spec.dense.max_seq_length is not None and spec.dense.max_seq_length != 256:
        notes.append(f"testing: texts cut to {spec.dense.max_seq_length} tokens")
    for name, source in config.sources.items():
        if source.train_cross_encoder is not None:
            notes.append(
                f"{source.label or name}: the cross-encoder was trained offline here on each dataset's training pairs "
                f"(from {source.train_cross_encoder.base_model}), not the study's MS MARCO cross-encoder"
            )
    return notes
