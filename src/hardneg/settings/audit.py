"""How hard each source's negatives are judged to be: one scorer's margin to the positive."""

from __future__ import annotations

from pydantic import Field

from hardneg.settings.base import DEFAULT_BI_ENCODER, Settings, runtime
from hardneg.settings.retrieval import EncodeBackend


class AuditSettings(Settings):
    scorer: str | None = None
    """'dense:MODEL' or 'cross-encoder:MODEL'; a bare model name means 'dense:' (default minilm-l6)."""
    easy_margin: float = Field(0.2, gt=0)
    """A negative scored more than this below its positive is too easy; within it, hard; at or
    above the positive, a likely false negative."""
    near_duplicate: float = Field(0.8, gt=0, le=1)
    """Word-set Jaccard at or above which two negatives of one triplet count as near-duplicates."""
    batch_size: int = runtime(64, gt=0)
    """Texts per scorer batch."""
    backend: EncodeBackend = "torch"
    """Who runs a 'dense:' scorer's bi-encoder: 'torch', 'onnx' or 'onnx-int8' (see DenseSettings)."""

    @property
    def scorer_spec(self) -> str:
        scorer = self.scorer or DEFAULT_BI_ENCODER
        return scorer if scorer.startswith(("dense:", "cross-encoder:")) else f"dense:{scorer}"
