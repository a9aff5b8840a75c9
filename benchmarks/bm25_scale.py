"""BM25 at scale: hardneg's evaluation and mining against a bare bm25s script, on synthetic corpora.

    .venv/bin/python benchmarks/make_corpora.py 100000 300000
    .venv/bin/python benchmarks/bm25_scale.py 100000 300000 [--mine 100000] [--min-free-gb 4] [--repeat 2]

For each size N (corpora from make_corpora.py), each in its own child process:
- bare: read corpus.jsonl (ids and title + " " + text), bm25s.tokenize (English stopwords, PyStemmer
  English), BM25 (Lucene, k1=1.2, b=0.75), retrieve the top 101 of SciFact's 300 test queries,
  drop score-0 fillers and the query's own id, keep 100: what hardneg's defaults do;
- hardneg: ``evaluate()`` from the folder, with an empty $HARDNEG_CACHE (corpus store and index built);
- hardneg, cached: the same again, corpus store and BM25 index loaded from that cache.
With ``--mine N``: the same three for mining SciFact's train pairs (5 negatives from the top 100;
bare: the 5 best not judged positive, their texts fetched).
Wall time is the child's, interpreter start included; peak RSS its ru_maxrss. A watchdog kills a
child when the machine's available memory drops under --min-free-gb, and a size is skipped when
its estimated need would cross that line. Results: benchmarks/results/bm25_scale.json and
docs/benchmarks.md (section bm25-scale).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, update_section  # noqa: E402

CORPORA = Path("~/.cache/hardneg/bench-corpora").expanduser()
CACHE = Path("~/.cache/hardneg/bench-bm25-scale").expanduser()
RESULTS = ROOT / "benchmarks" / "results" / "bm25_scale.json"
MSMARCO = 8_841_823
TOP_K = 100
BYTES_PER_DOC_RSS = 7_500
"""Bare bm25s's peak memory per ~1 KB document, roughly (2.09 GB at 300k in issue 16): to skip a size up
front."""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bare_index(folder: Path):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids, texts = [], []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            ids.append(str(record["_id"]))
            title = (record.get("title") or "").strip()
            texts.append(f"{title} {record['text']}".strip() if title else record["text"])
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    index = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    index.index(tokens, show_progress=False)
    return bm25s, stemmer, ids, texts, index


def _queries(folder: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        qrels.setdefault(query_id, {})[doc_id] = int(score)
    texts = {}
    for line in (folder / "queries.jsonl").read_text().splitlines():
        record = json.loads(line)
        texts[str(record["_id"])] = record["text"]
    return {q: texts[q] for q in qrels}, qrels


def _retrieve(bm25s, stemmer, index, ids, queries: dict[str, str], k: int) -> dict[str, dict[str, float]]:
    tokens = bm25s.tokenize(
        list(queries.values()), stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )
    rows, scores = index.retrieve(tokens, k=k, show_progress=False, n_threads=-1)
    return {
        qid: {ids[i]: float(s) for i, s in zip(row, score) if s > 0}
        for qid, row, score in zip(queries, rows, scores)
    }


def child_bare_eval(folder: Path, out: Path) -> dict:
    bm25s, stemmer, ids, _, index = _bare_index(folder)
    queries, _ = _queries(folder, "test")
    run = _retrieve(bm25s, stemmer, index, ids, queries, TOP_K + 1)
    run = {
        q: dict(sorted(((d, s) for d, s in docs.items() if d != q), key=lambda x: -x[1])[:TOP_K])
        for q, docs in run.items()
    }
    out.write_text(json.dumps(run))
    return {}


def child_hardneg_eval(folder: Path, out: Path) -> dict:
    from hardneg.evaluation.evaluate import evaluate
    from hardneg.settings.evaluation import EvaluateSettings

    result = evaluate(
        EvaluateSettings(dataset=str(folder), retriever="bm25", top_k=TOP_K), show_progress=False
    )
    out.write_text(json.dumps(result.per_query))
    return {"ndcg@10": result.metrics["ndcg@10"], "timings": result.timings}


def child_bare_mine(folder: Path, out: Path) -> dict:
    bm25s, stemmer, ids, texts, index = _bare_index(folder)
    queries, qrels = _queries(folder, "train")
    run = _retrieve(bm25s, stemmer, index, ids, queries, TOP_K)
    row = {doc_id: i for i, doc_id in enumerate(ids)}
    negatives = 0
    for query_id, judged in qrels.items():
        for doc_id, grade in judged.items():
            if grade <= 0:
                continue
            chosen = [d for d in run[query_id] if judged.get(d, 0) <= 0][:5]
            negatives += len([texts[row[d]] for d in chosen])
    return {"negatives": negatives}


def child_hardneg_mine(folder: Path, out: Path) -> dict:
    from hardneg.data.pairs import build_pairs
    from hardneg.data.registry import load_dataset
    from hardneg.mining.mine import mine
    from hardneg.settings.data import PairsSettings
    from hardneg.settings.mining import MineSettings

    dataset = load_dataset(str(folder))
    pairs = build_pairs(dataset, PairsSettings(dataset=str(folder), split="train"))
    result = mine(
        pairs, dataset, MineSettings(dataset=str(folder), num_negatives=5, depth=TOP_K), show_progress=False
    )
    return {"negatives": result.counts.get("negatives", 0)}


CHILDREN = {
    "bare-eval": child_bare_eval,
    "hardneg-eval": child_hardneg_eval,
    "bare-mine": child_bare_mine,
    "hardneg-mine": child_hardneg_mine,
}


def available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024**2
    return float("inf")


def run_child(name: str, folder: Path, cache: Path, min_free_gb: float) -> dict:
    """One contender in a fresh interpreter, killed if the machine runs short of memory."""
    out = cache.parent / f"{cache.name}-{name}.json"
    env = {
        **os.environ,
        "HARDNEG_CACHE": str(cache),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(ROOT / "src"),
    }
    command = [sys.executable, __file__, "--child", name, "--dataset", str(folder), "--out", str(out)]
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    lowest = [available_gb()]

    def watch() -> None:
        while child.poll() is None:
            lowest[0] = min(lowest[0], available_gb())
            if lowest[0] < min_free_gb:
                os.killpg(child.pid, signal.SIGKILL)
                return
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, _ = child.communicate()
    seconds = time.perf_counter() - start
    watcher.join()
    if child.returncode != 0:
        stopped = lowest[0] < min_free_gb
        return {
            "error": "stopped: available memory under the floor" if stopped else f"exit {child.returncode}"
        }
    result = json.loads(stdout.strip().splitlines()[-1])
    result["seconds"] = round(seconds, 2)
    result["lowest_available_gb"] = round(lowest[0], 1)
    if out.exists():
        result["run_file"] = str(out)
    return result


def ndcg_identical(folder: Path, bare: dict, hardneg: dict) -> tuple[float, float, bool]:
    from hardneg.evaluation.metrics import evaluate_run

    _, qrels = _queries(folder, "test")
    bare_means, bare_per_query = evaluate_run(
        qrels, json.loads(Path(bare["run_file"]).read_text()), ["ndcg@10"]
    )
    hardneg_per_query = json.loads(Path(hardneg["run_file"]).read_text())
    same = all(bare_per_query[q]["ndcg@10"] == hardneg_per_query[q]["ndcg@10"] for q in bare_per_query)
    return (
        bare_means["ndcg@10"],
        hardneg["ndcg@10"],
        same and bare_per_query.keys() == hardneg_per_query.keys(),
    )


def _best(runs: list[dict]) -> dict:
    """The fastest run's figures with the highest peak memory seen: time is noise-prone upwards only,
    memory is not."""
    done = [run for run in runs if "seconds" in run]
    if not done:
        return runs[-1]
    best = dict(min(done, key=lambda run: run["seconds"]))
    best["peak_rss_mb"] = max(run["peak_rss_mb"] for run in done)
    best["all_seconds"] = [run["seconds"] for run in done]
    return best


def measure(documents: int, task: str, min_free_gb: float, repeat: int = 1) -> dict:
    folder = CORPORA / f"scifact-{documents}"
    need_gb = documents * BYTES_PER_DOC_RSS / 1024**3
    if available_gb() - need_gb < min_free_gb:
        return {
            "skipped": f"needs ~{need_gb:.1f} GB, {available_gb():.1f} GB available, floor {min_free_gb} GB"
        }
    cache = CACHE / f"{task}-{documents}"
    runs: dict[str, list[dict]] = {"bare": [], "hardneg": []}
    for _ in range(repeat):  # alternating, so a noisy spell on the machine hits both sides alike
        shutil.rmtree(cache, ignore_errors=True)  # our own folder: each cold run builds store and index
        cache.mkdir(parents=True)
        runs["bare"].append(run_child(f"bare-{task}", folder, cache, min_free_gb))
        runs["hardneg"].append(run_child(f"hardneg-{task}", folder, cache, min_free_gb))
    results = {side: _best(side_runs) for side, side_runs in runs.items()}
    results["cached"] = run_child(f"hardneg-{task}", folder, cache, min_free_gb)
    if task == "eval" and all("run_file" in results[k] for k in ("bare", "hardneg")):
        bare_ndcg, hardneg_ndcg, same = ndcg_identical(folder, results["bare"], results["hardneg"])
        results["ndcg"] = {
            "bare": bare_ndcg,
            "hardneg": hardneg_ndcg,
            "per_query_identical": same,
            "cached": results["cached"].get("ndcg@10"),
        }
    print(f"{task} {documents}: " + json.dumps({k: v for k, v in results.items()}), flush=True)
    return results


def _ratio(results: dict, side: str, field: str) -> str:
    try:
        return f"{results[side][field] / results['bare'][field]:.2f}x"
    except (KeyError, ZeroDivisionError):
        return "-"


def _cell(results: dict, side: str) -> str:
    row = results.get(side, {})
    if "seconds" not in row:
        return row.get("error", results.get("skipped", "-"))
    return f"{row['seconds']:.1f} s, {row['peak_rss_mb'] / 1024:.2f} GB"


def _fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares line through (documents, value)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0
    return slope, mean_y - slope * mean_x


def report(all_results: dict, command: str) -> str:
    repeats = {
        len(side.get("all_seconds", [0]))
        for results in all_results.values()
        for side in results.values()
        if isinstance(side, dict) and "seconds" in side
    }
    runs = (
        f"best of {max(repeats)} alternating cold runs of each side"
        if max(repeats, default=1) > 1
        else "one run each"
    )
    lines = [
        f"Measured by `{command}` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({runs}; the "
        "peak memory is the highest of those runs; ratios rather than seconds are the figures to read). "
        "Bare = bm25s alone, reading corpus.jsonl with json and holding ids and texts as lists.",
        "",
        "| documents | task | bare bm25s | hardneg | hardneg, cached | time hardneg/bare | RSS hardneg/bare "
        "| RSS cached/bare | nDCG@10 bare / hardneg (per query identical) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, results in sorted(
        all_results.items(), key=lambda kv: (kv[0].split(":")[0], int(kv[0].split(":")[1]))
    ):
        task, documents = key.split(":")
        ndcg = results.get("ndcg")
        ndcg_text = (
            f"{ndcg['bare']:.4f} / {ndcg['hardneg']:.4f} ({'yes' if ndcg['per_query_identical'] else 'no'})"
            if ndcg
            else "-"
        )
        lines.append(
            f"| {int(documents):,} | {task} | {_cell(results, 'bare')} | {_cell(results, 'hardneg')} | "
            f"{_cell(results, 'cached')} | {_ratio(results, 'hardneg', 'seconds')} | "
            f"{_ratio(results, 'hardneg', 'peak_rss_mb')} | {_ratio(results, 'cached', 'peak_rss_mb')} | "
            f"{ndcg_text} |"
        )
    evals = [(int(k.split(":")[1]), r) for k, r in all_results.items() if k.startswith("eval:")]
    if len([1 for _, r in evals if "seconds" in r.get("bare", {})]) >= 2:
        lines += [
            "",
            f"Linear fit over the evaluation rows, extrapolated to MS MARCO's {MSMARCO:,} passages "
            "(~1 KB documents like these; real MS MARCO passages are ~0.35 KB, so this is pessimistic):",
            "",
            "| contender | GB per 1M documents | GB at 8.8M | s per 1M documents | s at 8.8M |",
            "|---|---|---|---|---|",
        ]
        for side, label in (("bare", "bare bm25s"), ("hardneg", "hardneg"), ("cached", "hardneg, cached")):
            rows = [(n, r[side]) for n, r in evals if "seconds" in r.get(side, {})]
            if len(rows) < 2:
                continue
            rss = _fit([(n, row["peak_rss_mb"] / 1024) for n, row in rows])
            secs = _fit([(n, row["seconds"]) for n, row in rows])
            lines.append(
                f"| {label} | {rss[0] * 1e6:.2f} | {rss[0] * MSMARCO + rss[1]:.1f} | "
                f"{secs[0] * 1e6:.0f} | {secs[0] * MSMARCO + secs[1]:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("documents", type=int, nargs="*")
    parser.add_argument("--mine", type=int, nargs="*", default=[], help="sizes to mine at too")
    parser.add_argument("--min-free-gb", type=float, default=4.0)
    parser.add_argument(
        "--repeat", type=int, default=1, help="cold runs of each side, alternating; the fastest counts"
    )
    parser.add_argument("--child")
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        result = CHILDREN[args.child](args.dataset, args.out)
        result["peak_rss_mb"] = _peak_mb()
        print(json.dumps(result))
        return
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for documents in args.documents:
        saved[f"eval:{documents}"] = measure(documents, "eval", args.min_free_gb, args.repeat)
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
    for documents in args.mine:
        saved[f"mine:{documents}"] = measure(documents, "mine", args.min_free_gb, args.repeat)
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
    command = ".venv/bin/python benchmarks/bm25_scale.py " + " ".join(sys.argv[1:])
    update_section("bm25-scale", report(saved, command))


if __name__ == "__main__":
    main()
