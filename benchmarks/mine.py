"""Time hardneg's mining against its peers on the SciFact train pairs, side by side in one run.

    .venv/bin/python benchmarks/mine.py [--cross-encoder runs/ce-scifact] [--skip-dense]

- BM25 mining: hardneg `mine --method bm25` against rank_bm25's BM25Okapi on the same tokens, top
  100 candidates, the same exclusions (judged positives, the positive's text), 5 negatives a pair;
  hardneg twice: building its index (cold cache), then loading the index that run saved.
- Dense mining: hardneg `mine --method dense` (cold embedding cache) against
  sentence_transformers.util.mine_hard_negatives, same model (minilm-l6), batch 64, 100
  candidates, 5 negatives, top sampling.
- Cross-encoder stage: hardneg `mine --method cross-encoder` (BM25 top 50, re-scored) against a
  bare CrossEncoder.predict over the same (query, passage) pairs; both in pairs per second.
Each contender runs in its own process; results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR, child_main, machine_line, run_child, update_section  # noqa: E402

NUM_NEGATIVES, DEPTH, BATCH_SIZE, RERANK_DEPTH, CE_QUERIES = 5, 100, 64, 50, 100
RAW = Path(__file__).resolve().parent / "results" / "mine.json"  # every contender's last measurement
ARGS = argparse.Namespace(cross_encoder="minilm-l6")


def _pairs(dataset, limit_queries: int | None = None):
    from hardneg.data.pairs import build_pairs
    from hardneg.settings.data import PairsSettings

    pairs = build_pairs(dataset, PairsSettings(dataset=dataset.name))
    if limit_queries:
        keep = list(dict.fromkeys(p.query_id for p in pairs))[:limit_queries]
        pairs = [p for p in pairs if p.query_id in set(keep)]
    return pairs


def _hardneg(dataset, pairs, **settings) -> dict:
    from hardneg.mining import mine
    from hardneg.settings.mining import MineSettings
    from hardneg.settings.retrieval import DenseSettings

    config = MineSettings(
        dataset=dataset.name,
        num_negatives=NUM_NEGATIVES,
        depth=DEPTH,
        batch_size=BATCH_SIZE,
        dense=DenseSettings(batch_size=BATCH_SIZE),
        **settings,
    )
    start = time.perf_counter()
    result = mine(pairs, dataset, config, show_progress=False)
    return {
        "seconds": time.perf_counter() - start,
        "negatives": result.counts["negatives"],
        "candidates": result.counts["candidates"],
        "timings": result.timings,
    }


def child_hardneg_bm25(dataset) -> dict:
    return _hardneg(dataset, _pairs(dataset), method="bm25")


def child_rank_bm25(dataset) -> dict:
    import bm25s
    import numpy as np
    import Stemmer
    from rank_bm25 import BM25Okapi

    from hardneg.data.records import normalize_text

    pairs = _pairs(dataset)
    stemmer = Stemmer.Stemmer("english")
    start = time.perf_counter()
    doc_ids = list(dataset.corpus)
    texts = [dataset.corpus[d].full_text for d in doc_ids]
    normalized = [normalize_text(t) for t in texts]
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
    index = BM25Okapi(tokens, k1=1.2, b=0.75)
    queries = {p.query_id: p.query for p in pairs}
    query_tokens = bm25s.tokenize(
        list(queries.values()), stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )
    top = {}
    for query_id, q_tokens in zip(queries, query_tokens):
        scores = index.get_scores(q_tokens)
        top[query_id] = [i for i in np.argsort(-scores)[:DEPTH] if scores[i] > 0]
    negatives = 0
    for pair in pairs:
        judged = {d for d, grade in dataset.judged_documents(pair.query_id).items() if grade > 0}
        positive = normalize_text(pair.positive)
        chosen = [i for i in top[pair.query_id] if doc_ids[i] not in judged and normalized[i] != positive]
        negatives += len(chosen[:NUM_NEGATIVES])
    return {"seconds": time.perf_counter() - start, "negatives": negatives}


def child_hardneg_dense(dataset) -> dict:
    return _hardneg(dataset, _pairs(dataset), method="dense", model="minilm-l6")


def child_st_dense(dataset) -> dict:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from hardneg.core.models import load_sentence_transformer

    pairs = _pairs(dataset)
    start = time.perf_counter()
    model = load_sentence_transformer("minilm-l6", max_seq_length=256)
    data = Dataset.from_dict({"query": [p.query for p in pairs], "positive": [p.positive for p in pairs]})
    corpus = [doc.full_text for doc in dataset.corpus.values()]
    mined = mine_hard_negatives(
        data,
        model,
        corpus=corpus,
        range_max=DEPTH,
        num_negatives=NUM_NEGATIVES,
        sampling_strategy="top",
        batch_size=BATCH_SIZE,
        output_format="n-tuple",
        verbose=False,
    )
    negatives = sum(1 for row in mined for key, value in row.items() if key.startswith("negative") and value)
    return {"seconds": time.perf_counter() - start, "negatives": negatives}


def child_hardneg_ce(dataset) -> dict:
    pairs = _pairs(dataset, CE_QUERIES)
    result = _hardneg(
        dataset, pairs, method="cross-encoder", model=ARGS.cross_encoder, rerank_depth=RERANK_DEPTH
    )
    # The stage is the re-scoring of BM25's candidates (filters are off, so no positive is scored);
    # the whole mine() call, BM25 and model loading included, is kept as total_seconds.
    return {
        **result,
        "seconds": result["timings"]["cross_encoder_s"],
        "total_seconds": result["seconds"],
        "pairs_scored": result["candidates"],
    }


def child_bare_predict(dataset) -> dict:
    from hardneg.core.models import load_cross_encoder
    from hardneg.retrieval import BM25Retriever

    pairs = _pairs(dataset, CE_QUERIES)
    queries = {p.query_id: p.query for p in pairs}
    run = BM25Retriever(dataset.corpus, show_progress=False).search(queries, RERANK_DEPTH)
    texts = [(queries[q], dataset.corpus[d].full_text) for q, docs in run.items() for d in docs]
    model = load_cross_encoder(ARGS.cross_encoder)
    start = time.perf_counter()
    model.predict(texts, batch_size=BATCH_SIZE, show_progress_bar=False)
    return {"seconds": time.perf_counter() - start, "pairs_scored": len(texts)}


CHILDREN = {
    "hardneg-bm25": child_hardneg_bm25,
    "hardneg-bm25-warm": child_hardneg_bm25,  # run after hardneg-bm25 in the same cache: its index is saved
    "rank_bm25": child_rank_bm25,
    "hardneg-dense": child_hardneg_dense,
    "st-dense": child_st_dense,
    "hardneg-ce": child_hardneg_ce,
    "bare-predict": child_bare_predict,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=SHARED_BEIR / "scifact")
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--cross-encoder", default="minilm-l6", help="Model for the cross-encoder stage.")
    parser.add_argument("--skip-dense", action="store_true")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(CHILDREN), help="Rerun these; reuse the rest from RAW."
    )
    args = parser.parse_args()
    ARGS.cross_encoder = args.cross_encoder
    if args.child:
        child_main(CHILDREN, args.child, args.dataset)
        return

    names = ["hardneg-bm25", "hardneg-bm25-warm", "rank_bm25", "bare-predict", "hardneg-ce"]
    if not args.skip_dense:
        names += ["st-dense", "hardneg-dense"]
    results = json.loads(RAW.read_text()) if args.only and RAW.exists() else {}
    with tempfile.TemporaryDirectory() as cache:
        for name in args.only or names:
            results[name] = run_child(
                __file__, name, args.dataset, Path(cache), "--cross-encoder", args.cross_encoder
            )
            print(name, results[name], flush=True)
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(results, indent=2) + "\n")

    def row(label: str, ours: dict, peer: dict, unit: str = "seconds") -> str:
        if unit == "pairs/s":
            ours_v, peer_v = ours["pairs_scored"] / ours["seconds"], peer["pairs_scored"] / peer["seconds"]
            ratio = ours_v / peer_v
        else:
            ours_v, peer_v = ours["seconds"], peer["seconds"]
            ratio = peer_v / ours_v
        return (
            f"| {label} | {peer_v:.2f} {unit} | {ours_v:.2f} {unit} | {ratio:.2f}x | "
            f"{peer['peak_rss_mb']:.0f} / {ours['peak_rss_mb']:.0f} |"
        )

    lines = [
        f"{machine_line('mine.py')}, dataset `{args.dataset.name}` train pairs. Ratio above 1 means hardneg "
        f"is faster. {NUM_NEGATIVES} negatives a pair, {DEPTH} candidates; the cross-encoder stage scores "
        f"BM25's top {RERANK_DEPTH} for the first {CE_QUERIES} train queries with `{args.cross_encoder}`.",
        "",
        "| mining | peer | hardneg | speed ratio | peak RSS MB (peer / hardneg) |",
        "|---|---|---|---|---|",
        row(
            "BM25: rank_bm25 BM25Okapi vs hardneg (bm25s), index built",
            results["hardneg-bm25"],
            results["rank_bm25"],
        ),
        row(
            "BM25: rank_bm25 BM25Okapi vs hardneg, index loaded from its cache",
            results["hardneg-bm25-warm"],
            results["rank_bm25"],
        ),
        row(
            "cross-encoder: bare CrossEncoder.predict vs hardneg re-scoring stage",
            results["hardneg-ce"],
            results["bare-predict"],
            "pairs/s",
        ),
    ]
    if not args.skip_dense:
        lines.append(
            row(
                "dense: sentence-transformers mine_hard_negatives vs hardneg (cold cache)",
                results["hardneg-dense"],
                results["st-dense"],
            )
        )
    update_section("mine", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
