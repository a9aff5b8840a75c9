"""Time `hardneg train` against a bare SentenceTransformerTrainer on identical data and settings.

    .venv/bin/python benchmarks/train.py [--steps 20] [--repeats 2]

Both train minilm-l6 with MultipleNegativesRankingLoss on the same SciFact BM25 triplets (mined
once by the parent, split once 90/10 by query), batch 16, the same negatives per example, sequence
length, steps, evaluation + checkpoint every N steps and early stopping. hardneg's time covers its
whole call (reading and checking the triplets, splitting, loading the model, training, saving the
model, its card and manifest); the bare one loads the model, trains and saves. Both import the
libraries before their clock starts. Contenders alternate
in their own processes, ``--repeats`` times each; the best run of each is compared.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR, machine_line, update_section  # noqa: E402

RAW = Path(__file__).resolve().parent / "results" / "train.json"
SETTINGS = dict(
    num_negatives=3, batch_size=16, max_seq_length=64, eval_steps=5, patience=3, learning_rate=2e-5
)


def child_hardneg(work: Path, steps: int) -> dict:
    import shutil

    import datasets  # noqa: F401  (imported before the clock starts, as in the bare run)
    import sentence_transformers  # noqa: F401
    import transformers  # noqa: F401

    from hardneg.settings.training import TrainSettings
    from hardneg.training.bi_encoder import train_bi_encoder

    shutil.rmtree(work / "hardneg-model", ignore_errors=True)  # else a repeat reuses the model it trained
    config = TrainSettings(**SETTINGS, max_steps=steps)
    start = time.perf_counter()
    result = train_bi_encoder(work / "triplets.jsonl", config, work / "hardneg-model", show_progress=False)
    seconds = time.perf_counter() - start
    assert not result.reused
    loop = next(entry for entry in result.log if "train_samples_per_second" in entry)
    return {
        "seconds": seconds,
        "steps": result.counts["steps"],
        "loop_samples_per_s": loop["train_samples_per_second"],
    }


def child_bare(work: Path, steps: int) -> dict:
    import shutil

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import EarlyStoppingCallback

    from hardneg.core.models import resolve_model

    columns = json.loads((work / "columns.json").read_text())
    start = time.perf_counter()
    model = SentenceTransformer(resolve_model("minilm-l6"), device="cpu")
    model.max_seq_length = SETTINGS["max_seq_length"]
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "bare-checkpoints"),
        max_steps=steps,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=16,
        learning_rate=SETTINGS["learning_rate"],
        warmup_steps=0.1,
        seed=0,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps",
        eval_steps=SETTINGS["eval_steps"],
        eval_on_start=True,
        save_strategy="steps",
        save_steps=SETTINGS["eval_steps"],
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=max(1, SETTINGS["eval_steps"] // 5),
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(columns["train"]),
        eval_dataset=Dataset.from_dict(columns["validation"]),
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=SETTINGS["patience"])],
    )
    output = trainer.train()
    model.save_pretrained(str(work / "bare-model"))
    seconds = time.perf_counter() - start
    shutil.rmtree(work / "bare-checkpoints", ignore_errors=True)
    return {
        "seconds": seconds,
        "steps": trainer.state.global_step,
        "loop_samples_per_s": output.metrics["train_samples_per_second"],
    }


CHILDREN = {"hardneg": child_hardneg, "bare": child_bare}


def prepare(dataset_path: Path, work: Path) -> dict:
    """SciFact train pairs with 3 BM25 negatives each, and the same split as columns for the bare run."""
    from hardneg.data.beir import load_beir
    from hardneg.data.pairs import build_pairs
    from hardneg.data.records import write_records
    from hardneg.mining import mine
    from hardneg.settings.data import PairsSettings
    from hardneg.settings.mining import MineSettings
    from hardneg.training.bi_encoder import example_columns, split_by_query

    dataset = load_beir(dataset_path)
    pairs = build_pairs(dataset, PairsSettings(dataset=dataset.name))
    mined = mine(
        pairs, dataset, MineSettings(dataset=dataset.name, num_negatives=SETTINGS["num_negatives"]), False
    )
    write_records(work / "triplets.jsonl", mined.triplets)
    train, validation = split_by_query(mined.triplets, 0.1, 0)
    k = SETTINGS["num_negatives"]
    columns = {
        "train": example_columns(train, k, "pad", {}),
        "validation": example_columns(validation, k, "pad", {}),
    }
    (work / "columns.json").write_text(json.dumps(columns))
    return {"triplets": len(mined.triplets), "train_examples": len(columns["train"]["anchor"])}


def run_child(name: str, work: Path, steps: int) -> dict:
    import os
    import subprocess

    env = {**os.environ, "HARDNEG_CACHE": str(work / "cache"), "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, __file__, "--child", name, "--work", str(work), "--steps", str(steps)]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=SHARED_BEIR / "scifact")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.child:
        import resource

        result = CHILDREN[args.child](args.work, args.steps)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = prepare(args.dataset, work)
        runs: dict[str, list[dict]] = {"bare": [], "hardneg": []}
        for _ in range(args.repeats):
            for name in ("bare", "hardneg"):
                runs[name].append(run_child(name, work, args.steps))
                print(name, runs[name][-1], flush=True)
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(
        json.dumps({"data": data, "settings": SETTINGS, "steps": args.steps, "runs": runs}, indent=2) + "\n"
    )

    best = {name: min(results, key=lambda r: r["seconds"]) for name, results in runs.items()}
    samples = {name: r["steps"] * SETTINGS["batch_size"] / r["seconds"] for name, r in best.items()}
    loop = {name: max(r["loop_samples_per_s"] for r in results) for name, results in runs.items()}
    lines = [
        f"{machine_line('train.py')}, `{args.dataset.name}` train pairs with "
        f"{SETTINGS['num_negatives']} BM25 negatives each ({data['triplets']} triplets, "
        f"{data['train_examples']} training examples), minilm-l6, {args.steps} steps of batch "
        f"{SETTINGS['batch_size']}, sequence length {SETTINGS['max_seq_length']}, "
        f"validation + checkpoint every {SETTINGS['eval_steps']} steps, early stopping (patience "
        f"{SETTINGS['patience']}). Best of {args.repeats} alternating runs each.",
        "",
        "| contender | wall time | samples/s (whole call) | samples/s (training loop) | peak RSS MB |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {best[name]['seconds']:.1f} s | {samples[name]:.2f} | {loop[name]:.2f} | "
            f"{best[name]['peak_rss_mb']:.0f} |"
            for name in ("bare", "hardneg")
        ),
        "",
        f"hardneg vs bare, samples/s of the whole call: **{samples['hardneg'] / samples['bare']:.2f}x** "
        f"(target >= 0.95x); of the training loop alone: {loop['hardneg'] / loop['bare']:.2f}x. All runs, "
        f"seconds: bare {[round(r['seconds'], 1) for r in runs['bare']]}, hardneg "
        f"{[round(r['seconds'], 1) for r in runs['hardneg']]}.",
    ]
    update_section("train", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
