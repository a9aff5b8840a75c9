"""What a source kind sees while it adds its stages for one dataset: the pairs, the negatives of
the sources planned before it, and ``add``, which binds the dataset to every stage it adds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hardneg.core.errors import HardnegError
from hardneg.settings.base import DatasetRef, Settings

if TYPE_CHECKING:
    from hardneg.experiment.planfile import StageNode


class Builder(Protocol):
    """What a source sees of the planner (``experiment.plan.PlanBuilder``)."""

    names: dict[str, str]
    stages: dict[str, StageNode]

    def add(
        self,
        kind: str,
        label: str,
        config: Settings,
        inputs: dict[str, list[StageNode]],
        dataset: str | None = None,
    ) -> StageNode: ...


@dataclass
class SourceContext:
    builder: Builder
    dataset: str
    """The training dataset, bound to every stage added that reads one."""
    name: str
    """The source's name in the grid."""
    pairs: StageNode
    planned: dict[str, StageNode] = field(default_factory=dict)
    """Negatives of the sources planned so far for this dataset, by grid name."""

    @property
    def label(self) -> str:
        return f"{self.builder.names[self.dataset]}-{self.name}"

    def add(
        self, kind: str, config: Settings, inputs: dict[str, list[StageNode]], label: str | None = None
    ) -> StageNode:
        return self.builder.add(kind, label or self.label, config, inputs, dataset=self.dataset)

    def negatives(self, source: str) -> StageNode:
        """The triplets of another source on this dataset (planned first: the grid orders them)."""
        if source not in self.planned:
            raise HardnegError(f"source {self.name}: needs source {source!r}, which is not planned before it")
        return self.planned[source]

    def made(self, kind: str, source: str) -> StageNode:
        """A stage of kind ``kind`` that another source added on this dataset (its trained cross-encoder)."""
        label = f"{self.builder.names[self.dataset]}-{source}"
        found = [s for s in self.builder.stages.values() if s.kind == kind and s.label == label]
        if not found:
            raise HardnegError(
                f"source {self.name}: source {source!r} made no {kind} stage on {self.dataset}"
            )
        return found[0]


def dataset_bound(config: Any, dataset: str | None, data_root: str | None) -> Any:
    """A config that reads a dataset, with it bound; any other config as it is."""
    if dataset is not None and isinstance(config, DatasetRef):
        return config.bind(dataset, data_root)
    return config
