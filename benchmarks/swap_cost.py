"""Where a swap request's time goes: prompt processing against decoding (llama.cpp's own `timings`
per request), with the JSON schema hardneg sends (a grammar whose `from` is an enum of the
positive's phrases) and without it, over the same prompts, one after another in one run.

    .venv/bin/python benchmarks/swap_cost.py [--pairs 10]

The prompts: the first swap request hardneg sends for each of the first N SciFact train pairs (the
study's settings: 3 substitutions, 128 tokens, its seed), to the embedded SmolLM2 with one slot
and no prompt cache, so both contenders process every prompt in full. Decoding's tokens/s is the
comparison; the answers differ (without the schema the model may name phrases the positive lacks,
which hardneg then rejects), so the table counts how many of the answers' swaps would apply.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR, machine_line, update_section  # noqa: E402

RAW = Path(__file__).resolve().parent / "results" / "swap_cost.json"
TIMINGS = ("prompt_n", "prompt_ms", "predicted_n", "predicted_ms")


def measure(pairs: int) -> dict[str, dict]:
    import xllamacpp

    from hardneg.data.beir import load_beir
    from hardneg.data.pairs import build_pairs
    from hardneg.generation.client import request_body
    from hardneg.generation.local import llama_params
    from hardneg.generation.parse import apply_swap, parse_swaps
    from hardneg.generation.prompts import load_template
    from hardneg.settings.data import PairsSettings
    from hardneg.settings.llm import GenerateSettings

    dataset = load_beir(SHARED_BEIR / "scifact")
    chosen = build_pairs(dataset, PairsSettings(dataset="scifact", one_per_query=True))[:pairs]
    config = GenerateSettings(
        model="smollm2-135m", mode="swap", num_negatives=3, sampling={"max_tokens": 128}
    )
    template = load_template(config.template)
    server = xllamacpp.Server(llama_params(config, slots=1))
    results = {}
    for name in ("schema", "no schema"):
        found = dict.fromkeys(TIMINGS, 0.0) | {"wall_s": 0.0, "swaps": 0, "apply": 0}
        for pair in chosen:
            prompt = template.render(pair.query, pair.positive, 3)
            body = request_body(config, prompt, 3, positive=pair.positive, query=pair.query)
            body["cache_prompt"] = False
            if name == "no schema":
                body.pop("response_format", None)
            start = time.perf_counter()
            answer = server.handle_chat_completions(body)
            found["wall_s"] += time.perf_counter() - start
            for key in TIMINGS:
                found[key] += answer["timings"][key]
            swaps, _ = parse_swaps(answer["choices"][0]["message"]["content"])
            found["swaps"] += len(swaps)
            found["apply"] += sum(apply_swap(pair.positive, a, b)[0] is not None for a, b in swaps)
        results[name] = found
    return results


def render(results: dict[str, dict], pairs: int) -> str:
    lines = [
        machine_line("swap_cost.py") + f"; SmolLM2-135M, first {pairs} SciFact train pairs, one slot.",
        "",
        "| contender | prompt tokens | prefill | output tokens | decoding | decode tokens/s | share decoding "
        "| wall | swaps that apply |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        rate = r["predicted_n"] / r["predicted_ms"] * 1000
        share = r["predicted_ms"] / (r["predicted_ms"] + r["prompt_ms"])
        lines.append(
            f"| {name} | {r['prompt_n']:,.0f} | {r['prompt_ms'] / 1000:.1f} s | {r['predicted_n']:,.0f} | "
            f"{r['predicted_ms'] / 1000:.1f} s | {rate:.1f} | {share:.0%} | {r['wall_s']:.1f} s | "
            f"{r['apply']}/{r['swaps']} |"
        )
    schema, free = results["schema"], results["no schema"]
    ratio = (free["predicted_n"] / free["predicted_ms"]) / (schema["predicted_n"] / schema["predicted_ms"])
    lines += ["", f"Decoding without the schema runs at **{ratio:.2f}x** the tokens/s of decoding under it."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args()
    results = measure(args.pairs)
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(results, indent=2) + "\n")
    body = render(results, args.pairs)
    update_section("swap-cost", body)
    print(body)


if __name__ == "__main__":
    main()
