"""`generate` against a fault-injecting OpenAI-compatible server on 127.0.0.1."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import FAST, FakeLLM, count_asked, good_answer, query_of, write_pairs
from typer.testing import CliRunner

from hardneg.stages import run_kind
from hardneg.cli import app
from hardneg.settings.llm import GenerateSettings
from hardneg.data.records import read_triplets
from hardneg.core.errors import HardnegError
from hardneg.generation import generate_file
from hardneg.generation.client import ChatClient, request_body
from hardneg.generation.generate import store_path_for

runner = CliRunner()


def config(server: FakeLLM, **overrides) -> GenerateSettings:
    return GenerateSettings(model="fake-model", base_url=server.url, **{**FAST, **overrides})


def complete_once(cfg: GenerateSettings) -> tuple[str, ChatClient]:
    async def run():
        client = ChatClient(cfg.base_url[0], cfg)
        try:
            request = request_body(cfg, [{"role": "user", "content": "Query: q\nWrite 2 passages"}], 2)
            return (await client.complete(request)).text, client
        finally:
            await client.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "timeout", "drop", "malformed", "no_choices"])
def test_every_fault_kind_is_retried_and_counted(fault):
    with FakeLLM() as server:
        server.hang_seconds = 1.0
        server.faults = [fault, fault]
        text, client = complete_once(config(server))
    assert json.loads(text)["negatives"]
    kind = {"429": "rate_limited", "timeout": "timeout", "drop": "connection_error", "malformed": "malformed",
            "no_choices": "malformed"}.get(fault, "server_error")  # fmt: skip
    assert client.stats[kind] == 2 and client.stats["retries"] == 2
    assert len(server.requests) == 3


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    cfg = GenerateSettings(model="m", base_url="http://127.0.0.1:9", backoff=1.0, backoff_max=8.0)
    client = ChatClient(cfg.base_url[0], cfg)
    delays = [[client.delay(retry, None) for retry in range(6)] for _ in range(50)]
    for retry, cap in enumerate([1, 2, 4, 8, 8, 8]):
        column = [row[retry] for row in delays]
        assert all(cap / 2 <= d <= cap for d in column)
        assert len(set(column)) > 1  # jittered
    assert client.delay(0, retry_after=5.0) == 5.0
    asyncio.run(client.aclose())


def test_gives_up_after_the_retries_with_one_clear_line():
    with FakeLLM() as server:
        server.faults = ["503"] * 10
        with pytest.raises(HardnegError, match=r"gave up after 3 attempts, last: 503"):
            complete_once(config(server, max_retries=2))
        assert len(server.requests) == 3


def test_client_errors_are_not_retried():
    with FakeLLM() as server:
        server.faults = ["401"]
        with pytest.raises(HardnegError, match="answered 401"):
            complete_once(config(server))
        assert len(server.requests) == 1


@pytest.mark.parametrize("field", ["top_k", "response_format", "chat_template_kwargs"])
def test_a_refused_extension_field_is_dropped_once_for_the_run(field):
    with FakeLLM() as server:
        server.refuse = {field}
        text, client = complete_once(config(server, disable_thinking=True))
        complete_once_again = client.without_refused(request_body(client.config, [], 2))
    assert json.loads(text)["negatives"]
    assert field in server.requests[0] and field not in server.requests[1]
    assert field not in complete_once_again and client.stats[f"{field}_refused"] == 1


def test_study_settings_and_api_key_are_sent_but_never_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-secret-123")
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    with FakeLLM() as server:
        result = generate_file(pairs, config(server, api_key_env="MY_LLM_KEY"), tmp_path / "out.jsonl", False)
    body = server.requests[0]
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"]) == (0.6, 0.95, 20, 1024)
    assert body["model"] == "fake-model"
    assert "frequency_penalty" not in body and "presence_penalty" not in body and "seed" not in body
    assert server.headers[0]["Authorization"] == "Bearer sk-secret-123"
    assert result.counts["delivered"] == 10
    for written in tmp_path.iterdir():
        assert "sk-secret-123" not in written.read_text()


def test_penalties_and_seed_are_sent_when_set(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    with FakeLLM() as server:
        result = runner.invoke(app, ["generate", "--pairs", str(pairs), "--model", "m", "--base-url", server.url,
                                     "--output", str(tmp_path / "o.jsonl"), "--frequency-penalty", "0.5",
                                     "--presence-penalty", "0.25", "--seed", "3", "--top-k", "0", "-q"])  # fmt: skip
        assert result.exit_code == 0, result.stderr
    body = server.requests[0]
    assert (body["frequency_penalty"], body["presence_penalty"], body["seed"]) == (0.5, 0.25, 3)
    assert "top_k" not in body


def test_server_specific_sampling_fields_are_sent_as_given(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    with FakeLLM() as server:
        result = runner.invoke(app, ["generate", "--pairs", str(pairs), "--model", "m", "--base-url", server.url,
                                     "--output", str(tmp_path / "o.jsonl"), "--sampling-extra", "dry_multiplier=0.8",
                                     "--sampling-extra", "samplers=top_k;min_p", "-q"])  # fmt: skip
        assert result.exit_code == 0, result.stderr
    assert (server.requests[0]["dry_multiplier"], server.requests[0]["samplers"]) == (0.8, "top_k;min_p")
    refused = runner.invoke(app, ["generate", "--pairs", str(pairs), "--model", "m", "--base-url", "http://127.0.0.1:9",
                                  "--output", str(tmp_path / "p.jsonl"), "--sampling-extra", "dry_multiplier"])  # fmt: skip
    assert refused.exit_code == 2 and "--sampling-extra 'dry_multiplier': expected KEY=VALUE" in refused.stderr


def test_a_re_ask_shifts_the_seed(tmp_path):
    """The same prompt and seed would get the same rejected answer again."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    with FakeLLM(answer=lambda body: "I cannot help with that.") as server:
        generate_file(pairs, config(server, max_attempts=3, sampling={"seed": 7}), tmp_path / "out.jsonl", False)
    assert [body["seed"] for body in server.requests] == [7, 8, 9]


def test_triplets_manifest_and_counts(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 3)
    output = tmp_path / "out.jsonl"
    with FakeLLM() as server:  # as the command runs it: the stage contract writes the manifest
        run_kind("generate", config(server), {"pairs": pairs}, output, show_progress=False)
    triplets = read_triplets(output)
    assert [t.query_id for t in triplets] == ["q0", "q1", "q2"]
    for triplet in triplets:
        assert len(triplet.negatives) == 5
        assert all(n.source == "llm:fake-model" and n.doc_id is None for n in triplet.negatives)
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert manifest["stage"] == "generate"
    counts = manifest["counts"]
    assert (counts["requested"], counts["delivered"], counts["shortfalls"], counts["requests_sent"]) == (15, 15, 0, 3)
    assert manifest["settings"]["sampling"]["top_k"] == 20


def flawed_answer(body: dict) -> str:
    """First ask: two good passages, a duplicate, a near-copy of the positive, a refusal, a short one.
    Re-asks: what was asked for, from the good pool."""
    good = json.loads(good_answer({**body, "response_format": {}, "messages": [
        {"content": f"Query: {query_of(body)}\nWrite 9"}]}))["negatives"]  # fmt: skip
    if count_asked(body) == 5:
        copy = "Compound 0 lowered systolic blood pressure by 12 mmHg in a randomized trial of 300 adults today."
        return json.dumps([good[0], good[1], good[0].upper(), copy, "I'm sorry, I can't do that for you.", "Too short."])
    return "1. " + "\n2. ".join(good[2 : 2 + count_asked(body)])


def test_rejects_are_counted_and_missing_negatives_asked_again(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    with FakeLLM(answer=flawed_answer) as server:
        result = generate_file(pairs, config(server, rejects={"min_words": 5}), tmp_path / "out.jsonl", False)
    assert result.counts["rejects"] == {"duplicate": 1, "near_copy": 1, "not_a_passage": 1, "too_short": 1}
    assert [count_asked(body) for body in server.requests] == [5, 3]
    assert result.counts["delivered"] == 5 and result.counts["answers_json"] == 1 and result.counts["answers_list"] == 1


def test_shortfall_after_the_last_attempt(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    with FakeLLM(answer=lambda body: "I cannot help with that.") as server:
        result = generate_file(pairs, config(server, max_attempts=2), tmp_path / "out.jsonl", False)
    assert len(server.requests) == 4
    counts = result.counts
    assert (counts["delivered"], counts["shortfalls"], counts["answers_none"]) == (0, 2, 4)
    assert all(t.negatives == [] for t in read_triplets(tmp_path / "out.jsonl"))


def test_rerun_reuses_every_stored_answer(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 3)
    with FakeLLM() as server:
        first = generate_file(pairs, config(server), tmp_path / "out.jsonl", False)
        second = generate_file(pairs, config(server), tmp_path / "out.jsonl", False)
        assert len(server.requests) == 3
        changed = generate_file(pairs, config(server, template="query-only"), tmp_path / "out.jsonl", False)
        schema = generate_file(pairs, config(server, rejects={"min_words": 5}), tmp_path / "out.jsonl", False)
    assert second.counts["requests_reused"] == 3 and "requests_sent" not in second.counts
    assert first.triplets == second.triplets
    assert changed.counts["requests_sent"] == 3  # another template is another request
    assert schema.counts["requests_sent"] == 3  # so is another JSON schema (its minimum length follows min_words)


def test_unreachable_server_fails_in_one_line_and_keeps_stored_answers(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 4)
    output = tmp_path / "out.jsonl"
    with FakeLLM() as server:
        generate_file(pairs, config(server), tmp_path / "half.jsonl", False)  # fill a store, then reuse it
    store = store_path_for(output)
    store.write_bytes(store_path_for(tmp_path / "half.jsonl").read_bytes())
    write_pairs(tmp_path / "more.jsonl", 6)
    result = runner.invoke(app, ["generate", "--pairs", str(tmp_path / "more.jsonl"), "--model", "fake-model", "--base-url",
                                 "http://127.0.0.1:9/v1", "--max-retries", "1", "--output", str(output), "-q"])  # fmt: skip
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "gave up after 2 attempts" in lines[0] and "ConnectError" in lines[0]
    assert not output.exists()
    assert len(store.read_text().splitlines()) == 4


@pytest.mark.slow  # two `python -m hardneg.cli` processes
def test_kill_minus_nine_then_rerun_sends_only_unanswered_requests(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    output = tmp_path / "out.jsonl"
    store = store_path_for(output)
    command = [sys.executable, "-m", "hardneg.cli", "generate", "--pairs", str(pairs), "--model", "fake-model",
               "--output", str(output), "--concurrency", "2", "-q"]  # fmt: skip
    with FakeLLM(delay=0.15) as server:
        process = subprocess.Popen([*command, "--base-url", server.url], env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.time() + 60
        while (not store.exists() or len(store.read_text().splitlines()) < 4) and time.time() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert not output.exists()
        answered = {json.loads(line)["query_id"] for line in store.read_text().splitlines() if line.endswith("}")}
        assert 4 <= len(answered) < 12
        sent_before = len(server.requests)
        finished = subprocess.run([*command, "--base-url", server.url], capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
        asked_again = {query_of(body).split()[2] for body in server.requests[sent_before:]}
        clean = generate_file(pairs, config(server), tmp_path / "clean.jsonl", False)
    assert not asked_again & {q[1:] for q in answered}
    assert len(asked_again) == 12 - len(answered)
    assert [t.model_dump() for t in read_triplets(output)] == [t.model_dump() for t in clean.triplets]


def test_several_generators_in_one_command(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    with FakeLLM() as first, FakeLLM() as second:
        result = runner.invoke(app, ["generate", "--pairs", str(pairs), "--model", "org/model-a", "--model", "model-b",
                                     "--base-url", first.url, "--base-url", second.url, "--output-dir",
                                     str(tmp_path / "gen"), "-q"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert {body["model"] for body in first.requests} == {"org/model-a"}
        assert {body["model"] for body in second.requests} == {"model-b"}
    a = read_triplets(tmp_path / "gen" / "org_model-a.jsonl")
    assert a[0].negatives[0].source == "llm:org/model-a"
    assert read_triplets(tmp_path / "gen" / "model-b.jsonl")[0].negatives[0].source == "llm:model-b"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "a", "--model", "b", "--output", "x.jsonl"], "need --output-dir"),
        (["--model", "a", "--base-url", "u1", "--base-url", "u2", "--base-url", "u3", "--model", "b"], "once per --model"),
        (["--model", "gpt-x", "--output", "x.jsonl"], "needs --base-url"),
        (["--model", "/nowhere/model.gguf", "--output", "x.jsonl"], "GGUF model file not found"),
    ],
)
def test_cli_usage_errors(tmp_path, args, message):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    result = runner.invoke(app, ["generate", "--pairs", str(pairs), *args, "-q"])
    assert result.exit_code == 2 and message in result.stderr


def test_bad_pairs_file_names_line_and_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"query_id": "1", "query": "q", "positive_id": "d", "positive": "p"}\n{"query_id": "2", "query": ""}\n')
    result = runner.invoke(app, ["generate", "--pairs", str(path), "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                                 "--output", str(tmp_path / "o.jsonl")])  # fmt: skip
    assert result.exit_code == 2 and f"{path}:2: field 'query'" in result.stderr


def test_negatives_per_request_splits_each_round_into_smaller_asks(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    pool = iter(json.loads(good_answer({"messages": [{"content": "Query: q0\nWrite 9"}]}))["negatives"])

    def distinct(body: dict) -> str:
        return json.dumps({"negatives": [next(pool) for _ in range(count_asked(body))]})

    with FakeLLM(answer=distinct) as server:
        result = generate_file(pairs, config(server, negatives_per_request=2), tmp_path / "out.jsonl", False)
    assert [count_asked(body) for body in server.requests] == [2, 2, 1]
    assert [body["seed"] for body in server.requests if "seed" in body] == []
    assert result.counts["delivered"] == 5 and result.counts["requests_sent"] == 3


def test_negatives_per_request_budget_is_rounds_times_requests_a_round(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    with FakeLLM(answer=lambda body: "I cannot help with that.") as server:
        generate_file(pairs, config(server, max_attempts=2, negatives_per_request=2), tmp_path / "out.jsonl", False)
    assert [count_asked(body) for body in server.requests] == [2] * 6


def test_the_source_label_names_the_prompt_unless_it_is_the_default():
    from hardneg.generation.generate import generator_label

    assert generator_label("smollm2-135m") == "smollm2-135m"
    assert generator_label("smollm2-135m", "query-only") == "smollm2-135m/query-only"
    assert generator_label("/m/Model.Q4.gguf", "/t/my-prompt.txt") == "Model.Q4/my-prompt"
