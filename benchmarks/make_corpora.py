"""Synthetic BEIR corpora of N documents made from SciFact's sentences, for the scale benchmarks.

    .venv/bin/python benchmarks/make_corpora.py 100000 300000 [1000000 2000000] [--out DIR] [--seed S]

Each corpus holds SciFact's 5,183 real documents (so its queries and qrels stay valid) plus
N - 5,183 fillers of ~1 KB: a title and body of SciFact sentences drawn at random (seeded), so the
vocabulary and lengths are SciFact's. queries.jsonl and qrels/ are SciFact's, copied. Written to
~/.cache/hardneg/bench-corpora/scifact-<N>/ (never into ../shared); an existing corpus is kept.
``--seed S`` (S > 0) draws other fillers into scifact-<N>-s<S>/: a corpus of the same size and kind
whose content, and so whose cached corpus store and BM25 index, differ (grid_memory.py's test sets).
The corpus appears only when complete (written under a temporary name, then renamed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
from pathlib import Path

from harness import SHARED_BEIR

OUT = Path("~/.cache/hardneg/bench-corpora").expanduser()
TARGET_BYTES = 1000
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences_of(source: Path) -> tuple[list[str], list[str]]:
    titles, sentences = [], []
    with (source / "corpus.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            titles.append(record["title"])
            sentences.extend(s for s in SENTENCE.split(record["text"]) if len(s) > 20)
    return titles, sentences


def corpus_name(documents: int, seed: int = 0) -> str:
    return f"scifact-{documents}" + (f"-s{seed}" if seed else "")


def make_corpus(documents: int, source: Path, out: Path, seed: int = 0) -> Path:
    target = out / corpus_name(documents, seed)
    if (target / "corpus.jsonl").is_file():
        return target
    titles, sentences = sentences_of(source)
    rng = random.Random(seed)
    staging = out / f".{target.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "qrels").mkdir(parents=True)
    real = (source / "corpus.jsonl").read_text().splitlines()
    with (staging / "corpus.jsonl").open("w") as corpus:
        for line in real[:documents]:
            corpus.write(line + "\n")
        for number in range(documents - min(documents, len(real))):
            body, size = [], 0
            while size < TARGET_BYTES:
                sentence = rng.choice(sentences)
                body.append(sentence)
                size += len(sentence) + 1
            record = {"_id": f"syn{number}", "title": rng.choice(titles), "text": " ".join(body)}
            corpus.write(json.dumps(record) + "\n")
    shutil.copy(source / "queries.jsonl", staging / "queries.jsonl")
    for qrels in (source / "qrels").glob("*.tsv"):
        shutil.copy(qrels, staging / "qrels" / qrels.name)
    os.replace(staging, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("documents", type=int, nargs="+")
    parser.add_argument("--source", type=Path, default=SHARED_BEIR / "scifact")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=0, help="seeds the fillers (> 0: named -s<seed>)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for documents in args.documents:
        path = make_corpus(documents, args.source, args.out, args.seed)
        print(f"{path}: {documents} documents, {(path / 'corpus.jsonl').stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
