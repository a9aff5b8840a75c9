"""The study as a graph of stages. Each stage's key hashes its result-relevant settings (as its kind
declares them), its inputs' keys and its dataset's identity, and its output path carries the key: a
rerun finds the file and skips the stage, a changed setting gives a new key to that stage and
everything downstream of it, and nothing else moves."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.core.errors import HardnegError
from hardneg.core.io import slug
from hardneg.core.manifest import committed
from hardneg.experiment.keys import dataset_content, dataset_identity, referenced_files, stage_key
from hardneg.experiment.planfile import CellRef, PlanFile, StageNode
from hardneg.settings.base import Settings
from hardneg.settings.data import PoolSettings
from hardneg.settings.evaluation import EvaluateSettings
from hardneg.settings.experiment import ExperimentSettings, GridDatasetSettings
from hardneg.stages import KINDS
from hardneg.stages.base import input_ref
from hardneg.stages.estimates import DataSizes
from hardneg.stages.wiring import SourceContext, dataset_bound

BASE = "base"
"""The row of the base model without fine-tuning."""


@dataclass
class Plan:
    run_dir: Path
    config: ExperimentSettings
    stages: list[StageNode]
    """In dependency order."""
    cells: list[CellRef]
    notes: list[str]

    def path(self, stage: StageNode) -> Path:
        return self.run_dir / stage.output

    def done(self, stage: StageNode) -> bool:
        """Its record is written and matches its output (``core.manifest.committed``)."""
        return committed(self.path(stage), KINDS[stage.kind].done_marker(self.path(stage)))

    def partial(self, stage: StageNode) -> bool:
        """Something an interrupted run left that the stage resumes from."""
        return any(p.exists() for p in KINDS[stage.kind].leftovers(self.path(stage), stage.label))

    def status(self, stage: StageNode) -> str:
        if self.done(stage):
            return "cached"
        return "resumes" if self.partial(stage) else "to run"

    def describe(self) -> PlanFile:
        """What the report and the executors need to find every stage and result again."""
        config = self.config
        return PlanFile(
            name=config.name,
            base_model=config.base_model,
            baseline=config.baseline,
            metrics=list(config.evaluation.metrics),
            evaluation=config.evaluation.model_dump(mode="json"),
            audit=config.audit.model_dump(mode="json"),
            notes=self.notes,
            cells=self.cells,
            stages=self.stages,
        )


def dataset_labels(datasets: list[str]) -> dict[str, str]:
    """How stages, tables and plots name each dataset: a folder by its own name, not its whole path;
    two different folders of the same name get a short suffix from their full paths."""
    base = {
        name: Path(name).name if ("/" in name or Path(name).is_dir()) else name
        for name in dict.fromkeys(datasets)
    }
    clashes = {label for label in base.values() if sum(v == label for v in base.values()) > 1}
    return {
        name: f"{label}-{hashlib.sha256(str(Path(name).resolve()).encode()).hexdigest()[:4]}"
        if label in clashes
        else label
        for name, label in base.items()
    }


def grid_labels(config: ExperimentSettings) -> dict[str, str]:
    """``dataset_labels`` of every dataset a grid trains or tests on."""
    return dataset_labels([name for spec in config.datasets for name in (spec.train, *spec.tests)])


class PlanBuilder:
    """Adds each stage once: a stage another cell already made (same key) is shared."""

    def __init__(self, config: ExperimentSettings, run_dir: Path, fetch: bool = False):
        self.config, self.run_dir, self.fetch = config, run_dir, fetch
        self.stages: dict[str, StageNode] = {}
        self.sizes = DataSizes(config.data_root)
        self.names = grid_labels(config)
        self._identities: dict[str, Any] = {}
        self._contents: dict[str, tuple[str | None, str | None]] = {}

    def content(self, dataset: str) -> tuple[str | None, str | None]:
        if dataset not in self._contents:
            self._contents[dataset] = dataset_content(dataset, self.config.data_root)
        return self._contents[dataset]

    def identity(self, dataset: str) -> Any:
        if dataset not in self._identities:
            self._identities[dataset] = dataset_identity(dataset, self.config.data_root, self.fetch)
        return self._identities[dataset]

    def add(
        self,
        kind_name: str,
        label: str,
        config: Settings,
        inputs: dict[str, list[StageNode]],
        dataset: str | None = None,
    ) -> StageNode:
        """Add a stage (once: the same key is shared); ``dataset`` is bound here, with the run's data
        root, to a config that reads one."""
        kind = KINDS[kind_name]
        config = dataset_bound(config, dataset, self.config.data_root)
        for role, spec in kind.inputs.items():
            given = inputs.get(role, [])
            if (not given and not spec.optional) or (len(given) > 1 and not spec.many):
                raise HardnegError(
                    f"stage {kind_name} {label}: input {role!r} needs {'one or more' if spec.many else 'one'}"
                )
        deps = [node.key for nodes in inputs.values() for node in nodes]
        identity = self.identity(config.dataset) if kind.reads_dataset else None
        settings = kind.key_settings(config)
        key = stage_key(kind.name, settings, deps, identity, referenced_files(settings))
        if key in self.stages:
            return self.stages[key]
        estimate = kind.estimate(
            config, {r: [n.estimate for n in ns] for r, ns in inputs.items()}, self.sizes
        )
        model = kind.model(config)
        for role, nodes in inputs.items():  # name what an '@input:' stands for: the upstream stage
            model = model.replace(input_ref(role), f"output of {nodes[0].title}") if model else model
        node = StageNode(
            kind=kind.name,
            label=label,
            key=key,
            output=f"stages/{kind.folder}/{slug(label)}-{key}{kind.suffix}",
            deps=deps,
            inputs={role: [n.output for n in nodes] for role, nodes in inputs.items()},
            config=config.model_dump(mode="json"),
            model=model,
            resources=kind.resources(config, estimate),
            estimate=estimate,
            reads_corpus=kind.reads_corpus(config),
        )
        if kind.reads_dataset and self.fetch:  # a real run: workers check they read the same data
            node.data_path, node.data_sha = self.content(config.dataset)
        self.stages[key] = node
        return node


def build_plan(config: ExperimentSettings, run_dir: str | Path, fetch: bool = False) -> Plan:
    """Each [[datasets]] entry: its pairs, each source as its kind wires it, then per test set the
    base model's row and, per source, a training, an evaluation and an audit."""
    run_dir = Path(run_dir)
    builder = PlanBuilder(config, run_dir, fetch)
    names = builder.names
    cells: list[CellRef] = []

    def rel(node: StageNode | None) -> str | None:
        return node.output if node is not None else None

    for spec in config.datasets:
        negatives: dict[str, StageNode] = {}
        if config.source_order(spec):  # none: the base row only
            pairs = _pairs_stage(builder, spec)
            for name in config.source_order(spec):
                source = config.sources[name]
                context = SourceContext(builder, spec.train, name, pairs, negatives)
                negatives[name] = KINDS[source.kind].wire(source, context)
        for test in spec.tests:
            pool = _pool_stage(builder, test, spec.test_split)
            base = _evaluation_stage(
                builder, f"{BASE}-on-{names[test]}", config.base_model, None, test, spec.test_split, pool
            )
            cells.append(
                CellRef(
                    source=BASE,
                    label=f"{BASE} ({config.base_model})",
                    train=None,
                    test=names[test],
                    evaluation=base.output,
                    pool=rel(pool),
                )
            )
            for name in config.rows(spec):
                train = config.train_for(name).for_model(config.base_model)
                model = builder.add(
                    "train", f"{names[spec.train]}-{name}", train, {"triplets": [negatives[name]]}
                )
                evaluation = _evaluation_stage(
                    builder,
                    f"{model.label}-on-{names[test]}",
                    input_ref("model"),
                    model,
                    test,
                    spec.test_split,
                    pool,
                )
                audit = None
                if config.audit.enabled:
                    audit = builder.add(
                        "audit",
                        f"{names[spec.train]}-{name}",
                        _audit_settings(config),
                        {"triplets": [negatives[name]]},
                    )
                cells.append(
                    CellRef(
                        source=name,
                        label=config.sources[name].label or name,
                        train=names[spec.train],
                        test=names[test],
                        evaluation=evaluation.output,
                        negatives=negatives[name].output,
                        audit=rel(audit),
                        model=model.output,
                        pool=rel(pool),
                        kind=config.sources[name].kind,
                        corpus_reads=corpus_reads(builder.stages, model),
                        more_pairs=more_pairs(builder.stages, model, pairs),
                    )
                )
    return Plan(run_dir, config, list(builder.stages.values()), cells, _notes(config))


def ancestors(stages: dict[str, StageNode] | list[StageNode], key: str) -> list[StageNode]:
    """The stage ``key`` and every stage it depends on, directly or not."""
    by_key = stages if isinstance(stages, dict) else {s.key: s for s in stages}
    seen: dict[str, StageNode] = {}
    todo = [key]
    while todo:
        node = by_key[todo.pop()]
        if node.key not in seen:
            seen[node.key] = node
            todo.extend(node.deps)
    return list(seen.values())


def corpus_reads(stages: dict[str, StageNode], node: StageNode) -> list[str]:
    """The stages ``node`` depends on, itself included, that read a corpus beyond the pairs'
    positives, as titles ('mine scifact-bm25'): what makes a row not corpus-free."""
    return sorted(stage.title for stage in ancestors(stages, node.key) if stage.reads_corpus)


def more_pairs(stages: dict[str, StageNode], node: StageNode, own: StageNode) -> list[str]:
    """The pairs stages ``node`` depends on besides ``own`` (its row's training pairs), as titles."""
    return sorted(s.title for s in ancestors(stages, node.key) if s.kind == "pairs" and s.key != own.key)


def _audit_settings(config: ExperimentSettings) -> Settings:
    """The grid's audit table as the stage's config; its scorer defaults to the base model."""
    from hardneg.settings.audit import AuditSettings

    scorer = config.audit.scorer or f"dense:{config.base_model}"
    return AuditSettings(**config.audit.model_dump(exclude={"enabled", "scorer"}), scorer=scorer)


def _pairs_stage(builder: PlanBuilder, spec: GridDatasetSettings) -> StageNode:
    config = builder.config.pairs.model_copy(update={"split": spec.train_split})
    return builder.add("pairs", builder.names[spec.train], config, {}, dataset=spec.train)


def _pool_stage(builder: PlanBuilder, test: str, split: str) -> StageNode | None:
    spec = builder.config.evaluation
    if spec.max_queries is None and spec.pool_depth is None:
        return None
    config = PoolSettings(
        split=split, max_queries=spec.max_queries, pool_depth=spec.pool_depth, seed=spec.seed
    )
    return builder.add("pool", f"{builder.names[test]}-{split}", config, {}, dataset=test)


def _evaluation_stage(
    builder: PlanBuilder,
    label: str,
    retriever: str,
    model: StageNode | None,
    test: str,
    split: str,
    pool: StageNode | None,
) -> StageNode:
    spec = builder.config.evaluation
    config = EvaluateSettings(
        split=split,
        retriever=retriever,
        top_k=spec.top_k,
        metrics=spec.metrics,
        dense=spec.dense,
        ignore_identical_ids=spec.ignore_identical_ids,
    )
    inputs = {role: [node] for role, node in (("model", model), ("pool", pool)) if node is not None}
    return builder.add("evaluate", label, config, inputs, dataset=test)


def _notes(config: ExperimentSettings) -> list[str]:
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
            "testing: a pooled corpus (every judged document of the test queries plus BM25's top "
            f"{spec.pool_depth} for each), not the full corpus: scores are higher than full-corpus scores, "
            "and Recall@100 is near 1 by construction when the pool holds few documents per query"
        )
    if spec.dense.max_seq_length is not None and spec.dense.max_seq_length != 256:
        notes.append(f"testing: texts cut to {spec.dense.max_seq_length} tokens")
    for name, source in config.sources.items():
        trained = getattr(source, "train_cross_encoder", None)
        if trained is not None:
            notes.append(
                f"{source.label or name}: the cross-encoder was trained offline here on each dataset's "
                f"training pairs (from {trained.base_model}), not the study's MS MARCO cross-encoder"
            )
    return notes
