"""Time `hardneg generate` on the embedded back end against bare xllamacpp loops over the same
prompts and settings, side by side in one run.

    .venv/bin/python benchmarks/generate.py [--pairs 24] [--slots 4]

The prompts: the first request hardneg sends for each of the first N SciFact train pairs (the
built-in `query+positive` template, the JSON schema for 5 negatives, the study's sampling settings,
a fixed seed). Bare contenders call the server object in-process (no HTTP, no parsing, no store):
- bare 1 slot: one request after another;
- bare N slots: N threads feeding N parallel slots.
hardneg runs `generate` with a fresh answer store and N slots (it parses, rejects, re-asks and stores
every answer). Output tokens/s counts every completion token a contender received; hardneg's
delivered negatives/s counts only the negatives that passed its rejects. Each contender runs in
its own process; results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR, child_main, machine_line, run_child, update_section  # noqa: E402

RAW = Path(__file__).resolve().parent / "results" / "generate.json"
NUM_NEGATIVES, SEED = 5, 0
ARGS = argparse.Namespace(pairs=24, slots=4)


def _pairs(dataset):
    from hardneg.data.pairs import build_pairs
    from hardneg.settings.data import PairsSettings

    return build_pairs(dataset, PairsSettings(dataset=dataset.name, one_per_query=True))[: ARGS.pairs]


def _config(slots: int):
    from hardneg.settings.llm import GenerateSettings, SamplingSettings

    return GenerateSettings(
        concurrency=slots, sampling=SamplingSettings(seed=SEED), num_negatives=NUM_NEGATIVES
    )


def _bare(dataset, slots: int) -> dict:
    import xllamacpp

    from hardneg.generation.client import request_body
    from hardneg.generation.local import gguf_path
    from hardneg.generation.prompts import load_template

    config = _config(slots)
    template = load_template(config.template)
    bodies = [
        request_body(config, template.render(p.query, p.positive, NUM_NEGATIVES), NUM_NEGATIVES)
        for p in _pairs(dataset)
    ]
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf_path(config.model))
    params.n_parallel = slots
    params.n_ctx = config.context_per_slot * slots
    params.verbosity = -1
    server = xllamacpp.Server(params)
    start = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        answers = list(pool.map(server.handle_chat_completions, bodies))
    seconds = time.perf_counter() - start
    tokens = sum(a["usage"]["completion_tokens"] for a in answers)
    return {"seconds": seconds, "completion_tokens": tokens, "requests": len(bodies)}


def _hardneg(dataset, slots: int) -> dict:
    from hardneg.generation import generate

    pairs = _pairs(dataset)
    with tempfile.TemporaryDirectory() as folder:
        result = generate(pairs, _config(slots), Path(folder) / "answers.jsonl", show_progress=False)
    counts = result.counts
    seconds = result.timings["generate_s"]
    return {
        "seconds": seconds,
        "completion_tokens": counts["completion_tokens"],
        "requests": counts["requests_sent"],
        "requested": counts["requested"],
        "delivered": counts["delivered"],
        "rejects": counts["rejects"],
        "server_start_s": result.timings.get("server_start_s"),
    }


CHILDREN = {
    "bare-1": lambda d: _bare(d, 1),
    "bare-n": lambda d: _bare(d, ARGS.slots),
    "hardneg-n": lambda d: _hardneg(d, ARGS.slots),
}


def render(results: dict) -> str:
    bare_best = max(
        ("bare-1", "bare-n"), key=lambda name: results[name]["completion_tokens"] / results[name]["seconds"]
    )
    best_rate = results[bare_best]["completion_tokens"] / results[bare_best]["seconds"]
    labels = {
        "bare-1": "bare xllamacpp, 1 slot",
        "bare-n": f"bare xllamacpp, {ARGS.slots} slots (threads)",
        "hardneg-n": f"hardneg generate, {ARGS.slots} slots",
    }
    lines = [
        machine_line("generate.py")
        + f"; SmolLM2-135M Q4_1, first {ARGS.pairs} SciFact train pairs, 5 negatives each.",
        "",
        "| contender | requests | output tokens | wall time | output tokens/s | vs best bare "
        "| delivered negatives | negatives/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("bare-1", "bare-n", "hardneg-n"):
        r = results[name]
        rate = r["completion_tokens"] / r["seconds"]
        delivered = (
            f"{r['delivered']}/{r['requested']} ({r['delivered'] / r['requested']:.0%})"
            if "delivered" in r
            else "n/a"
        )
        per_s = f"{r['delivered'] / r['seconds']:.2f}" if "delivered" in r else "n/a"
        lines.append(
            f"| {labels[name]} | {r['requests']} | {r['completion_tokens']:,} | {r['seconds']:.1f} s | "
            f"{rate:.1f} | "
            f"{rate / best_rate:.2f}x | {delivered} | {per_s} |"
        )
    ours = results["hardneg-n"]
    lines += [
        "",
        f"Targets: hardneg's output tokens/s >= 0.95x the best bare configuration ({labels[bare_best]}): "
        f"**{ours['completion_tokens'] / ours['seconds'] / best_rate:.2f}x**; "
        ">= 95% of requested negatives delivered: "
        f"**{ours['delivered'] / ours['requested']:.0%}** (rejects: {ours['rejects']}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--dataset", type=Path, default=SHARED_BEIR / "scifact")
    parser.add_argument("--pairs", type=int, default=ARGS.pairs)
    parser.add_argument("--slots", type=int, default=ARGS.slots)
    args = parser.parse_args()
    ARGS.pairs, ARGS.slots = args.pairs, args.slots
    if args.child:
        child_main(CHILDREN, args.child, args.dataset)
        return
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        for name in CHILDREN:
            results[name] = run_child(
                __file__,
                name,
                args.dataset,
                Path(cache),
                "--pairs",
                str(args.pairs),
                "--slots",
                str(args.slots),
            )
            print(name, json.dumps(results[name]), flush=True)
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(
        json.dumps({"pairs": args.pairs, "slots": args.slots, "results": results}, indent=2) + "\n"
    )
    update_section("generate", render(results))
    print(render(results))


if __name__ == "__main__":
    main()
