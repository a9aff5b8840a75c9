"""Does `hardneg generate` slow down instead of failing against a server it overloads, and how far
behind a bare retry loop is it?

    .venv/bin/python benchmarks/overload.py [--pairs 2000,5000] [--concurrency 16,64] [--capacity 8]

Servers, each its own process (this script with ``--serve``), started afresh for every run: an
OpenAI-compatible fake on the stdlib's ThreadingHTTPServer that answers a small fixed JSON after
``--delay`` seconds, one connection per request and the stdlib's listen backlog of 5 ("small"); and
the same that drops the connection of any request beyond ``--capacity`` in flight ("capped").
Contenders, in this process, for each server, concurrency and pair count (and, for reference, the
capped server at a concurrency of its capacity, where nothing is dropped):
- bare: an httpx asyncio loop, a semaphore of the same concurrency, every failure retried at once;
- hardneg: ``generate_file`` with a fresh answer store and the default client settings (prompts,
  parsing, rejects, the store; the adaptive limit and the retry backoff).
Ratio = hardneg wall time / bare wall time. Results: benchmarks/results/overload.json and the
"overload" section of docs/benchmarks.md (``--no-docs`` leaves the docs alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_fleet import write_pairs  # noqa: E402
from harness import ROOT, machine_line, update_section  # noqa: E402
from instant_server import BODY  # noqa: E402

RAW = ROOT / "benchmarks" / "results" / "overload.json"


def serve(delay: float, capacity: int | None) -> None:
    """The server process: prints ``ready <port>``, and its counts as JSON on SIGTERM."""
    lock, counts = threading.Lock(), Counter()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                counts["requests"] += 1
                counts["in_flight"] += 1
                counts["peak_in_flight"] = max(counts["peak_in_flight"], counts["in_flight"])
                over = capacity is not None and counts["in_flight"] > capacity
                counts["dropped"] += over
            try:
                if over:
                    self.close_connection = True  # no status line: a dropped connection
                    return
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)
            finally:
                with lock:
                    counts["in_flight"] -= 1

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # request_queue_size 5: the listen backlog
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"ready {server.server_address[1]}", flush=True)
    stop.wait()
    server.shutdown()
    del counts["in_flight"]
    print(json.dumps(dict(counts)), flush=True)


def start(delay: float, capacity: int | None) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, __file__, "--serve", "--delay", str(delay)]
    if capacity is not None:
        command += ["--drop-beyond", str(capacity)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    port = process.stdout.readline().split()[1]
    return process, f"http://127.0.0.1:{port}/v1"


def stop(process: subprocess.Popen) -> dict:
    process.terminate()
    return json.loads(process.communicate(timeout=30)[0].strip().splitlines()[-1])


async def bare(url: str, pairs: list[dict], concurrency: int) -> Counter:
    """One request per pair, at most ``concurrency`` at a time, each retried at once until answered."""
    counts: Counter = Counter()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(pair: dict) -> None:
            body = {
                "model": "fake",
                "messages": [
                    {"role": "user", "content": f"Query: {pair['query']}\nPassage: {pair['positive']}"}
                ],
                "temperature": 0.6,
                "max_tokens": 1024,
            }
            async with gate:
                while True:
                    counts["requests"] += 1
                    try:
                        response = await client.post(url + "/chat/completions", json=body)
                        if response.status_code == 200:
                            json.loads(response.json()["choices"][0]["message"]["content"])
                            return
                    except httpx.HTTPError:
                        pass
                    counts["failures"] += 1

        await asyncio.gather(*(one(pair) for pair in pairs))
    return counts


def run_bare(url: str, pairs_path: Path, concurrency: int) -> dict:
    pairs = [json.loads(line) for line in pairs_path.open()]
    began = time.perf_counter()
    counts = asyncio.run(bare(url, pairs, concurrency))
    return {"seconds": time.perf_counter() - began, **counts}


def run_hardneg(url: str, pairs_path: Path, concurrency: int, output: Path) -> dict:
    from hardneg.core.errors import HardnegError
    from hardneg.generation import generate_file
    from hardneg.settings.llm import GenerateSettings

    config = GenerateSettings(model="fake", base_url=url, concurrency=concurrency, num_negatives=5)
    began = time.perf_counter()
    try:
        result = generate_file(pairs_path, config, output, show_progress=False)
    except HardnegError as error:
        return {"seconds": time.perf_counter() - began, "error": str(error)}
    endpoint = result.counts["endpoints"][url]
    failures = sum(v for k, v in endpoint.items() if k.startswith("fault_"))
    limits = {k: v for k, v in endpoint.items() if k.startswith("limit_")}
    return {
        "seconds": time.perf_counter() - began,
        "requests": endpoint["requests"],
        "failures": failures,
        **limits,
    }


def table(runs: list[dict]) -> str:
    rows = [
        "| server | pairs | concurrency | bare (s) | hardneg (s) | ratio | requests bare / hardneg "
        "| failures bare / hardneg | hardneg limit: lowest, final, times lowered |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        bare_run, ours = run["bare"], run["hardneg"]
        if "error" in ours:
            outcome, ratio, limits = f"failed after {ours['seconds']:.1f}", "-", ours["error"][:80]
            requests, failures = f"{bare_run['requests']:,} / -", f"{bare_run.get('failures', 0):,} / -"
        else:
            outcome, ratio = f"{ours['seconds']:.1f}", f"{ours['seconds'] / bare_run['seconds']:.2f}"
            limits = ", ".join(str(ours.get(f"limit_{k}", "-")) for k in ("lowest", "final", "lowered"))
            requests = f"{bare_run['requests']:,} / {ours['requests']:,}"
            failures = f"{bare_run.get('failures', 0):,} / {ours['failures']:,}"
        rows.append(
            f"| {run['server']} | {run['pairs']:,} | {run['concurrency']} | {bare_run['seconds']:.1f} "
            f"| {outcome} | {ratio} | {requests} | {failures} | {limits} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", default="2000,5000", help="pair counts, comma-separated")
    parser.add_argument("--concurrency", default="16,64", help="concurrencies, comma-separated")
    parser.add_argument("--capacity", type=int, default=8, help="the capped server's requests in flight")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds before each answer")
    parser.add_argument("--servers", default="small,capped")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--output", type=Path, default=RAW)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drop-beyond", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.delay, args.drop_beyond)

    work = Path(tempfile.mkdtemp(prefix="hardneg-overload-"))
    runs = []
    largest = max(map(int, args.pairs.split(",")))
    grid = [
        (kind, concurrency, count)
        for kind in args.servers.split(",")
        for concurrency in map(int, args.concurrency.split(","))
        for count in map(int, args.pairs.split(","))
    ]
    if "capped" in args.servers.split(","):  # the reference: sized to the server's room, never a fault
        grid.append(("capped", args.capacity, largest))
    for kind, concurrency, count in grid:
        capacity = args.capacity if kind == "capped" else None
        pairs = work / f"pairs-{count}.jsonl"
        if not pairs.exists():
            write_pairs(pairs, count)
        run = {"server": kind, "pairs": count, "concurrency": concurrency}
        for name in ("bare", "hardneg"):
            process, url = start(args.delay, capacity)
            if name == "bare":
                run[name] = run_bare(url, pairs, concurrency)
            else:  # a fresh answer store each time: nothing is replayed
                run[name] = run_hardneg(
                    url, pairs, concurrency, work / f"out-{kind}-{concurrency}-{count}.jsonl"
                )
            run[name]["server_counts"] = stop(process)
        print(json.dumps(run), flush=True)
        runs.append(run)
    raw = {"delay": args.delay, "capacity": args.capacity, "runs": runs}
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(raw, indent=2) + "\n")
    if not args.no_docs:
        update_section(
            "overload",
            f"""{machine_line("overload.py")}, each server answering after {args.delay * 1000:.0f} ms; """
            f"""capped: {args.capacity} requests in flight, the rest dropped.\n\n{table(runs)}""",
        )
    print(table(runs))


if __name__ == "__main__":
    main()
