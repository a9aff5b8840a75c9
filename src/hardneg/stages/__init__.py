"""Stage kinds: the contract (``base``), the registry, and the built-in kinds. Everything that
plans, runs, estimates, reports or offers a command for a stage looks its kind up here."""

from hardneg.stages.base import (
    INPUT,
    InputSpec,
    RunContext,
    StageCall,
    StageKind,
    StageResult,
    execute,
    input_ref,
)
from hardneg.stages.data import Evaluate, Pairs, Pool
from hardneg.stages.estimates import DataSizes, Estimate
from hardneg.stages.negatives import Audit, Combine, Generate, Mine
from hardneg.stages.registry import KINDS, kind_of, load_entry_points, register, source_kinds, unregister
from hardneg.stages.resources import Resources
from hardneg.stages.run import run_kind
from hardneg.stages.training import Train, TrainCrossEncoder

for _kind in (Pairs, Mine, Generate, Combine, TrainCrossEncoder, Train, Pool, Evaluate, Audit):
    register(_kind())
load_entry_points()

__all__ = [
    "INPUT",
    "KINDS",
    "DataSizes",
    "Estimate",
    "InputSpec",
    "Resources",
    "RunContext",
    "StageCall",
    "StageKind",
    "StageResult",
    "execute",
    "input_ref",
    "kind_of",
    "register",
    "run_kind",
    "source_kinds",
    "unregister",
]
