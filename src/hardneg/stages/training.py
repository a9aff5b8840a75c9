"""Stages that train a model into a folder: the offline cross-encoder and the bi-encoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.core.manifest import MODEL_RECORD
from hardneg.settings.training import CrossEncoderTrainSettings, TrainSettings
from hardneg.stages.base import InputSpec, StageCall, StageKind, StageResult
from hardneg.stages.corpus import spec_reads_corpus
from hardneg.stages.estimates import DataSizes, Estimate
from hardneg.stages.resources import Resources, cuda

TRAIN_S_PER_STEP = 18.0
"""Bi-encoder step at batch 16, 7 texts per example, 128 tokens, 2 CPU cores (934 s / 52 steps,
docs/training.md)."""
CE_TRAIN_S_PER_EXAMPLE = 1.3
"""Cross-encoder MNRL training, per (query, positive, 4 negatives) row at 128 tokens (2,362 s / 1,838)."""


class _FolderStage(StageKind):
    """A model folder, done when its training log is written; resumes from its checkpoints."""

    suffix, done_file = "", MODEL_RECORD

    def model(self, config) -> str | None:
        return config.base_model

    def leftovers(self, output: Path, label: str) -> list[Path]:
        return [output.with_name(output.name + ".checkpoints")]

    def recorded(self, output: Path) -> StageResult:
        """The counts and timings the training wrote into its log (also from torchrun's processes)."""
        log = json.loads((output / MODEL_RECORD).read_text())
        read = {"dataset": log["dataset_path"]} if log.get("dataset_path") else {}
        return StageResult(log.get("counts", {}), log.get("timings", {}), read)


class TrainCrossEncoder(_FolderStage):
    name, title, folder, config_type = (
        "train-cross-encoder",
        "cross-encoder training",
        "cross-encoders",
        CrossEncoderTrainSettings,
    )
    inputs = {"pairs": InputSpec()}
    reads_dataset, command = True, "train-cross-encoder"

    def reads_corpus(self, config: CrossEncoderTrainSettings) -> bool:
        return config.corpus == "dataset"

    def estimate(self, config: CrossEncoderTrainSettings, inputs, data: DataSizes) -> Estimate:
        pairs = inputs["pairs"][0].pairs
        if pairs is None:
            return Estimate(work="? pairs")
        seconds = pairs * config.epochs * CE_TRAIN_S_PER_EXAMPLE * (config.max_length / 128)
        return Estimate(work=f"{pairs} pairs x {config.epochs:g} epochs", seconds=seconds, pairs=pairs)

    def run(self, call: StageCall) -> StageResult:
        from hardneg.training.cross_encoder import train_cross_encoder

        train_cross_encoder(call.input("pairs"), call.config, call.output, call.show_progress)
        return self.recorded(call.output)


class Train(_FolderStage):
    name, title, folder, config_type = "train", "bi-encoder training", "models", TrainSettings
    inputs = {"triplets": InputSpec()}
    command = "train"

    def model(self, config: TrainSettings) -> str | None:
        """The base model, and a GIST loss's guide when it is another model."""
        guide = config.gist.guide if config.loss in ("gist", "cached-gist") else None
        return f"{config.base_model}; guide {guide}" if guide else config.base_model

    def reads_corpus(self, config: TrainSettings) -> bool:
        """A GIST guide named by its path that learned from a corpus's negatives brings that corpus
        into every model it guides (the base model is every row's, the base row's too)."""
        return config.loss in ("gist", "cached-gist") and spec_reads_corpus(config.gist.guide)

    def resources(self, config: TrainSettings, estimate: Estimate) -> Resources:
        """One CPU, or one GPU, per training process."""
        n = float(config.processes)
        on_gpu = cuda(config.device)
        return Resources(
            cpus=1.0 if on_gpu else n,
            gpus=n if on_gpu else 0.0,
            memory_gb=2.0 * n,
            gpus_if_any=n if config.device is None else 0.0,
        )

    def estimate(self, config: TrainSettings, inputs, data: DataSizes) -> Estimate:
        pairs = inputs["triplets"][0].pairs
        if pairs is None:
            return Estimate(work="? steps")
        steps = max(1, int(pairs * (1 - config.validation_fraction) * config.epochs) // config.batch_size)
        if config.max_steps is not None:
            steps = min(steps, config.max_steps)
        texts, length = config.num_negatives + 2, config.max_seq_length or 256
        seconds = steps * TRAIN_S_PER_STEP * (config.batch_size / 16) * (texts / 7) * (length / 128)
        return Estimate(work=f"<= {steps} steps", seconds=seconds, pairs=pairs)

    def run(self, call: StageCall) -> StageResult:
        from hardneg.training.bi_encoder import train_bi_encoder

        if call.config.processes > 1:
            self._torchrun(call)
            return self.recorded(call.output)
        result = train_bi_encoder(call.input("triplets"), call.config, call.output, call.show_progress)
        return StageResult(result.counts, result.timings, reused=result.reused)

    def _torchrun(self, call: StageCall) -> None:
        """``processes`` processes under torchrun (``--standalone``: a free port, so trainings can run
        side by side); the job goes as a JSON file, a user error comes back in a file."""
        n = call.config.processes
        with tempfile.TemporaryDirectory(prefix="hardneg-train-") as folder:
            job, error = Path(folder) / "job.json", Path(folder) / "error.txt"
            job.write_text(
                json.dumps(
                    {
                        "triplets": str(call.input("triplets")),
                        "output": str(call.output),
                        "config": call.config.model_dump(mode="json"),
                        "show_progress": call.show_progress,
                        "error_file": str(error),
                    }
                )
            )
            command = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={n}",
                "-m",
                "hardneg.training.bi_encoder",
                str(job),
            ]
            # One thread per process: the executor reserved one CPU for each.
            # If this process dies (a Ray worker killed), torchrun gets SIGTERM and stops its ranks:
            # a retry must not race orphans for the checkpoints.
            status = subprocess.run(
                command,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            ).returncode
            if status:
                why = (
                    error.read_text()
                    if error.exists()
                    else f"exit status {status} (the output above says why)"
                )
                raise HardnegError(
                    f"{self.name} {call.label}: training in {n} processes (torchrun) failed: {why}"
                )


def _die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGTERM) in the child, before it runs torchrun."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
