"""An overloaded server slows a run down instead of ending it: each endpoint's limit on requests in
flight halves on dropped connections and 503s and climbs back while answers flow; a request retries
while the pool still answers, and gives up after ``give_up_after`` seconds without any answer."""

from __future__ import annotations

import json
import re

import pytest
from helpers import FAST, FakeLLM, write_pairs
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import HardnegError
from hardneg.generation import generate_file
from hardneg.generation.limits import AdaptiveLimit
from hardneg.settings.llm import GenerateSettings
from hardneg.stages import run_kind
from hardneg.stages.estimates import DataSizes, Estimate
from hardneg.stages.negatives import Generate

runner = CliRunner()


class CappedLLM(FakeLLM):
    """A fake with a fixed capacity: a request beyond ``capacity`` in flight is dropped (the connection
    closed without an answer) or answered 503 without Retry-After. ``arrivals`` records, per request,
    how many were in flight counting it, and whether it was turned away."""

    def __init__(self, capacity: int, over: str = "drop", delay: float = 0.02):
        self.capacity, self.over = capacity, over
        self.in_flight = 0
        self.arrivals: list[tuple[int, bool]] = []
        super().__init__(delay=delay)
        self._server.socket.listen(256)  # a deep backlog: the capacity, not the listen queue, turns away

    def _handler(self):
        base, fake = super()._handler(), self

        class Capped(base):
            released = False

            def _release(self) -> None:
                if not self.released:
                    self.released = True
                    with fake._lock:
                        fake.in_flight -= 1

            def _send(self, *args, **kwargs) -> None:
                self._release()  # before the answer leaves: a client's next request is never miscounted
                super()._send(*args, **kwargs)

            def do_POST(self) -> None:
                with fake._lock:
                    fake.in_flight += 1
                    over = fake.in_flight > fake.capacity
                    fake.arrivals.append((fake.in_flight, over))
                try:
                    if not over:
                        return super().do_POST()
                    self.rfile.read(int(self.headers["Content-Length"]))
                    if fake.over == "503":
                        return self._send(503, b'{"error": "busy"}')
                    self.close_connection = True  # no status line: a dropped connection
                finally:
                    self._release()

        return Capped


def settings(*servers: FakeLLM, **overrides) -> GenerateSettings:
    return GenerateSettings(model="m", base_url=",".join(s.url for s in servers), **{**FAST, **overrides})


def test_the_limit_halves_once_per_burst_and_climbs_back_by_one_per_window():
    limit = AdaptiveLimit(32)
    assert limit.overloaded(epoch=0) is False and limit.limit == 16
    assert limit.overloaded(epoch=0) is False and limit.limit == 16  # sent at 32: already answered for
    for _ in range(15):
        assert not limit.answered()
    assert limit.answered() and limit.limit == 17  # +1 after a limit's worth of answers
    assert limit.overloaded(epoch=1) is False and limit.limit == 8
    assert limit.overloaded(epoch=2) is True  # lowered, and no answer since: down, not busy
    for epoch in range(3, 10):
        limit.overloaded(epoch)
    assert limit.limit == 1 and limit.counts() == {"limit_final": 1, "limit_lowest": 1, "limit_lowered": 10}
    for _ in range(1000):
        limit.answered()
    assert limit.limit == 32  # never above the configured concurrency


@pytest.mark.parametrize("over", ["drop", "503"])
def test_a_server_with_room_for_four_gets_about_four_and_every_pair_is_answered(tmp_path, over):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 300)
    with CappedLLM(capacity=4, over=over) as server:
        result = generate_file(pairs, settings(server, concurrency=32), tmp_path / "out.jsonl", False)
    assert result.counts["delivered"] == 300 * 5 and result.counts["shortfalls"] == 0
    endpoint = result.counts["endpoints"][server.url]
    assert endpoint["answered"] == 300 and endpoint["limit_lowered"] >= 1 and endpoint["limit_lowest"] <= 4
    turned_away = [n for n, refused in server.arrivals if refused]
    assert len(turned_away) >= 1 and endpoint["requests"] == len(server.arrivals) == 300 + len(turned_away)
    # The first burst is sent at 32; once the halvings have brought the limit down (well within the
    # first half of the run), it probes one above the room (a slow moment on a busy machine can let it
    # climb one more before a probe is turned away).
    settled = server.arrivals[len(server.arrivals) // 2 :]
    assert max(n for n, _ in settled) <= 4 + 2 and sum(n > 4 + 1 for n, _ in settled) <= 3
    assert sum(refused for _, refused in settled) < len(settled) / 5  # one a probe above the room


def test_an_endpoint_that_stops_answering_fails_the_run_in_one_line_after_give_up_after(tmp_path):
    """With --max-retries 1, a request's second dropped connection (a backoff of 0.5-1 s after its first,
    which may come before the first answer) would have ended the run; it ends once no answer came for
    --give-up-after seconds."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", 40)
    with FakeLLM() as server:
        server.faults = [None] * 3 + ["drop"] * 100_000  # three answers, then every connection dropped
        flags = ["--concurrency", "8", "--max-retries", "1", "--give-up-after", "1", "-q"]
        command = ["generate", "--pairs", str(pairs), "--model", "m", "--base-url", server.url, *flags]
        result = runner.invoke(app, [*command, "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RemoteProtocolError" in lines[0], lines
    silent = re.search(r"gave up after \d+ attempts, last: .*\((\S+) s without an answer\)", lines[0])
    assert silent and float(silent.group(1)) >= 1.0, lines


def test_an_endpoint_that_never_answered_still_fails_after_the_retries(tmp_path):
    """A wrong URL or a dead server must not wait out ``give_up_after``."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", 10)
    with FakeLLM() as server:
        server.faults = ["drop"] * 100_000
        with pytest.raises(
            HardnegError, match=r"gave up after 3 attempts, last: RemoteProtocolError"
        ) as error:
            generate_file(pairs, settings(server, concurrency=4, max_retries=2, give_up_after=3600),
                          tmp_path / "out.jsonl", False)  # fmt: skip
    assert "without an answer" not in str(error.value)


@pytest.mark.parametrize("down", ["drop", "refused"])
def test_two_endpoints_one_down_the_run_finishes_on_the_other(tmp_path, down):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 60)
    with FakeLLM(delay=0.01) as up, FakeLLM() as dead:
        dead.faults = ["drop"] * 100_000
        if down == "refused":
            dead.__exit__()
        config = settings(up, dead, concurrency=8, max_retries=1)
        result = generate_file(pairs, config, tmp_path / "out.jsonl", False)
    assert result.counts["delivered"] == 60 * 5
    endpoints = result.counts["endpoints"]
    assert endpoints[up.url]["answered"] == 60 and endpoints[dead.url].get("answered", 0) == 0
    assert endpoints[dead.url]["fault_connection_error"] >= 1 and endpoints[dead.url]["limit_lowered"] >= 1


def test_the_progress_line_and_the_dry_run_show_the_concurrency(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 3)
    with FakeLLM() as server:
        generate_file(pairs, settings(server, concurrency=6), tmp_path / "out.jsonl", True)
    assert "in flight 0/6" in capsys.readouterr().err
    config = GenerateSettings(model="smollm2-135m", concurrency=64)
    estimate = Generate().estimate(config, {"pairs": [Estimate(pairs=500)]}, DataSizes(None))
    assert estimate.work == "500 pairs, smollm2-135m, concurrency 64 (adaptive)"


def test_the_manifest_records_each_endpoints_limit(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    with FakeLLM() as server:
        run_kind(
            "generate", settings(server, concurrency=3), {"pairs": str(pairs)}, str(tmp_path / "out.jsonl")
        )
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    endpoint = manifest["counts"]["endpoints"][server.url]
    assert (endpoint["limit_lowest"], endpoint["limit_final"], endpoint["limit_lowered"]) == (3, 3, 0)
