"""Generation across several endpoints of one model, the group-committed answer store, the LLM
budget and the dry run's cost plan."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from helpers import FAST, FakeLLM, mini_head, write_config, write_pairs
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.settings.llm import GenerateSettings
from hardneg.data.records import read_triplets
from hardneg.core.errors import HardnegError
from hardneg.generation import generate_file
from hardneg.generation.generate import store_path_for
from hardneg.generation.store import ResponseStore

runner = CliRunner()


def fleet(*servers: FakeLLM, **overrides) -> GenerateSettings:
    return GenerateSettings(model="fake-model", base_url=",".join(s.url for s in servers), **{**FAST, **overrides})


def test_a_comma_list_or_a_toml_list_is_several_endpoints():
    assert GenerateSettings(base_url="http://a/v1, http://b/v1").base_url == ["http://a/v1", "http://b/v1"]
    assert GenerateSettings(base_url=["http://a/v1"]).base_url == ["http://a/v1"]
    assert GenerateSettings(base_url="").base_url is None


def test_one_endpoint_killed_mid_run_every_pair_still_gets_its_negatives(tmp_path):
    """The doomed server dies right after its 5th answer, whatever the load; a generous timeout keeps a
    slow machine from failing the steady one's requests."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", 30)
    with FakeLLM(delay=0.05) as steady:
        doomed = FakeLLM(delay=0.05)
        doomed.die_after = 5
        doomed.__enter__()
        settings = fleet(steady, doomed, concurrency=4, max_retries=2, timeout=30.0)
        result = generate_file(pairs, settings, tmp_path / "out.jsonl", False)
    assert result.counts["delivered"] == 30 * 5 and result.counts["shortfalls"] == 0
    endpoints = result.counts["endpoints"]
    assert endpoints[steady.url]["answered"] > 0 and endpoints[doomed.url]["answered"] >= 5
    assert endpoints[doomed.url].get("fault_connection_error", 0) >= 1
    assert sum(e["answered"] for e in endpoints.values()) == 30
    assert all(e["completion_tokens"] > 0 and e["prompt_tokens"] > 0 for e in endpoints.values())


def test_an_endpoint_down_for_a_while_gets_work_again_when_it_recovers(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 200)  # ~5 s on the steady endpoint alone
    with FakeLLM(delay=0.1) as steady, FakeLLM(delay=0.1) as flaky:
        flaky.down_until = time.time() + 3.0
        config = fleet(steady, flaky, concurrency=4, backoff=0.2, backoff_max=1.0, max_retries=3)
        result = generate_file(pairs, config, tmp_path / "out.jsonl", False)
    endpoints = result.counts["endpoints"]
    assert result.counts["delivered"] == 200 * 5
    assert endpoints[flaky.url]["fault_server_error"] >= 1  # it was down...
    assert endpoints[flaky.url]["answered"] >= 3  # ...and worked again once it recovered


def test_two_endpoints_with_equal_delay_share_the_work(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 40)
    with FakeLLM(delay=0.05) as a, FakeLLM(delay=0.05) as b:
        result = generate_file(pairs, fleet(a, b, concurrency=4), tmp_path / "out.jsonl", False)
    shares = [e["answered"] / 40 for e in result.counts["endpoints"].values()]
    assert all(0.3 <= share <= 0.7 for share in shares), shares


def test_a_budget_stops_cleanly_and_the_rerun_finishes_without_re_sending(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    output = tmp_path / "out.jsonl"
    with FakeLLM() as server:
        # each answer costs 10 prompt tokens plus ~100 completion tokens in the fake server
        with pytest.raises(HardnegError, match=r"budget 500 reached .* of 12 pairs done, every answer is stored: rerun"):
            generate_file(pairs, fleet(server, concurrency=2, max_budget="500"), output, False)
        assert not output.exists()
        answered = len(store_path_for(output).read_text().splitlines())
        assert 0 < answered < 12 and len(server.requests) == answered
        generate_file(pairs, fleet(server, concurrency=2), output, False)
        assert len(server.requests) == 12  # the rerun asked only for what was never answered
    assert len(read_triplets(output)) == 12


def test_a_budget_binds_even_when_the_server_reports_no_usage(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    with FakeLLM() as server:
        server.usage = False
        with pytest.raises(HardnegError, match="budget 1000 reached"):
            generate_file(pairs, fleet(server, concurrency=1, max_budget="1000"), tmp_path / "out.jsonl", False)
        assert 0 < len(server.requests) < 12


def test_a_budget_in_dollars_needs_prices_and_bad_budgets_are_one_line(tmp_path):
    for prices in ({}, {"prompt_price": 1.0}):
        with pytest.raises(ValueError, match="needs prompt_price and completion_price"):
            GenerateSettings(base_url="http://x/v1", max_budget="$5", **prices)
    result = runner.invoke(app, ["generate", "--pairs", str(write_pairs(tmp_path / "p.jsonl")), "--base-url",
                                 "http://127.0.0.1:9/v1", "--model", "m", "-o", str(tmp_path / "o.jsonl"),
                                 "--max-budget", "lots"])  # fmt: skip
    assert result.exit_code == 2 and "give tokens ('2M', '500000') or dollars ('$25')" in result.output


def test_the_store_syncs_in_batches_but_hands_every_line_to_the_os(tmp_path, monkeypatch):
    import hardneg.generation.store as store_module

    syncs = []
    monkeypatch.setattr(store_module.os, "fsync", lambda fd: syncs.append(fd))
    path = tmp_path / "answers.jsonl"
    store = ResponseStore(path)
    for i in range(200):
        store.put(f"k{i}", {"answer": "x"})
    assert len(path.read_text().splitlines()) == 200  # a kill -9 now loses nothing
    assert len(syncs) <= 2  # not one disk sync per answer
    store.close()
    assert len(syncs) >= 1 and len(ResponseStore(path).records) == 200


def test_the_dry_run_prices_each_generator(tmp_path):
    with FakeLLM() as server:
        config = write_config(tmp_path, mini_head(tmp_path, "priced", Path("minilm-l6")) + f"""
[sources.llm]
generate = {{ model = "fake-model", base_url = "{server.url},{server.url}", num_negatives = 2, prompt_price = 0.5, completion_price = 1.5 }}
""")
        result = runner.invoke(app, ["run", str(config), "--dry-run", "-o", str(tmp_path / "run")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "LLM cost plan" in text and re.search(r"\$\d+\.\d\d", text)
    assert f"fake-model @ {server.url}, {server.url}" in text


def test_a_dead_endpoint_under_high_concurrency_fails_in_one_line(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 300)
    config = GenerateSettings(model="m", base_url="http://127.0.0.1:9/v1", concurrency=256, max_retries=3, **FAST)
    with pytest.raises(HardnegError, match=r"gave up after 4 attempts, last: ConnectError"):
        generate_file(pairs, config, tmp_path / "out.jsonl", False)


def test_one_endpoint_refusing_is_taken_out_but_all_refusing_fails_at_once(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 20)
    with FakeLLM() as loading, FakeLLM() as ready:
        loading.faults = ["404"] * 3  # 'model not loaded' while it starts
        result = generate_file(pairs, fleet(loading, ready, concurrency=2), tmp_path / "out.jsonl", False)
        assert result.counts["delivered"] == 20 * 5
        assert result.counts["endpoints"][loading.url]["refused_404"] >= 1
        loading.faults, ready.faults = ["404"] * 50, ["404"] * 50
        with pytest.raises(HardnegError, match="answered 404"):
            generate_file(pairs, fleet(loading, ready), tmp_path / "again.jsonl", False)
        assert len(loading.requests) + len(ready.requests) < 20 + 10  # not a retry storm
