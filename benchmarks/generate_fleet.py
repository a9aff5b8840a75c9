"""Does hardneg's LLM client keep up with a fast server, and does it share work across endpoints?

    .venv/bin/python benchmarks/generate_fleet.py [--pairs 5000] [--concurrency 64] [--repeats 2]

throughput: an instant OpenAI-compatible server (benchmarks/instant_server.py, its own process)
answers every request at once. Contenders, each a whole command timed from start to exit (Python
start-up and imports included), alternating, best of ``--repeats``:
- bare httpx: a minimal asyncio loop with ``--concurrency`` workers, one request per pair, the
  answer's JSON parsed; nothing stored, nothing checked;
- hardneg: `hardneg generate` with a fresh answer store: prompts from the template, parsing,
  rejects, the store, the manifest and the triplets file.
Ratio = hardneg pairs/s / bare pairs/s (the target is at least 0.8).

share: two instant servers that each wait ``--delay`` seconds per answer; `hardneg generate` with
both as endpoints; each endpoint's share of the answers, from the manifest (target: 40-60% each).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, machine_line, update_section  # noqa: E402

RAW = ROOT / "benchmarks" / "results" / "generate_fleet.json"
HERE = Path(__file__).resolve().parent

BARE = (
    r"""
import asyncio, json, sys, httpx
url, pairs_path, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
pairs = [json.loads(line) for line in open(pairs_path)]
async def main():
    done = 0
    pending = iter(pairs)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def worker():
            nonlocal done
            for pair in pending:
                body = {"model": "fake", "messages": [{"role": "user", "content":
                        f"Query: {pair['query']}\nPassage: {pair['positive']}\n"""
    r"""Write 5 hard negatives as JSON."}],
                        "temperature": 0.6, "top_p": 0.95, "max_tokens": 1024}
                answer = (await client.post(url + "/chat/completions", json=body)).json()
                done += len(json.loads(answer["choices"][0]["message"]["content"])["negatives"]) > 0
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    print(done)
asyncio.run(main())
"""
)


def start_server(delay: float = 0.0) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "instant_server.py"), "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = process.stdout.readline().split()[1]
    return process, f"http://127.0.0.1:{port}/v1"


def stop(process: subprocess.Popen) -> int:
    process.terminate()
    out = process.communicate(timeout=30)[0]
    return int(out.split()[-1])


def write_pairs(path: Path, count: int) -> None:
    with path.open("w") as handle:
        for i in range(count):
            handle.write(
                json.dumps(
                    {
                        "query_id": f"q{i}",
                        "query": f"does compound {i} lower blood pressure",
                        "positive_id": f"d{i}",
                        "positive": f"Compound {i} lowered systolic blood "
                        "pressure by 12 mmHg in a randomized trial of 300 adults over six months.",
                    }
                )
                + "\n"
            )


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def hardneg_command(pairs: Path, urls: str, concurrency: int, output: Path) -> list[str]:
    return [
        str(Path(sys.executable).with_name("hardneg")),
        "generate",
        "--pairs",
        str(pairs),
        "--model",
        "fake",
        "--base-url",
        urls,
        "--concurrency",
        str(concurrency),
        "-n",
        "5",
        "--output",
        str(output),
        "-q",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.02)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hardneg-fleet-"))
    pairs = work / "pairs.jsonl"
    write_pairs(pairs, args.pairs)

    server, url = start_server()
    times: dict[str, list[float]] = {"bare": [], "hardneg": []}
    for repeat in range(args.repeats):
        times["bare"].append(timed([sys.executable, "-c", BARE, url, str(pairs), str(args.concurrency)]))
        output = work / f"out-{repeat}.jsonl"  # a fresh store each time: nothing is replayed
        times["hardneg"].append(timed(hardneg_command(pairs, url, args.concurrency, output)))
    answered = stop(server)
    best = {name: min(values) for name, values in times.items()}
    ratio = best["bare"] / best["hardneg"]

    a, url_a = start_server(args.delay)
    b, url_b = start_server(args.delay)
    share_pairs = min(args.pairs, 2000)
    write_pairs(work / "share.jsonl", share_pairs)
    timed(
        hardneg_command(work / "share.jsonl", f"{url_a},{url_b}", args.concurrency, work / "share-out.jsonl")
    )
    stop(a), stop(b)
    endpoints = json.loads((work / "share-out.jsonl.manifest.json").read_text())["counts"]["endpoints"]
    shares = [e["answered"] / share_pairs for e in endpoints.values()]

    raw = {
        "pairs": args.pairs,
        "concurrency": args.concurrency,
        "seconds": times,
        "ratio": ratio,
        "server_answered": answered,
        "share_pairs": share_pairs,
        "delay": args.delay,
        "shares": shares,
    }
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(raw, indent=2) + "\n")
    update_section(
        "generate-fleet",
        f"""{machine_line("generate_fleet.py")}. Throughput: {args.pairs:,} pairs at concurrency """
        f"""{args.concurrency} against an instant local server, each contender a whole command """
        f"""(start-up included), alternating, best of {args.repeats}.

| contender | wall time (s) | pairs/s | ratio to bare |
|---|---|---|---|
| bare httpx loop (no store, no parsing beyond JSON) | {best["bare"]:.1f} """
        f"""| {args.pairs / best["bare"]:,.0f} | 1.00 |
| `hardneg generate` (template, parse, rejects, store, manifest) | {best["hardneg"]:.1f} """
        f"""| {args.pairs / best["hardneg"]:,.0f} | {ratio:.2f} |

Sharing: {share_pairs:,} pairs over two endpoints that each wait {args.delay * 1000:.0f} ms per answer: """
        f"""{", ".join(f"{s:.1%}" for s in shares)} of the answers.""",
    )
    print(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
