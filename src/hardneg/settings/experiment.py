"""A grid as one TOML file: datasets, the base model, the sources of negatives and every stage's
settings. A source is a discriminated union built from the stage registry, so a kind registered
anywhere (``hardneg.stages.register``) is a grid table at once. Tables name no dataset: the plan
binds each stage's ``dataset`` and ``data_root`` where it adds it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, ValidationError, model_validator

from hardneg.core.errors import KeyedError
from hardneg.settings.audit import AuditSettings
from hardneg.settings.base import DEFAULT_BI_ENCODER, Settings
from hardneg.settings.data import PairsSettings
from hardneg.settings.evaluation import Metrics
from hardneg.settings.phases import PhaseSettings
from hardneg.settings.retrieval import DenseSettings
from hardneg.settings.sources import (  # noqa: F401  (their names here too, as before)
    SOURCE_MODEL,
    CombineInputsSettings,
    CombineSourceSettings,
    GenerateSourceSettings,
    MineSourceSettings,
    SourceSettings,
)
from hardneg.settings.training import OPTIONS_OF, TrainSettings

GRID_ONLY = ("sources", "datasets", "baseline_source", "phases")
"""Keys of a grid that name its own rows and order; a grid built from another as a template (``hardneg
tune``) sets them itself."""


def shared_tables(grid: dict[str, Any]) -> dict[str, Any]:
    """A grid's tables without its rows and order (``GRID_ONLY``): what a grid built from it keeps."""
    return {key: value for key, value in grid.items() if key not in GRID_ONLY}


class GridDatasetSettings(Settings):
    """Train on ``train``'s ``train_split``, test on each of ``test`` (default: ``train`` itself)."""

    train: str
    """A dataset name or BEIR folder to train on."""
    test: list[str] = []
    """Datasets to test on (default: ``train``)."""
    train_split: str = "train"
    """Qrels split the training pairs come from."""
    test_split: str = "test"
    """Qrels split every test set is scored on."""
    sources: list[str] = []
    """The sources trained on this dataset (default: all), e.g. a costly generator on one dataset only;
    a combination brings in the sources it is made of."""

    @property
    def tests(self) -> list[str]:
        return self.test or [self.train]


class GridEvaluationSettings(Settings):
    """How every model is tested; ``max_queries`` and ``pool_depth`` shrink the test for quick runs
    (the report says so)."""

    top_k: int = Field(100, gt=0)
    """Results retrieved per query."""
    metrics: Metrics = ("ndcg@10", "recall@100", "mrr@10")
    """Metrics in the report; the first is its headline."""
    ignore_identical_ids: bool | None = None
    """Drop a retrieved document whose id is the query's, as BEIR and MTEB do. None: each test
    set's default, on for arguana and quora, off otherwise."""
    dense: DenseSettings = DenseSettings()
    max_queries: int | None = Field(None, gt=0)
    """A seeded sample of the test queries (None: all)."""
    pool_depth: int | None = Field(None, gt=0)
    """Search a pooled corpus (every judged document of the test queries plus BM25's top
    ``pool_depth`` for each) instead of the whole corpus: far cheaper to encode, easier to rank."""
    bootstrap_resamples: int = Field(10_000, gt=0)
    """Resamples of the bootstrap intervals and paired tests."""
    seed: int = 0
    """Seeds the sample of test queries."""
    bootstrap_seed: int = 0
    """Seeds the intervals and tests only: changing it rebuilds the report, not the evaluations."""


class GridAuditSettings(AuditSettings):
    """``[audit]`` of a grid: its scorer, when none is given, is the grid's ``base_model`` (``dense:``)."""

    enabled: bool = True
    """Audit every source's negatives and put the audit in the report."""


class GridTrainSettings(TrainSettings):
    """``[train]`` of a grid: every source's model is trained with these; the model to start from is
    the grid's top-level ``base_model``."""

    skip_empty: bool = True
    """A grid leaves out a source's shortfalls (an LLM that wrote nothing usable for a pair) instead
    of failing the cell on them."""

    def for_model(self, base_model: str) -> TrainSettings:
        """The stage's config: these settings, from ``base_model``."""
        return TrainSettings.model_validate({**self.model_dump(), "base_model": base_model})


class ExecutorSettings(Settings):
    """How ``hardneg run`` executes a plan; none of it enters a stage's key."""

    name: Literal["local", "ray"] = "local"
    """'local': one stage after another in this process; 'ray': every ready stage as a Ray task."""
    ray_address: str | None = None
    """A running Ray cluster ('auto', 'ray://head:10001', 'head:6379'); None starts Ray on this machine."""
    worker_run_dir: str | None = None
    """The run folder as Ray workers see it, when they mount the shared storage at another path."""
    max_retries: int = Field(3, ge=0)
    """Ray re-runs a stage whose worker died (killed, out of memory, lost node) this many times."""
    num_cpus: int | None = Field(None, gt=0)
    """CPUs of the Ray instance started on this machine (None: all)."""


SOURCE_TYPES: dict[str, type[SourceSettings]] = {
    "mine": MineSourceSettings,
    "generate": GenerateSourceSettings,
    "combine": CombineSourceSettings,
}
"""Table name -> its source class: the built-in kinds here; the stage registry adds the kinds
registered elsewhere (``use_source_types``)."""


def _which_kind(value: Any) -> str | None:
    if isinstance(value, SourceSettings):
        return value.kind
    if isinstance(value, dict):
        found = [key for key in value if key in SOURCE_TYPES]
        return found[0] if len(found) == 1 else None
    return None


def source_union() -> Any:
    """The source classes of every source kind, told apart by the one kind table present."""
    members = tuple(Annotated[cls, Tag(name)] for name, cls in SOURCE_TYPES.items())
    names = ", ".join(repr(name) for name in SOURCE_TYPES)
    return Annotated[
        Union[members],  # noqa: UP007  (a tuple of members: only Union takes one)
        Discriminator(
            _which_kind, custom_error_type="source_kind", custom_error_message=f"needs exactly one of {names}"
        ),
    ]


class ExperimentSettings(Settings):
    name: str = "experiment"
    """Names the run folder (runs/NAME) and the report."""
    base_model: str = DEFAULT_BI_ENCODER
    """The bi-encoder every source fine-tunes, and the untuned row ('bm25' for BM25)."""
    data_root: str | None = None
    """Folder of BEIR datasets (default: $HARDNEG_DATA, ../shared/data/beir, cache)."""
    datasets: list[GridDatasetSettings] = Field(min_length=1)
    pairs: PairsSettings
    sources: dict[str, source_union()] = {}
    """Name -> one source of negatives; none: a grid of the base model's row alone on every test set."""
    train: GridTrainSettings = GridTrainSettings()
    evaluation: GridEvaluationSettings = GridEvaluationSettings()
    audit: GridAuditSettings = GridAuditSettings()
    baseline_source: str | None = None
    """The source every other is tested against besides the base model (default: 'bm25' when
    there is such a source)."""
    phases: list[PhaseSettings] = []
    """Parts of the grid run first, in order, before the whole (``hardneg.settings.phases``)."""

    @model_validator(mode="before")
    @classmethod
    def _tables_name_no_dataset(cls, data: Any) -> Any:
        """A stage table's dataset comes from [[datasets]], its model from ``base_model``."""
        if not isinstance(data, dict):
            return data
        _no_dataset(data.get("pairs"), "pairs")
        if isinstance(data.get("train"), dict) and "base_model" in data["train"]:
            raise KeyedError("train.base_model", "set the top-level 'base_model' instead")
        for name, source in (data.get("sources") or {}).items():
            for table, value in source.items() if isinstance(source, dict) else ():
                _no_dataset(value, f"sources.{name}.{table}")
        return data

    @model_validator(mode="after")
    def _references(self) -> ExperimentSettings:
        if "base" in self.sources:
            raise KeyedError("sources.base", "'base' is the untuned model's row; name the source otherwise")
        for name, source in self.sources.items():
            source.check(name, self.sources)
            if "base_model" in source.train:
                raise KeyedError(f"sources.{name}.train.base_model", "set the top-level 'base_model' instead")
            try:
                self.train_for(name)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = "".join(f".{part}" for part in first["loc"])
                raise KeyedError(f"sources.{name}.train{where}", first["msg"]) from None
            drawn = getattr(source, "pool_pairs", None)
            if drawn is not None and drawn.max_pairs and drawn.max_pairs <= (self.pairs.max_pairs or 0):
                raise KeyedError(
                    f"sources.{name}.pool_pairs.max_pairs",
                    f"{drawn.max_pairs} is not more than [pairs]'s {self.pairs.max_pairs}: the pool holds "
                    "the mined pairs' positives anyway",
                )
        for i, spec in enumerate(self.datasets):
            for item in spec.sources:
                if item not in self.sources:
                    raise KeyedError(
                        f"datasets.{i}.sources", f"no source {item!r} (have: {', '.join(self.sources)})"
                    )
        if self.baseline_source is not None and self.baseline_source not in self.sources:
            raise KeyedError("baseline_source", f"no source {self.baseline_source!r}")
        self.source_order()  # a cycle fails here, naming it
        self._check_phases()
        return self

    def _check_phases(self) -> None:
        """A phase names sources and training datasets of this grid, a name of its own, and at
        least one model (a source that one of its datasets trains)."""
        trains = [spec.train for spec in self.datasets]
        known = {"sources": ("source", list(self.sources)), "datasets": ("training dataset", trains)}
        for i, phase in enumerate(self.phases):
            if phase.name in [earlier.name for earlier in self.phases[:i]]:
                raise KeyedError(f"phases.{i}.name", f"{phase.name!r} names an earlier phase too")
            for field, (what, names) in known.items():
                for item in getattr(phase, field):
                    if item not in names:
                        raise KeyedError(
                            f"phases.{i}.{field}", f"no {what} {item!r} (have: {', '.join(names)})"
                        )
            specs = [spec for spec in self.datasets if not phase.datasets or spec.train in phase.datasets]
            if phase.sources and not any(set(phase.sources) & set(self.rows(spec)) for spec in specs):
                raise KeyedError(f"phases.{i}.sources", "none of them is trained on the phase's datasets")

    @property
    def baseline(self) -> str | None:
        if self.baseline_source is not None:
            return self.baseline_source
        return "bm25" if "bm25" in self.sources else None

    def upstream(self, name: str) -> list[str]:
        return self.sources[name].upstream()

    def train_for(self, name: str) -> GridTrainSettings:
        """The ``[train]`` settings of source ``name``'s model: the grid's, with its own on top."""
        overrides = self.sources[name].train
        if not overrides:
            return self.train
        grid = self.train.model_dump()
        loss = overrides.get("loss")
        if loss is not None and loss != grid["loss"]:  # the grid's options of its loss stay with it
            for table, losses in OPTIONS_OF.items():
                if loss not in losses:
                    grid.pop(table, None)
        return type(self.train).model_validate(_merged(grid, overrides))

    def source_order(self, spec: GridDatasetSettings | None = None) -> list[str]:
        """Sources with every one after those it is made from (only ``spec``'s and what they need)."""
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "open":
                raise KeyedError("sources", "combinations form a cycle: " + " -> ".join([*path, name]))
            state[name] = "open"
            for item in self.upstream(name):
                visit(item, [*path, name])
            state[name] = "done"
            order.append(name)

        for name in spec.sources if spec is not None and spec.sources else self.sources:
            visit(name, [])
        return order

    def rows(self, spec: GridDatasetSettings) -> list[str]:
        """The sources that get a model (and a table row) for ``spec``: its chosen ones, or all."""
        return [name for name in self.source_order(spec) if not spec.sources or name in spec.sources]


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top, nested tables merged key by key ({gist = {margin = 0.1}}
    keeps [train.gist]'s guide)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merged(merged[key], value)
        merged[key] = value
    return merged


def _no_dataset(table: Any, where: str) -> None:
    for field in ("dataset", "data_root"):
        if isinstance(table, dict) and field in table:
            raise KeyedError(f"{where}.{field}", "set by [[datasets]] and the top-level data_root")


def use_source_types(types: dict[str, type[SourceSettings]]) -> None:
    """Make ``types`` the sources a grid can hold (the stage registry calls this when a source kind
    is registered or removed), and rebuild the grid's validator to match."""
    SOURCE_TYPES.clear()
    SOURCE_TYPES.update(types)
    ExperimentSettings.model_fields["sources"].annotation = dict[str, source_union()]
    ExperimentSettings.model_rebuild(force=True)
