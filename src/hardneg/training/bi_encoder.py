"""`train`: fine-tune a bi-encoder on triplets with MultipleNegativesRankingLoss, as the study does,
or another loss (``loss``: hardneg.training.losses).

Queries, not pairs, are split 90/10: a query with several positives on both sides would leak its
answers into validation. Validation loss is computed every ``eval_steps``; each evaluation is also a
checkpoint, so early stopping can restore the best one and an interrupted run resumes from the last.

Under torchrun or accelerate launch, ``batch_size`` stays the global batch: each batch is split
evenly over the processes and the loss gathers every device's passages as in-batch negatives, so a
step sees what a one-process step sees (margin-MSE has no in-batch negatives to gather). Rank 0
alone writes the model; the others wait for it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from hardneg.core.errors import DataError, HardnegError
from hardneg.core.io import write_json
from hardneg.core.manifest import MODEL_RECORD, Stopwatch, sha256_of
from hardneg.core.models import load_sentence_transformer
from hardneg.data.exchange import load_triplets
from hardneg.data.records import Triplet
from hardneg.settings.training import TrainSettings
from hardneg.training import latest_checkpoint
from hardneg.training.losses import LOSS_FIELDS, build_loss, check_scores, describe, loss_key, margin_labels


def split_by_query(
    triplets: list[Triplet], fraction: float, seed: int
) -> tuple[list[Triplet], list[Triplet]]:
    """(train, validation): a seeded ``fraction`` of the queries goes to validation; at least two when
    there are four or more, since a validation batch needs two examples."""
    queries = sorted({t.query_id for t in triplets})
    if len(queries) < 2:
        raise HardnegError(f"a train/validation split needs at least 2 queries, got {len(queries)}")
    random.Random(seed).shuffle(queries)
    held_out = set(queries[: max(2 if len(queries) >= 4 else 1, round(fraction * len(queries)))])
    return [t for t in triplets if t.query_id not in held_out], [
        t for t in triplets if t.query_id in held_out
    ]


def example_columns(
    triplets: list[Triplet], num_negatives: int, short: str, counts: dict[str, int], labels: bool = False
) -> dict[str, list]:
    """sentence-transformers columns ``anchor, positive, negative_1..k``. Every row needs all k:
    a short triplet repeats its own negatives ('pad') or is left out ('drop'). ``labels``: a
    ``label`` column of margins (positive score - each negative's), for margin-MSE."""
    columns: dict[str, list] = {"anchor": [], "positive": []}
    columns.update({f"negative_{i + 1}": [] for i in range(num_negatives)})
    if labels:
        columns["label"] = []
    for triplet in triplets:
        chosen = list(range(num_negatives))
        if len(triplet.negatives) < num_negatives:
            if short == "drop":
                counts["dropped_short"] = counts.get("dropped_short", 0) + 1
                continue
            counts["padded_short"] = counts.get("padded_short", 0) + 1
            chosen = [i % len(triplet.negatives) for i in chosen]
        columns["anchor"].append(triplet.query)
        columns["positive"].append(triplet.positive)
        for i, index in enumerate(chosen):
            columns[f"negative_{i + 1}"].append(triplet.negatives[index].text)
        if labels:
            columns["label"].append(margin_labels(triplet, chosen))
    return columns


def check_negatives(triplets: list[Triplet], path: str | Path, num_negatives: int) -> None:
    """A triplet without negatives cannot be trained on: say where, and how to drop such lines."""
    if num_negatives == 0:
        return
    for triplet in triplets:
        if not triplet.negatives:
            raise DataError(
                Path(path),
                triplet._line,
                "field 'negatives': no negatives (train with --skip-empty, "
                "or drop such triplets with 'hardneg combine FILE --min-negatives 1 -o OUT')",
            )


@dataclass
class TrainResult:
    model_dir: Path
    counts: dict[str, Any]
    log: list[dict[str, Any]]
    """The trainer's log: training losses, and validation losses at every evaluation."""
    reused: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def _cache_key(triplets_path: str | Path, config: TrainSettings) -> dict[str, Any]:
    """``processes`` only says how the runner launches: the model is the same (and older keys stay valid);
    the loss enters off its default only, so a model trained before losses were selectable is reused."""
    settings = {**config.model_dump(mode="json", exclude={"processes", *LOSS_FIELDS}), **loss_key(config)}
    return {"triplets_sha256": sha256_of(triplets_path), "settings": settings}


def _finished(output: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The provenance of a model already trained from the same file and settings, if any."""
    try:
        provenance = json.loads((output / MODEL_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return provenance if provenance.get("key") == key else None


def train_bi_encoder(
    triplets_path: str | Path,
    config: TrainSettings,
    output: str | Path,
    show_progress: bool = True,
    callbacks: list | None = None,
) -> TrainResult:
    """Train and save to ``output``; a rerun with the same triplets and settings reuses the model,
    an interrupted one resumes from ``<output>.checkpoints``. ``callbacks`` are transformers
    ``TrainerCallback``s (logging, or a test's simulated crash). Under torchrun every process calls
    this; rank 0 writes, the others return once it has."""
    output = Path(output)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun and accelerate launch
    if config.batch_size % world:
        raise HardnegError(
            f"batch_size {config.batch_size} is the global batch, split evenly over the {world} "
            f"processes: make it a multiple of {world}"
        )
    key = _cache_key(triplets_path, config)
    checkpoints = output.with_name(output.name + ".checkpoints")
    done, resume_from = _finished(output, key), latest_checkpoint(checkpoints)
    gloo = world > 1 and _on_cpu(config.device)
    if world > 1:
        done, resume_from = _rank_zero_view((done, resume_from), gloo)
    if done is not None:
        if world > 1:
            _leave_process_group()
        return TrainResult(output, done["counts"], done["log"], reused=True)

    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import EarlyStoppingCallback

    clock = Stopwatch()
    triplets = load_triplets(triplets_path)  # JSONL, or an exported dataset folder / Parquet file
    empty = 0
    if config.skip_empty and config.num_negatives > 0:
        kept = [t for t in triplets if t.negatives]
        empty, triplets = len(triplets) - len(kept), kept
        if not triplets:
            hint = (
                ""
                if config.loss == "margin-mse"
                else "; --num-negatives 0 (a grid's train = { num_negatives = 0 }) trains on the pairs alone"
            )
            raise DataError(
                Path(triplets_path),
                None,
                f"none of its {empty} triplets has a negative left (did a filter drop them all?): "
                f"nothing to train on with negatives{hint}",
            )
    check_negatives(triplets, triplets_path, config.num_negatives)
    distil = config.loss == "margin-mse"
    scorer = check_scores(triplets, triplets_path, config.num_negatives) if distil else None
    try:
        train_part, validation_part = split_by_query(triplets, config.validation_fraction, config.seed)
    except HardnegError as exc:
        raise DataError(Path(triplets_path), None, str(exc)) from None
    counts: dict[str, Any] = {"triplets": len(triplets), "queries": len({t.query_id for t in triplets})}
    if empty:
        counts["skipped_empty"] = empty
    train_columns = example_columns(train_part, config.num_negatives, config.short_triplets, counts, distil)
    validation_columns = example_columns(
        validation_part, config.num_negatives, config.short_triplets, {}, distil
    )
    counts.update(
        train_examples=len(train_columns["anchor"]),
        validation_examples=len(validation_columns["anchor"]),
        validation_queries=len({t.query_id for t in validation_part}),
    )
    for name, part in (("training", train_columns), ("validation", validation_columns)):
        if len(part["anchor"]) < 2:
            raise DataError(
                Path(triplets_path), None, f"too few {name} examples ({len(part['anchor'])}) for batches"
            )
    clock.lap("prepare")

    device, use_cpu = config.device, config.device == "cpu" or gloo
    if world > 1:  # each process owns one GPU (LOCAL_RANK), or shares the CPU
        device = "cpu" if gloo else f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    model = load_sentence_transformer(config.base_model, config.max_seq_length, device=device)
    early_stopping = config.patience is not None
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,  # with split_batches: the global batch, split
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a ratio
        seed=config.seed,
        # A repeated text in a batch is a false in-batch negative; several processes need full batches.
        batch_sampler=_full_batch_sampler if world > 1 else BatchSamplers.NO_DUPLICATES,
        dataloader_drop_last=world > 1,  # what sentence-transformers forces under DDP; full batches drop none
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        eval_on_start=resume_from is None,  # the base model's validation loss: the line to beat
        save_strategy="steps",
        save_steps=config.eval_steps,
        save_total_limit=2,  # with load_best_model_at_end, the best one is kept as well
        load_best_model_at_end=early_stopping,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=max(1, config.eval_steps // 5),
        report_to="none",
        disable_tqdm=not show_progress,
        use_cpu=use_cpu,
        ddp_backend="gloo" if gloo else None,  # None: accelerate picks nccl on GPUs
        # Each process gets its slice of the batch the one-process run would see: the no-duplicates
        # rule then holds across devices, whose passages the loss gathers.
        accelerator_config={"split_batches": True} if world > 1 else None,
        dataloader_pin_memory=not use_cpu and torch.cuda.is_available(),
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(train_columns),
        eval_dataset=Dataset.from_dict(validation_columns),
        loss=build_loss(model, config, gather=world > 1, device=device),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience)] * early_stopping
        + (callbacks or []),
    )
    trainer.train(resume_from_checkpoint=resume_from)
    clock.lap("train")

    state = trainer.state
    start = next((e["eval_loss"] for e in state.log_history if "eval_loss" in e and e.get("step") == 0), None)
    counts.update(
        steps=state.global_step,
        start_validation_loss=start,
        best_step=_step_of(state.best_model_checkpoint),
        best_validation_loss=state.best_metric,
        resumed_from=resume_from and Path(resume_from).name,
        stopped_early=early_stopping and state.global_step < state.max_steps,
        saved="best checkpoint" if early_stopping else "last step",
        world_size=world,
        loss=describe(config, scorer),
    )
    sources = sorted({n.source for t in triplets for n in t.negatives})
    counts["sources"] = sources
    if trainer.is_world_process_zero():
        _save(model, output, triplets_path, config, sources, counts)
        provenance = {
            "trained_by": "hardneg train",
            "key": key,
            "triplets": str(Path(triplets_path).resolve()),
            "counts": counts,
            "timings": clock.laps,
            "log": state.log_history,
        }
        write_json(output / MODEL_RECORD, provenance)
        shutil.rmtree(checkpoints, ignore_errors=True)  # the saved model supersedes them
    trainer.accelerator.wait_for_everyone()  # the other ranks return once the model is in place
    return TrainResult(output, counts, state.log_history, timings=clock.laps)


def _on_cpu(device: str | None) -> bool:
    """Several processes train on the CPU when asked to, or when there is no CUDA (gloo, not nccl)."""
    import torch

    return device == "cpu" or not torch.cuda.is_available()


def _rank_zero_view(view: Any, gloo: bool) -> Any:
    """Rank 0's answer to 'reuse the model? resume from which checkpoint?' on every rank, so all
    reuse or none and all resume from the same step, however the ranks see a shared folder."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    PartialState(cpu=gloo, backend="gloo" if gloo else None)  # the process group the trainer joins later
    return broadcast_object_list([view])[0]


def _leave_process_group() -> None:
    """Every rank reuses the model: all meet, then leave the group, so none exits while another's gloo
    connection to it is still open (a peer seeing it close aborts with SIGABRT)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def full_batches(batches: Iterable[list[int]], size: int, texts: Callable[[int], set]) -> Iterator[list[int]]:
    """Batches of exactly ``size``: each is split evenly over the processes and their embeddings
    gathered, which needs equal shapes. A short batch (an epoch's last, or one the no-duplicates rule
    left short) is topped up with earlier examples of the epoch sharing no text with it, else with
    its own (a dataset smaller than a batch)."""
    earlier: list[int] = []
    for batch in batches:
        if len(batch) < size:
            seen = set().union(*(texts(i) for i in batch))
            for index in earlier:
                if len(batch) == size:
                    break
                if seen.isdisjoint(texts(index)):
                    batch.append(index)
                    seen |= texts(index)
            own = list(batch)
            batch += [own[i % len(own)] for i in range(size - len(batch))]
        earlier += batch
        yield batch


def _full_batch_sampler(dataset, **kwargs):
    """The no-duplicates sampler, whose short batches are topped up (``full_batches``). Under DDP
    sentence-transformers sets ``drop_last`` against uneven last batches; these never are, so none
    is dropped: an epoch has the one-process run's steps, and a small validation set still a batch."""
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    class FullBatches(NoDuplicatesBatchSampler):
        def __iter__(self):
            return full_batches(super().__iter__(), self.batch_size, lambda i: set(self.dataset[i].values()))

    return FullBatches(dataset, **{**kwargs, "drop_last": False})


def _step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None


def _save(
    model, output: Path, triplets_path: str | Path, config: TrainSettings, sources: list[str], counts: dict
) -> None:
    """Save beside ``output`` and move into place, so a crash never leaves half a model; the model
    card says what it was trained on."""
    model.model_card_data.model_name = (
        f"{config.base_model} fine-tuned by hardneg on {Path(triplets_path).name}"
    )
    staging = output.with_name(f".{output.name}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    card = staging / "README.md"
    card.write_text(
        card.read_text(encoding="utf-8") + _card_section(triplets_path, config, sources, counts),
        encoding="utf-8",
    )
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)


def _card_section(triplets_path: str | Path, config: TrainSettings, sources: list[str], counts: dict) -> str:
    settings = "\n".join(f"- `{name}`: {value}" for name, value in config.model_dump(mode="json").items())
    return (
        "\n\n## hardneg training\n\n"
        f"- Triplets: `{Path(triplets_path).resolve()}` "
        f"({counts['triplets']} triplets, {counts['queries']} queries)\n"
        f"- Negative sources: {', '.join(f'`{s}`' for s in sources) or 'none (in-batch only)'}\n"
        f"- Examples: {counts['train_examples']} training, {counts['validation_examples']} validation "
        f"({counts['validation_queries']} held-out queries)\n"
        f"- Steps: {counts['steps']}, lowest validation loss {counts['best_validation_loss']} at step "
        f"{counts['best_step']} ({counts['start_validation_loss']} before training); "
        f"saved: {counts['saved']}\n"
        f"\nSettings:\n\n{settings}\n"
    )


def _main(job_file: str) -> int:
    """What the runner's ``processes`` > 1 runs in each torchrun process (see hardneg.stages.training):
    the job file holds the paths and the config; a user error goes to its ``error_file``."""
    job = json.loads(Path(job_file).read_text())
    try:
        train_bi_encoder(
            job["triplets"], TrainSettings.model_validate(job["config"]), job["output"], job["show_progress"]
        )
    except HardnegError as exc:
        Path(job["error_file"]).write_text(str(exc))
        return 2
    return 0


if __name__ == "__main__":
    from hardneg.training.bi_encoder import _main as main  # the importable module's, not this copy's

    sys.exit(main(sys.argv[1]))
