"""`train`: fine-tune a bi-encoder on triplets with MultipleNegativesRankingLoss, as the study does.

Queries, not pairs, are split 90/10: a query with several positives on both sides would leak its
answers into validation. Validation loss is computed every ``eval_steps``; each evaluation is also a
checkpoint, so early stopping can restore the best one and an interrupted run resumes from the last.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.config import TrainConfig
from hardneg.data.records import Triplet, read_triplets
from hardneg.errors import DataError, HardnegError
from hardneg.manifest import Stopwatch, sha256_of, write_manifest
from hardneg.models import load_sentence_transformer
from hardneg.training import latest_checkpoint

PROVENANCE = "hardneg_training.json"


def split_by_query(triplets: list[Triplet], fraction: float, seed: int) -> tuple[list[Triplet], list[Triplet]]:
    """(train, validation): a seeded ``fraction`` of the queries goes to validation; at least two when
    there are four or more, since a validation batch needs two examples."""
    queries = sorted({t.query_id for t in triplets})
    if len(queries) < 2:
        raise HardnegError(f"a train/validation split needs at least 2 queries, got {len(queries)}")
    random.Random(seed).shuffle(queries)
    held_out = set(queries[: max(2 if len(queries) >= 4 else 1, round(fraction * len(queries)))])
    return [t for t in triplets if t.query_id not in held_out], [t for t in triplets if t.query_id in held_out]


def example_columns(triplets: list[Triplet], num_negatives: int, short: str, counts: dict[str, int]) -> dict[str, list]:
    """sentence-transformers columns ``anchor, positive, negative_1..k``. Every row needs all k:
    a short triplet repeats its own negatives ('pad') or is left out ('drop')."""
    columns: dict[str, list] = {"anchor": [], "positive": []}
    columns.update({f"negative_{i + 1}": [] for i in range(num_negatives)})
    for triplet in triplets:
        texts = [n.text for n in triplet.negatives]
        if len(texts) < num_negatives:
            if short == "drop":
                counts["dropped_short"] = counts.get("dropped_short", 0) + 1
                continue
            counts["padded_short"] = counts.get("padded_short", 0) + 1
            texts = [texts[i % len(texts)] for i in range(num_negatives)]
        columns["anchor"].append(triplet.query)
        columns["positive"].append(triplet.positive)
        for i in range(num_negatives):
            columns[f"negative_{i + 1}"].append(texts[i])
    return columns


def check_negatives(triplets: list[Triplet], path: str | Path, num_negatives: int) -> None:
    """A triplet without negatives cannot be trained on: say where, and how to drop such lines."""
    if num_negatives == 0:
        return
    for triplet in triplets:
        if not triplet.negatives:
            raise DataError(Path(path), triplet._line, "field 'negatives': no negatives (train with --skip-empty, "
                            "or drop such triplets with 'hardneg combine FILE --min-negatives 1 -o OUT')")  # fmt: skip


@dataclass
class TrainResult:
    model_dir: Path
    counts: dict[str, Any]
    log: list[dict[str, Any]]
    """The trainer's log: training losses, and validation losses at every evaluation."""
    reused: bool = False


def _cache_key(triplets_path: str | Path, config: TrainConfig) -> dict[str, Any]:
    return {"triplets_sha256": sha256_of(triplets_path), "settings": config.model_dump(mode="json")}


def _finished(output: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The provenance of a model already trained from the same file and settings, if any."""
    try:
        provenance = json.loads((output / PROVENANCE).read_text())
    except (OSError, ValueError):
        return None
    return provenance if provenance.get("key") == key else None


def train_bi_encoder(
    triplets_path: str | Path,
    config: TrainConfig,
    output: str | Path,
    show_progress: bool = True,
    callbacks: list | None = None,
) -> TrainResult:
    """Train and save to ``output``; a rerun with the same triplets and settings reuses the model,
    an interrupted one resumes from ``<output>.checkpoints``. ``callbacks`` are transformers
    ``TrainerCallback``s (logging, or a test's simulated crash)."""
    output = Path(output)
    key = _cache_key(triplets_path, config)
    done = _finished(output, key)
    if done is not None:
        return TrainResult(output, done["counts"], done["log"], reused=True)

    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import EarlyStoppingCallback

    clock = Stopwatch()
    triplets = read_triplets(triplets_path)
    empty = 0
    if config.skip_empty and config.num_negatives > 0:
        kept = [t for t in triplets if t.negatives]
        empty, triplets = len(triplets) - len(kept), kept
    check_negatives(triplets, triplets_path, config.num_negatives)
    try:
        train_part, validation_part = split_by_query(triplets, config.validation_fraction, config.seed)
    except HardnegError as exc:
        raise DataError(Path(triplets_path), None, str(exc)) from None
    counts: dict[str, Any] = {"triplets": len(triplets), "queries": len({t.query_id for t in triplets})}
    if empty:
        counts["skipped_empty"] = empty
    train_columns = example_columns(train_part, config.num_negatives, config.short_triplets, counts)
    validation_columns = example_columns(validation_part, config.num_negatives, config.short_triplets, {})
    counts.update(train_examples=len(train_columns["anchor"]), validation_examples=len(validation_columns["anchor"]),
                  validation_queries=len({t.query_id for t in validation_part}))  # fmt: skip
    for name, part in (("training", train_columns), ("validation", validation_columns)):
        if len(part["anchor"]) < 2:
            raise DataError(Path(triplets_path), None, f"too few {name} examples ({len(part['anchor'])}) for batches")
    clock.lap("prepare")

    model = load_sentence_transformer(config.base_model, config.max_seq_length, device=config.device)
    checkpoints = output.with_name(output.name + ".checkpoints")
    resume_from = latest_checkpoint(checkpoints)
    early_stopping = config.patience is not None
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a ratio
        seed=config.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # a repeated text in a batch is a false in-batch negative
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
        use_cpu=config.device == "cpu",
        dataloader_pin_memory=config.device != "cpu" and torch.cuda.is_available(),
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(train_columns),
        eval_dataset=Dataset.from_dict(validation_columns),
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience)] * early_stopping + (callbacks or []),
    )
    trainer.train(resume_from_checkpoint=resume_from)
    clock.lap("train")

    state = trainer.state
    start = next((e["eval_loss"] for e in state.log_history if "eval_loss" in e and e.get("step") == 0), None)
    counts.update(steps=state.global_step, start_validation_loss=start, best_step=_step_of(state.best_model_checkpoint),
                  best_validation_loss=state.best_metric, resumed_from=resume_from and Path(resume_from).name,
                  stopped_early=early_stopping and state.global_step < state.max_steps,
                  saved="best checkpoint" if early_stopping else "last step")  # fmt: skip
    sources = sorted({n.source for t in triplets for n in t.negatives})
    counts["sources"] = sources
    _save(model, output, triplets_path, config, sources, counts)
    provenance = {"trained_by": "hardneg train", "key": key, "triplets": str(Path(triplets_path).resolve()),
                  "counts": counts, "log": state.log_history}  # fmt: skip
    (output / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
    write_manifest(output, "train", config, {"triplets": triplets_path}, counts, clock.laps)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the saved model supersedes them
    return TrainResult(output, counts, state.log_history)


def _step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None


def _save(model, output: Path, triplets_path: str | Path, config: TrainConfig, sources: list[str], counts: dict) -> None:
    """Save beside ``output`` and move into place, so a crash never leaves half a model; the model
    card says what it was trained on."""
    model.model_card_data.model_name = f"{config.base_model} fine-tuned by hardneg on {Path(triplets_path).name}"
    staging = output.with_name(f".{output.name}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    card = staging / "README.md"
    card.write_text(card.read_text(encoding="utf-8") + _card_section(triplets_path, config, sources, counts), encoding="utf-8")
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)


def _card_section(triplets_path: str | Path, config: TrainConfig, sources: list[str], counts: dict) -> str:
    settings = "\n".join(f"- `{name}`: {value}" for name, value in config.model_dump(mode="json").items())
    return (
        "\n\n## hardneg training\n\n"
        f"- Triplets: `{Path(triplets_path).resolve()}` ({counts['triplets']} triplets, {counts['queries']} queries)\n"
        f"- Negative sources: {', '.join(f'`{s}`' for s in sources) or 'none (in-batch only)'}\n"
        f"- Examples: {counts['train_examples']} training, {counts['validation_examples']} validation "
        f"({counts['validation_queries']} held-out queries)\n"
        f"- Steps: {counts['steps']}, lowest validation loss {counts['best_validation_loss']} at step "
        f"{counts['best_step']} ({counts['start_validation_loss']} before training); saved: {counts['saved']}\n"
        f"\nSettings:\n\n{settings}\n"
    )
