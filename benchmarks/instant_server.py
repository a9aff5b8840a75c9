"""An OpenAI-compatible chat endpoint that answers at once (or after ``--delay`` seconds), on
127.0.0.1, for client benchmarks: a bare asyncio HTTP/1.1 loop with keep-alive, so the server is
never what limits the clients it measures.

    python benchmarks/instant_server.py --port 8101 [--delay 0.02]

Every answer is five distinct 20-word passages as JSON, with a ``usage`` block. It prints
``ready <port>`` when it listens and, on SIGTERM, the number of requests it answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
    "upsilon"
).split()
PASSAGES = [" ".join(f"{w}{i}" for w in WORDS) for i in range(5)]
CONTENT = json.dumps({"negatives": PASSAGES})
BODY = json.dumps(
    {
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": CONTENT}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 140},
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
)


async def main(port: int, delay: float) -> None:
    answered = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if delay:
                    await asyncio.sleep(delay)
                writer.write(RESPONSE)
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()
    print(f"answered {answered}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.delay))
