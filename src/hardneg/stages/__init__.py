"""The registry of stage kinds: everything that plans, runs, estimates or reports a stage looks
its kind up here (ir_datasets-style: declared once, read everywhere)."""

from hardneg.stages.base import Estimate, Resources, RunContext, StageCall, StageKind, execute
from hardneg.stages.data import Evaluate, Pairs, Pool
from hardneg.stages.negatives import Audit, Combine, Generate, Mine
from hardneg.stages.training import Train, TrainCrossEncoder

KINDS: dict[str, StageKind] = {
    kind.name: kind
    for kind in (Pairs(), Mine(), Generate(), Combine(), TrainCrossEncoder(), Train(), Pool(), Evaluate(), Audit())
}
"""Kind name -> its one instance, in pipeline order."""

NEGATIVE_KINDS = ("mine", "generate", "combine")
"""The kinds whose output is a triplets file (a source's negatives)."""

__all__ = ["KINDS", "NEGATIVE_KINDS", "Estimate", "Resources", "RunContext", "StageCall", "StageKind", "execute"]
