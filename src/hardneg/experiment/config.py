"""The study as one TOML file: datasets, the base model, the negative sources and every stage's
settings, validated up front so a typo fails before an hour of compute, naming its key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from hardneg.audit import AuditSettings
from hardneg.config import (
    CrossEncoderTrainConfig,
    DenseSettings,
    GenerateConfig,
    Metrics,
    MineConfig,
    PairsConfig,
    Settings,
    TrainConfig,
)
from hardneg.errors import HardnegError
from hardneg.stages.negatives import CombineStageConfig

PER_DATASET = "<per dataset>"
"""Placeholder for the ``dataset`` field of stage configs: each [[datasets]] entry fills it in."""


class DatasetSpec(Settings):
    """Train on ``train``'s ``train_split``, test on each of ``test`` (default: ``train`` itself)."""

    train: str
    test: list[str] = []
    train_split: str = "train"
    test_split: str = "test"
    sources: list[str] = []
    """The sources trained on this dataset (default: all), e.g. a costly generator on one dataset only;
    a combination brings in the sources it is made of."""

    @property
    def tests(self) -> list[str]:
        return self.test or [self.train]


SOURCE_MODEL = "@source:"
"""In a combination's ``filters.scorer``: 'cross-encoder:@source:NAME' is the cross-encoder trained
for source NAME on the same dataset (``train_cross_encoder``)."""


class CombineSpec(CombineStageConfig):
    """A combination of other sources (or a filtered copy of one)."""

    inputs: list[str] = Field(min_length=1)

    @property
    def scorer_source(self) -> str | None:
        scorer = self.filters.scorer or ""
        return scorer.partition(SOURCE_MODEL)[2] or None


class SourceSpec(Settings):
    """One way to get negatives: exactly one of ``mine``, ``generate`` or ``combine``."""

    label: str | None = None
    """How the source is named in tables (default: its key)."""
    mine: MineConfig | None = None
    generate: GenerateConfig | None = None
    combine: CombineSpec | None = None
    train_cross_encoder: CrossEncoderTrainConfig | None = None
    """Train the cross-encoder this source mines with, on the cell's train pairs (offline setups)."""

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> SourceSpec:
        kinds = [name for name in ("mine", "generate", "combine") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "needs exactly one of 'mine', 'generate' or 'combine' (has: "
                + (", ".join(kinds) or "none")
                + ")"
            )
        if self.train_cross_encoder is not None and (
            self.mine is None or self.mine.method != "cross-encoder"
        ):
            raise ValueError("'train_cross_encoder' goes with mine.method = 'cross-encoder'")
        if self.train_cross_encoder is not None and self.mine.model is not None:
            raise ValueError("give either mine.model or train_cross_encoder, not both")
        return self

    @property
    def kind(self) -> str:
        return "mine" if self.mine else "generate" if self.generate else "combine"


class EvaluationSpec(Settings):
    """How every model is tested; ``max_queries`` and ``pool_depth`` shrink the test for quick runs
    (the report says so)."""

    top_k: int = Field(100, gt=0)
    metrics: Metrics = ("ndcg@10", "recall@100", "mrr@10")
    dense: DenseSettings = DenseSettings()
    max_queries: int | None = Field(None, gt=0)
    """A seeded sample of the test queries (None: all)."""
    pool_depth: int | None = Field(None, gt=0)
    """Search a pooled corpus (every judged document of the test queries plus BM25's top
    ``pool_depth`` for each) instead of the whole corpus: far cheaper to encode, easier to rank."""
    bootstrap_resamples: int = Field(10_000, gt=0)
    seed: int = 0
    """Seeds the sample of test queries."""
    bootstrap_seed: int = 0
    """Seeds the intervals and tests only: changing it rebuilds the report, not the evaluations."""


class AuditSpec(AuditSettings):
    enabled: bool = True
    """Audit every source's negatives and put the audit in the report."""


class ExperimentConfig(Settings):
    name: str = "experiment"
    base_model: str = "minilm-l6"
    data_root: str | None = None
    datasets: list[DatasetSpec] = Field(min_length=1)
    pairs: PairsConfig
    sources: dict[str, SourceSpec] = {}
    """None: a grid of the base model's row alone on every test set (``base_model = "bm25"`` for BM25)."""
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationSpec = EvaluationSpec()
    audit: AuditSpec = AuditSpec()
    baseline_source: str | None = None
    """The source every other is tested against besides the base model (default: 'bm25' when
    there is such a source)."""

    @model_validator(mode="before")
    @classmethod
    def _fill_per_dataset_fields(cls, data: Any) -> Any:
        """Stage configs take their dataset, data root and base model from the experiment."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        data["pairs"] = _with_dataset(data.get("pairs", {}), "pairs")
        train = dict(data.get("train", {}))
        if "base_model" in train:
            raise ValueError("train.base_model: set the top-level 'base_model' instead")
        # A source's shortfalls (an LLM that wrote nothing usable for a pair) are left out, not fatal.
        data["train"] = {"skip_empty": True, **train, "base_model": data.get("base_model", "minilm-l6")}
        sources = {}
        for name, source in dict(data.get("sources", {})).items():
            source = dict(source) if isinstance(source, dict) else source
            for field in ("mine", "train_cross_encoder"):
                if isinstance(source, dict) and field in source:
                    source[field] = _with_dataset(source[field], f"sources.{name}.{field}")
            sources[name] = source
        data["sources"] = sources
        return data

    @model_validator(mode="after")
    def _references(self) -> ExperimentConfig:
        if "base" in self.sources:
            raise ValueError("sources.base: 'base' is the untuned model's row; name the source otherwise")
        for name, source in self.sources.items():
            if source.combine is not None:
                scorer = source.combine.scorer_source
                if scorer is not None and (scorer not in self.sources or self.sources[scorer].train_cross_encoder is None):
                    raise ValueError(f"sources.{name}.combine.filters.scorer: no source {scorer!r} with train_cross_encoder")
                for item in source.combine.inputs:
                    if item not in self.sources:
                        raise ValueError(
                            f"sources.{name}.combine.inputs: no source {item!r} (have: {', '.join(self.sources)})"
                        )
        for i, spec in enumerate(self.datasets):
            for item in spec.sources:
                if item not in self.sources:
                    raise ValueError(f"datasets.{i}.sources: no source {item!r} (have: {', '.join(self.sources)})")
        if self.baseline_source is not None and self.baseline_source not in self.sources:
            raise ValueError(f"baseline_source: no source {self.baseline_source!r}")
        _check_acyclic(self.sources)
        return self

    @property
    def baseline(self) -> str | None:
        if self.baseline_source is not None:
            return self.baseline_source
        return "bm25" if "bm25" in self.sources else None

    def source_order(self, spec: DatasetSpec | None = None) -> list[str]:
        """Sources with every combination after its inputs (only ``spec``'s and what they need)."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            source = self.sources[name]
            for item in source.combine.inputs + [source.combine.scorer_source] if source.combine else []:
                if item is not None:
                    visit(item)  # a scorer's source first: its cross-encoder is trained there
            order.append(name)

        for name in (spec.sources if spec is not None and spec.sources else self.sources):
            visit(name)
        return order

    def rows(self, spec: DatasetSpec) -> list[str]:
        """The sources that get a model (and a table row) for ``spec``: its chosen ones, or all."""
        return [name for name in self.source_order(spec) if not spec.sources or name in spec.sources]


def _with_dataset(table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        return table
    for field in ("dataset", "data_root"):
        if field in table:
            raise ValueError(f"{where}.{field}: set by [[datasets]] and the top-level data_root")
    return {**table, "dataset": PER_DATASET}


def _check_acyclic(sources: dict[str, SourceSpec]) -> None:
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            raise ValueError("sources: combinations form a cycle: " + " -> ".join([*path, name]))
        state[name] = "open"
        source = sources[name]
        for item in source.combine.inputs if source.combine else []:
            visit(item, [*path, name])
        state[name] = "done"

    for name in sources:
        visit(name, [])


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


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Parse and validate a TOML experiment (with ``--set`` overrides); errors name the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HardnegError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise HardnegError(f"{path}: not valid TOML: {exc}") from None
    data = apply_overrides(data, overrides or {}, path)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise HardnegError(f"{path}: {where}: {message}") from None
