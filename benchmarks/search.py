"""Exact dense search through FAISS against the torch path, and corpus encoding on two processes
against one, each pair in one run.

    .venv/bin/python benchmarks/search.py [--vectors 1000000] [--queries 300] [--documents 600]

search: ``--vectors`` random unit 384-d vectors (what MiniLM produces) and ``--queries`` queries;
top-100 by hardneg's torch path (chunks of 50,000 documents) and by FAISS IndexFlatIP; the time
of the search alone (building the flat index included for FAISS), best of 2, and whether the
top-100 lists are identical.
encoding: the first ``--documents`` SciFact documents at 128 tokens with MiniLM, one process
(torch's own threads) against ``devices = ["cpu", "cpu"]`` (sentence-transformers' multi-process
pool, pool start-up included); the largest absolute difference between the two embeddings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR, machine_line, update_section  # noqa: E402

RAW = Path(__file__).resolve().parent / "results" / "search.json"


def best_of(runs: int, work):
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - began)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--documents", type=int, default=600)
    args = parser.parse_args()
    from hardneg.core.models import load_sentence_transformer
    from hardneg.data.beir import load_beir
    from hardneg.retrieval.dense import encode_corpus
    from hardneg.retrieval.search import top_k
    from hardneg.settings.retrieval import DenseSettings

    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((args.vectors, 384), dtype=np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = rng.standard_normal((args.queries, 384), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    torch_s, (torch_scores, torch_top, _) = best_of(2, partial(top_k, queries, corpus, 100, "exact", "torch"))
    faiss_s, (_, faiss_top, _) = best_of(2, partial(top_k, queries, corpus, 100, "exact", "faiss"))
    same_sets = int(sum(set(a) == set(b) for a, b in zip(torch_top, faiss_top)))
    same_order = int(sum(np.array_equal(a, b) for a, b in zip(torch_top, faiss_top)))
    # Where the order differs, how far apart (in torch's scores) are the documents that swapped?
    gaps = [
        float(np.abs(np.diff(torch_scores[i][np.nonzero(a != b)[0][0] : np.nonzero(a != b)[0][0] + 2])).max())
        for i, (a, b) in enumerate(zip(torch_top, faiss_top))
        if not np.array_equal(a, b)
    ]
    del corpus

    dataset = load_beir(SHARED_BEIR / "scifact")
    texts = [doc.full_text for doc in list(dataset.corpus.values())[: args.documents]]
    ids = [str(i) for i in range(len(texts))]
    model = load_sentence_transformer("minilm-l6", 128)
    one_s, one = best_of(
        1, lambda: encode_corpus(model, ids, texts, DenseSettings(max_seq_length=128), None, False)
    )
    two_settings = DenseSettings(max_seq_length=128, devices=["cpu", "cpu"])
    two_s, two = best_of(1, lambda: encode_corpus(model, ids, texts, two_settings, None, False))
    difference = float(np.abs(one - two).max())

    raw = {
        "vectors": args.vectors,
        "queries": args.queries,
        "torch_s": torch_s,
        "faiss_s": faiss_s,
        "same_top_100_sets": same_sets,
        "same_top_100_order": same_order,
        "max_swap_gap": max(gaps, default=0.0),
        "documents": len(texts),
        "one_process_s": one_s,
        "two_processes_s": two_s,
        "max_abs_difference": difference,
    }
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(raw, indent=2) + "\n")
    update_section(
        "search",
        f"""{machine_line("search.py")}.

| exact top-100, {args.vectors:,} x 384 vectors, {args.queries} queries | seconds (best of 2) """
        f"""| ratio to torch |
|---|---|---|
| torch chunks (hardneg's default) | {torch_s:.2f} | 1.00 |
| FAISS IndexFlatIP (index build included) | {faiss_s:.2f} | {faiss_s / torch_s:.2f} |

The same top-100 documents for {same_sets} of {args.queries} queries, in the same order for """
        f"""{same_order}; where the order differs, the swapped documents' scores are within """
        f"""{max(gaps, default=0.0):.1e} of each other (ties at float32 precision).

| encoding {len(texts)} SciFact documents, MiniLM at 128 tokens | seconds | ratio to one process |
|---|---|---|
| one process | {one_s:.1f} | 1.00 |
| `devices = ["cpu", "cpu"]` (multi-process pool) | {two_s:.1f} | {two_s / one_s:.2f} |

Largest absolute difference between the two sets of embeddings: {difference:.1e}.""",
    )
    print(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
