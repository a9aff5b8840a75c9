"""`train-cross-encoder`: no trained cross-encoder installs offline, so train one from a base encoder
on (query, positive, BM25 negative) examples with sentence-transformers' CrossEncoderTrainer.

The saved folder says what it is (model card and ``hardneg_training.json``): its negatives are
labelled ``cross-encoder:<that folder>`` and never pass for the MS MARCO cross-encoder.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from hardneg.core.io import write_json
from hardneg.core.manifest import MODEL_RECORD, Stopwatch
from hardneg.core.models import resolve_model
from hardneg.data.beir import BeirDataset
from hardneg.data.records import Negative, Triplet
from hardneg.mining import mine
from hardneg.mining.mine import mining_input
from hardneg.settings.mining import MineSettings
from hardneg.settings.training import CrossEncoderTrainSettings
from hardneg.training import latest_checkpoint


def labelled_examples(triplets: list[Triplet]) -> dict[str, list]:
    """One positive (label 1) and each negative (label 0) per triplet, as dataset columns."""
    columns: dict[str, list] = {"query": [], "passage": [], "label": []}
    for triplet in triplets:
        for text, label in [(triplet.positive, 1.0)] + [(n.text, 0.0) for n in triplet.negatives]:
            columns["query"].append(triplet.query)
            columns["passage"].append(text)
            columns["label"].append(label)
    return columns


def tuple_examples(triplets: list[Triplet]) -> dict[str, list]:
    """(query, positive, negative_1..k) columns; a triplet with fewer negatives than the most is left
    out, since every row needs all columns."""
    width = max(len(t.negatives) for t in triplets)
    full = [t for t in triplets if len(t.negatives) == width]
    columns: dict[str, list] = {"query": [t.query for t in full], "positive": [t.positive for t in full]}
    for index in range(width):
        columns[f"negative_{index + 1}"] = [t.negatives[index].text for t in full]
    return columns


def add_random_negatives(
    triplets: list[Triplet], dataset: BeirDataset, count: int, seed: int
) -> list[Triplet]:
    """``count`` seeded random passages per triplet, never a judged positive of its query nor one
    of its negatives already."""
    if count == 0:
        return triplets
    rng = random.Random(seed)
    doc_ids = sorted(dataset.corpus)
    mixed = []
    for triplet in triplets:
        taken = {n.doc_id for n in triplet.negatives} | {triplet.positive_id}
        taken |= {d for d, grade in dataset.judged_documents(triplet.query_id).items() if grade > 0}
        extra: list[Negative] = []
        for _ in range(100 * count):
            if len(extra) == count:
                break
            doc_id = rng.choice(doc_ids)
            if doc_id not in taken:
                taken.add(doc_id)
                extra.append(Negative(text=dataset.corpus[doc_id].full_text, source="random", doc_id=doc_id))
        mixed.append(triplet.model_copy(update={"negatives": triplet.negatives + extra}))
    return mixed


def train_cross_encoder(
    pairs_path: str | Path, config: CrossEncoderTrainSettings, output: str | Path, show_progress: bool = True
) -> Path:
    """Mine BM25 negatives for the pairs, train, save to ``output`` with its counts in
    ``hardneg_training.json`` (the stage adds the manifest); resumes from its checkpoints."""
    import torch
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import (
        BinaryCrossEntropyLoss,
        MultipleNegativesRankingLoss,
    )

    output = Path(output)
    clock = Stopwatch()
    mining = MineSettings(
        dataset=config.dataset,
        data_root=config.data_root,
        corpus=config.corpus,
        num_negatives=config.num_negatives,
        range_min=config.range_min,
    )
    pairs, dataset = mining_input(pairs_path, mining)
    mined = mine(pairs, dataset, mining, show_progress=show_progress)
    triplets = add_random_negatives(mined.triplets, dataset, config.random_negatives, config.seed)
    columns = tuple_examples(triplets) if config.loss == "mnrl" else labelled_examples(triplets)
    examples = Dataset.from_dict(columns)
    clock.lap("mine")

    torch.manual_seed(config.seed)
    model = CrossEncoder(
        resolve_model(config.base_model), num_labels=1, max_length=config.max_length, device="cpu"
    )
    checkpoints = output.with_name(output.name + ".checkpoints")
    args = CrossEncoderTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a ratio
        seed=config.seed,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=max(1, config.save_steps // 5),
        report_to="none",
        disable_tqdm=not show_progress,
        use_cpu=True,
        dataloader_drop_last=False,
    )
    if config.loss == "mnrl":
        loss = MultipleNegativesRankingLoss(model, num_negatives=1)
    else:
        negatives_per_positive = float(config.num_negatives + config.random_negatives)
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(negatives_per_positive))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=examples, loss=loss)
    trainer.train(resume_from_checkpoint=latest_checkpoint(checkpoints))
    clock.lap("train")

    model.model_card_data.model_name = (
        f"hardneg cross-encoder trained offline from {config.base_model} on {dataset.name or 'its pairs'} "
        f"({len(pairs)} pairs, {config.num_negatives} BM25 and {config.random_negatives} random negatives "
        f"each{', from the pairs own positives' if config.corpus == 'pool' else ''}); "
        "not the MS MARCO cross-encoder"
    )
    model.save_pretrained(str(output))
    provenance = {
        "trained_by": "hardneg train-cross-encoder",
        "base_model": config.base_model,
        "dataset": dataset.name,
        "pairs": str(Path(pairs_path).resolve()),
        "examples": len(examples),
        "settings": config.model_dump(mode="json"),
        "training_loss": trainer.state.log_history[-1].get("train_loss"),
        "counts": {"pairs": len(pairs), "examples": len(examples), **mined.counts},
        "timings": clock.laps,
        "dataset_path": str(dataset.path) if config.dataset is not None else None,
    }
    write_json(output / MODEL_RECORD, provenance)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the finished model supersedes them
    return output
