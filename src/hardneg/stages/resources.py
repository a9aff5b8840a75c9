"""What a stage asks of an executor, and what this machine has: cores and GPUs."""

from __future__ import annotations

from pydantic import BaseModel

from hardneg.core.cpus import usable_cpus


class Resources(BaseModel):
    """What an executor reserves for one stage (Ray: ``num_cpus``, ``num_gpus``, ``memory``)."""

    cpus: float = 1.0
    gpus: float = 0.0
    gpus_if_any: float = 0.0
    """GPUs it takes when the cluster has them (a device left to choose itself: None = 'a GPU when
    there is one')."""
    memory_gb: float = 1.0

    def describe(self) -> str:
        gpus = (
            f", {self.gpus:g} GPU"
            if self.gpus
            else f", {self.gpus_if_any:g} GPU if any"
            if self.gpus_if_any
            else ""
        )
        return f"{self.cpus:g} CPU{gpus}, ~{self.memory_gb:g} GB"


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
    return {"cpus": usable_cpus(), "gpus": gpus}
