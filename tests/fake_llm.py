"""An OpenAI-compatible chat server on 127.0.0.1 that answers deterministically and injects the
faults a real one produces (429, 5xx, timeouts, dropped connections, malformed bodies)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def count_asked(body: dict) -> int:
    if "prompt" in body:  # a few-shot completion prompt
        return int(re.search(r"followed by (\d+) passages", body["prompt"]).group(1))
    schema = body.get("response_format", {}).get("json_schema", {}).get("schema")
    if schema:
        return schema["properties"]["negatives"]["minItems"]
    return int(re.search(r"Write (\d+)", body["messages"][-1]["content"]).group(1))


def query_of(body: dict) -> str:
    text = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
    return re.findall(r"Query: (.*)", text)[-1].strip()  # a few-shot prompt's own query comes last


def good_answer(body: dict) -> str:
    """``count`` distinct passages that pass every reject rule, derived from the query only."""
    query = query_of(body)
    passages = [
        f"Background {i}: studies on {query.lower()} measured outcomes in cohort {i}, "
        f"reporting baseline characteristics and methods without testing this claim directly."
        for i in range(1, count_asked(body) + 1)
    ]
    if "prompt" in body:  # the continuation of '... Passage 1:'
        return " " + "\n".join(f"Passage {i}: {p}" for i, p in enumerate(passages, 1)).removeprefix("Passage 1: ")
    return json.dumps({"negatives": passages})


class FakeLLM:
    def __init__(self, answer: Callable[[dict], str] = good_answer, delay: float = 0.0):
        self.answer = answer
        self.delay = delay
        self.faults: list[str] = []
        self.refuse: set[str] = set()
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.headers: list[dict] = []
        self.hang_seconds = 2.0
        self.usage = True
        """Send a ``usage`` block (some proxies and servers do not)."""
        self.down_until = 0.0
        """Answer 503 to every request before this time.time() (a server that is down, then recovers)."""
        self.die_after: int | None = None
        """Shut down (connections refused from then on) right after this many answers: a server killed
        mid-run at a point that does not depend on timing."""
        self.answered = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # Polled every 50 ms, not serve_forever's 0.5 s: __exit__ (shutdown) then returns at once.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests.append(body)
                    fake.paths.append(self.path)
                    fake.headers.append(dict(self.headers))
                    fault = fake.faults.pop(0) if fake.faults else None
                if time.time() < fake.down_until:
                    return self._send(503, b'{"error": "down"}')
                for name in fake.refuse:
                    if name in body:
                        return self._send(400, json.dumps({"error": f"unsupported field {name}"}).encode())
                if fault == "drop":
                    self.close_connection = True
                    return  # no status line at all: the client sees a dropped connection
                if fault == "timeout":
                    time.sleep(fake.hang_seconds)
                    return
                if fault in ("429", "500", "502", "503", "401", "404"):
                    return self._send(int(fault), b'{"error": "injected"}', {"Retry-After": "0"})
                if fault == "malformed":
                    return self._send(200, b'{"choices": [ this is not json')
                if fault == "no_choices":
                    return self._send(200, b'{"object": "chat.completion"}')
                time.sleep(fake.delay)
                content = fake.answer(body)
                choice = {"text": content} if "prompt" in body else {"message": {"role": "assistant", "content": content}}
                payload = {
                    "object": "text_completion" if "prompt" in body else "chat.completion",
                    "choices": [{"index": 0, **choice, "finish_reason": "stop"}],
                    "usage": {"completion_tokens": len(content.split()), "prompt_tokens": 10},
                }
                if not fake.usage:
                    del payload["usage"]
                self._send(200, json.dumps(payload).encode())
                with fake._lock:
                    fake.answered += 1
                    if fake.answered == fake.die_after:
                        threading.Thread(target=fake.__exit__, args=(None, None, None), daemon=True).start()

        return Handler
