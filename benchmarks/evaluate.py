"""Time hardneg's evaluation against its peers on SciFact, side by side in one run.

    .venv/bin/python benchmarks/evaluate.py [--dataset ../shared/data/beir/scifact] [--skip-dense]

BM25: hardneg (bm25s) against rank_bm25's BM25Okapi, both fed the same tokens (regex, English
stopwords, Snowball stemmer), each timed from raw texts to the top 100 of every test query.
Dense: hardneg against BEIR's EvaluateRetrieval + DenseRetrievalExactSearch with the same model,
batch size and max_seq_length, hardneg with a cold embedding cache. Every contender runs in its
own child process so that its peak memory (max RSS) is its own. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR, child_main, machine_line, run_child, update_section  # noqa: E402

DEFAULT_DATASET = SHARED_BEIR / "scifact"
BATCH_SIZE = 64
MAX_SEQ_LENGTH = 256
TOP_K = 100


def _ndcg(dataset, run) -> float:
    from hardneg.evaluation.metrics import evaluate_run

    return evaluate_run(dataset.split_qrels("test"), run, ["ndcg@10"])[0]["ndcg@10"]


def child_hardneg_bm25(dataset) -> dict:
    from hardneg.evaluation.evaluate import top_k_without_self
    from hardneg.retrieval import BM25Retriever

    queries = dataset.split_queries("test")
    start = time.perf_counter()
    retriever = BM25Retriever(dataset.corpus, show_progress=False)
    searched = time.perf_counter()
    run = top_k_without_self(retriever.search(queries, TOP_K + 1), TOP_K)
    end = time.perf_counter()
    return {
        "seconds": end - start,
        "tokenize_s": retriever.timings["tokenize_s"],
        "index_s": retriever.timings["index_s"],
        "search_s": end - searched,
        "ndcg@10": _ndcg(dataset, run),
    }


def child_rank_bm25(dataset) -> dict:
    import bm25s
    import numpy as np
    import Stemmer
    from rank_bm25 import BM25Okapi

    stemmer = Stemmer.Stemmer("english")
    queries = dataset.split_queries("test")
    start = time.perf_counter()
    texts = [doc.full_text for doc in dataset.corpus.values()]
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
    tokenized = time.perf_counter()
    index = BM25Okapi(tokens, k1=1.2, b=0.75)
    indexed = time.perf_counter()
    query_tokens = bm25s.tokenize(
        list(queries.values()), stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )
    doc_ids = list(dataset.corpus)
    run = {}
    for qid, q_tokens in zip(queries, query_tokens):
        scores = index.get_scores(q_tokens)
        top = np.argsort(-scores)[: TOP_K + 1]
        run[qid] = {doc_ids[i]: float(scores[i]) for i in top if scores[i] > 0 and doc_ids[i] != qid}
    end = time.perf_counter()
    return {
        "seconds": end - start,
        "tokenize_s": tokenized - start,
        "index_s": indexed - tokenized,
        "search_s": end - indexed,
        "ndcg@10": _ndcg(dataset, run),
    }


def child_hardneg_dense(dataset) -> dict:
    from hardneg.evaluation.evaluate import top_k_without_self
    from hardneg.retrieval import DenseRetriever
    from hardneg.settings.retrieval import DenseSettings

    queries = dataset.split_queries("test")
    settings = DenseSettings(batch_size=BATCH_SIZE, max_seq_length=MAX_SEQ_LENGTH)
    start = time.perf_counter()
    retriever = DenseRetriever(dataset.corpus, "minilm-l6", settings, show_progress=False)
    run = top_k_without_self(retriever.search(queries, TOP_K + 1), TOP_K)
    return {"seconds": time.perf_counter() - start, "ndcg@10": _ndcg(dataset, run)}


def child_beir_dense(dataset) -> dict:
    from beir.retrieval import models
    from beir.retrieval.evaluation import EvaluateRetrieval
    from beir.retrieval.search.dense import DenseRetrievalExactSearch

    from hardneg.core.models import resolve_model

    queries = dataset.split_queries("test")
    start = time.perf_counter()
    corpus = {doc_id: {"title": d.title, "text": d.text} for doc_id, d in dataset.corpus.items()}
    model = models.SentenceBERT(resolve_model("minilm-l6"), max_length=MAX_SEQ_LENGTH, device="cpu")
    model.q_model.max_seq_length = MAX_SEQ_LENGTH
    search = DenseRetrievalExactSearch(model, batch_size=BATCH_SIZE, show_progress_bar=False)
    retriever = EvaluateRetrieval(search, score_function="cos_sim", k_values=[10, 100])
    run = retriever.retrieve(corpus, queries)
    seconds = time.perf_counter() - start
    ndcg, *_ = retriever.evaluate(dataset.split_qrels("test"), run, [10])
    return {"seconds": seconds, "ndcg@10": _ndcg(dataset, run), "beir_ndcg@10": ndcg["NDCG@10"]}


CHILDREN = {
    "hardneg-bm25": child_hardneg_bm25,
    "rank_bm25": child_rank_bm25,
    "hardneg-dense": child_hardneg_dense,
    "beir-dense": child_beir_dense,
}


def _dense_row(name: str, r: dict, base: dict) -> str:
    return (
        f"| {name} | {r['seconds']:.2f} | {base['seconds'] / r['seconds']:.2f}x | "
        f"{r['ndcg@10']:.4f} | {r['peak_rss_mb']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--repeats", type=int, default=3, help="BM25 runs per contender (median kept).")
    parser.add_argument("--skip-dense", action="store_true")
    args = parser.parse_args()
    if args.child:
        child_main(CHILDREN, args.child, args.dataset)
        return

    with tempfile.TemporaryDirectory() as cache_dir:
        cache = Path(cache_dir)
        results: dict[str, dict] = {}
        for name in ("hardneg-bm25", "rank_bm25"):
            runs = [run_child(__file__, name, args.dataset, cache) for _ in range(args.repeats)]
            results[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            print(name, results[name], flush=True)
        if not args.skip_dense:
            for name in ("beir-dense", "hardneg-dense"):
                results[name] = run_child(__file__, name, args.dataset, cache)
                print(name, results[name], flush=True)

    ours, peer = results["hardneg-bm25"], results["rank_bm25"]
    lines = [
        f"{machine_line('evaluate.py')}, dataset `{args.dataset.name}` test split, "
        f"top {TOP_K}. Each contender runs in its own process; speed-up = peer seconds / hardneg seconds "
        f"(above 1 means hardneg is faster). BM25 figures are medians of {args.repeats} runs; both sides "
        "get the same tokens (bm25s's regex, English stopwords, Snowball stemmer).",
        "",
        "| BM25 phase | rank_bm25 BM25Okapi (s) | hardneg, bm25s (s) | speed-up |",
        "|---|---|---|---|",
    ]
    for phase, key in [
        ("tokenize corpus", "tokenize_s"),
        ("build index", "index_s"),
        ("search 300 queries, top 100", "search_s"),
        ("total, texts to ranked lists", "seconds"),
    ]:
        lines.append(f"| {phase} | {peer[key]:.3f} | {ours[key]:.3f} | {peer[key] / ours[key]:.1f}x |")
    lines += [
        f"| nDCG@10 | {peer['ndcg@10']:.4f} | {ours['ndcg@10']:.4f} | |",
        f"| peak RSS (MB) | {peer['peak_rss_mb']:.0f} | {ours['peak_rss_mb']:.0f} | |",
    ]
    if not args.skip_dense:
        peer = results["beir-dense"]
        lines += [
            "",
            f"Dense: `minilm-l6`, batch {BATCH_SIZE}, max_seq_length {MAX_SEQ_LENGTH}, cosine, exact search.",
            "",
            "| dense contender | seconds | speed-up vs peer | nDCG@10 | peak RSS (MB) |",
            "|---|---|---|---|---|",
            _dense_row("BEIR EvaluateRetrieval + DenseRetrievalExactSearch (peer)", peer, peer),
            _dense_row("hardneg dense, cold embedding cache", results["hardneg-dense"], peer),
        ]
    update_section("evaluate", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
