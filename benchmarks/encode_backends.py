"""Encoding throughput and SciFact nDCG@10 of the bi-encoder backends (torch, onnx, onnx-int8),
side by side in one run.

    .venv/bin/python benchmarks/encode_backends.py [--model minilm-l6] [--documents N]

The corpus is sorted longest first (as hardneg encodes it) and cut into chunks of 4 batches; every
chunk is encoded by each backend in turn, the first one rotating, so that a busy shared machine
slows all of them alike. Each backend's docs/s is the corpus over the sum of its chunks' times
(the same batch size, max_seq_length and thread count). The embeddings so made, and the test
queries', give each backend's exact top-100 and nDCG@10 on the test split. The ONNX models are
built (exported, quantized) before the clock starts, in a fresh cache. Results go to
docs/benchmarks.md and benchmarks/results/encode_backends.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR, machine_line, update_section  # noqa: E402

RAW = Path(__file__).resolve().parent / "results" / "encode_backends.json"
BACKENDS = ("torch", "onnx", "onnx-int8")
BATCH_SIZE = 64
MAX_SEQ_LENGTH = 128
TOP_K = 100
TARGET_SPEEDUP, TARGET_LOSS = 2.0, 0.005


def cpu_flags() -> str:
    """The instruction sets int8 speed depends on (VNNI: int8 dot products; AMX: int8 tiles)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = set(re.search(r"flags\s*:\s*(.*)", text)[1].split()) if "flags" in text else set()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return f"{model[1] if model else 'unknown CPU'}; " + ", ".join(
        f"{f} {'yes' if f in flags else 'no'}" for f in wanted
    )


def encode_side_by_side(encoders: dict, texts: list[str], settings) -> tuple[dict, dict]:
    from hardneg.retrieval.dense import encode_texts

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    seconds = {name: 0.0 for name in encoders}
    parts: dict[str, list] = {name: [] for name in encoders}
    names = list(encoders)
    chunk = BATCH_SIZE * 4
    for number, start in enumerate(range(0, len(order), chunk)):
        batch = [texts[i] for i in order[start : start + chunk]]
        for name in names[number % len(names) :] + names[: number % len(names)]:
            began = time.perf_counter()
            parts[name].append(encode_texts(encoders[name], batch, settings, ""))
            seconds[name] += time.perf_counter() - began
        print(f"{start + len(batch)}/{len(texts)}", {n: round(s, 1) for n, s in seconds.items()}, flush=True)
    embeddings = {}
    for name in names:
        embeddings[name] = np.zeros_like(np.concatenate(parts[name]))
        embeddings[name][np.asarray(order)] = np.concatenate(parts[name])
    return seconds, embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=SHARED_BEIR / "scifact")
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--documents", type=int, default=None, help="encode only the first N (a quick look)")
    args = parser.parse_args()
    os.environ["HARDNEG_CACHE"] = tempfile.mkdtemp(prefix="hardneg-bench-")  # a cold build, measured apart
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import onnxruntime
    import torch

    from hardneg.data.beir import load_beir
    from hardneg.evaluation.evaluate import top_k_without_self
    from hardneg.evaluation.metrics import evaluate_run
    from hardneg.retrieval.onnx_encoder import load_encoder
    from hardneg.retrieval.search import exact_top_k
    from hardneg.settings.retrieval import DenseSettings

    dataset = load_beir(args.dataset)
    doc_ids = list(dataset.corpus)[: args.documents]
    texts = [dataset.corpus[doc_id].full_text for doc_id in doc_ids]
    queries = dataset.split_queries("test")
    settings = DenseSettings(max_seq_length=MAX_SEQ_LENGTH, batch_size=BATCH_SIZE)
    encoders, build_s = {}, {}
    for name in BACKENDS:
        began = time.perf_counter()
        encoders[name] = load_encoder(args.model, MAX_SEQ_LENGTH, "cpu", name)
        build_s[name] = time.perf_counter() - began
    seconds, embeddings = encode_side_by_side(encoders, texts, settings)
    results = {}
    for name in BACKENDS:
        query_vectors = encoders[name].encode(
            list(queries.values()), batch_size=BATCH_SIZE, normalize_embeddings=True
        )
        scores, indices = exact_top_k(query_vectors, embeddings[name], TOP_K + 1)
        run = {
            q: {doc_ids[i]: float(s) for i, s in zip(ri, rs)} for q, ri, rs in zip(queries, indices, scores)
        }
        metrics = evaluate_run(
            dataset.split_qrels("test"), top_k_without_self(run, TOP_K), ["ndcg@10", "recall@100"]
        )[0]
        cosine = np.einsum("ij,ij->i", embeddings[name], embeddings["torch"])
        results[name] = {
            "docs_per_s": len(texts) / seconds[name],
            "seconds": seconds[name],
            "load_and_build_s": build_s[name],
            "speedup": seconds["torch"] / seconds[name],
            "ndcg@10": metrics["ndcg@10"],
            "recall@100": metrics["recall@100"],
            "ndcg_loss": results.get("torch", metrics)["ndcg@10"] - metrics["ndcg@10"],
            "cosine_to_torch_min": float(cosine.min()),
            "cosine_to_torch_mean": float(cosine.mean()),
        }
        print(name, results[name], flush=True)
    versions = (
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {torch.get_num_threads()} threads"
    )
    full = args.documents is None
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(
        json.dumps({"documents": len(texts), "cpu": cpu_flags(), "versions": versions, **results}, indent=1)
    )
    if not full:
        return
    lines = [
        f"{machine_line('encode_backends.py')}; {cpu_flags()}; {versions}. SciFact corpus "
        f"({len(texts):,} docs) at max_seq_length {MAX_SEQ_LENGTH}, batch {BATCH_SIZE}, chunks interleaved; "
        f"nDCG@10 / Recall@100 on the test split ({len(queries)} queries), exact top-{TOP_K}.",
        "",
        "| backend | docs/s | throughput vs torch | nDCG@10 | loss vs torch | Recall@100 "
        "| cosine to torch (min / mean) | first load + build (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['docs_per_s']:.1f} | {r['speedup']:.2f}x | {r['ndcg@10']:.4f} "
            f"| {r['ndcg_loss']:+.4f} "
            f"| {r['recall@100']:.4f} | {r['cosine_to_torch_min']:.4f} / {r['cosine_to_torch_mean']:.5f} "
            f"| {r['load_and_build_s']:.0f} |"
        )
    met = [
        n
        for n, r in results.items()
        if n != "torch" and r["speedup"] >= TARGET_SPEEDUP and r["ndcg_loss"] <= TARGET_LOSS
    ]
    lines += [
        "",
        f"Meets both targets (>= {TARGET_SPEEDUP:g}x throughput, <= {TARGET_LOSS} nDCG@10 loss): "
        f"{', '.join(met) or 'none'}.",
    ]
    update_section("encode-backends", "\n".join(lines))


if __name__ == "__main__":
    main()
