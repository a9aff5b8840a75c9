"""Generated negatives shaped like the positive: the length-asking template, rewrites of the positive,
and swap mode (the model names substitutions, hardneg applies them)."""

from __future__ import annotations

import json

import pytest
from helpers import FAST, FakeLLM, count_asked, good_answer, mini_grid, write_config, write_pairs

from hardneg.data.records import read_triplets
from hardneg.experiment import run_experiment
from hardneg.generation.generate import generate_file
from hardneg.generation.parse import RejectRules, apply_swap, parse_swaps, swap_candidates
from hardneg.generation.prompts import load_template
from hardneg.settings.llm import GenerateSettings, RejectSettings
from hardneg.stages import run_kind

POSITIVE = "Compound 0 lowered systolic blood pressure by 12 mmHg in a randomized trial of 300 adults."


def settings(server: FakeLLM, **overrides) -> GenerateSettings:
    return GenerateSettings(model="fake-model", base_url=server.url, **{**FAST, **overrides})


def test_the_length_and_rewrite_templates_show_the_positive_and_its_length():
    for name in ("length-matched", "rewrite", "swap"):
        text = load_template(name).prompt("does compound 0 lower blood pressure", POSITIVE, 3)
        assert POSITIVE in text and "$" not in text and "3" in text
    assert "about 16 words" in load_template("length-matched").prompt("q", POSITIVE, 3)
    assert "about 16 words" in load_template("rewrite").prompt("q", POSITIVE, 3)


@pytest.mark.parametrize(
    "answer, swaps, shape",
    [
        ('{"swaps": [{"from": "300 adults", "to": "40 children"}]}', [("300 adults", "40 children")], "json"),
        ('[{"from": "systolic", "to": "diastolic"}, {"from": "x"}]', [("systolic", "diastolic")], "json"),
        ('[["12 mmHg", "3 mmHg"]]', [("12 mmHg", "3 mmHg")], "json"),
        (
            '1. adults -> children\n2. "blood pressure" => "heart rate"',
            [("adults", "children"), ("blood pressure", "heart rate")],
            "list",
        ),
        ("<think>hmm</think>no idea", [], "none"),
    ],
)
def test_substitutions_parse_from_json_or_arrow_lines(answer, swaps, shape):
    assert parse_swaps(answer) == (swaps, shape)


def test_a_swap_may_replace_the_positive_s_content_phrases_only():
    offered = swap_candidates(POSITIVE)
    assert offered[:3] == ["Compound", "0", "Compound 0"] and "randomized trial" in offered
    assert all(phrase in POSITIVE for phrase in offered) and "trial of" not in offered
    assert len(swap_candidates(" ".join(f"word{i}" for i in range(500)))) == 120


def test_a_swap_applies_to_the_positive_or_is_rejected_with_its_reason():
    assert apply_swap(POSITIVE, "300 adults", "40 children")[0] == POSITIVE.replace(
        "300 adults", "40 children"
    )
    assert apply_swap(POSITIVE, "RANDOMIZED TRIAL", "cohort study")[0].endswith(
        "in a cohort study of 300 adults."
    )
    assert apply_swap(POSITIVE, "aspirin", "statins") == (None, "swap_not_found")
    assert apply_swap(POSITIVE, "adults", "Adults") == (None, "swap_unchanged")
    assert apply_swap(POSITIVE, " ", "x") == (None, "swap_not_found")
    assert apply_swap(POSITIVE, "of", "for") == (None, "swap_trivial")  # a near-copy: a false negative
    assert apply_swap(POSITIVE, "in a", "on the") == (None, "swap_trivial")
    assert apply_swap(POSITIVE, "12", "40")[0] == POSITIVE.replace("12", "40")  # numbers are content


def test_a_swap_replaces_whole_words_only_whatever_their_case_and_spacing():
    """Measured on the study's stored swaps before these rules: 9% of them also edited inside longer
    tokens ('12' in '2012', 'age' in 'average'; benchmarks/swap_edits.py --answers)."""
    text = "In 2012, 120 adults gained 12 kg. Average age was 50; age mattered. Cancer risk and cancer\nrates"
    assert apply_swap(text, "12", "40")[0] == text.replace(" 12 kg", " 40 kg")
    assert apply_swap(text, "age", "weight")[0] == text.replace(" age ", " weight ").replace(
        "; age", "; weight"
    )
    # 'Cancer' at a sentence start is replaced too, and keeps its capital; a phrase may span a line break
    assert apply_swap(text, "cancer", "diabetes")[0].endswith("Diabetes risk and diabetes\nrates")
    assert apply_swap(text, "cancer rates", "stroke")[0].endswith("Cancer risk and stroke")
    assert apply_swap(text, "ancer", "x") == (None, "swap_not_found")  # part of a word is not a swap


def test_a_swap_keeps_to_whole_tokens_and_to_the_written_case():
    """Rules 3: a number inside a decimal or a hyphenated name is part of another token; 'AIDS' is
    not 'aids'; a symbol keeps its own case; punctuation at the edge of 'from' is its own edge."""
    assert apply_swap("received 5 mg, then 2.5 mg", "5", "10")[0] == "received 10 mg, then 2.5 mg"
    assert apply_swap("IL-6 rose 6-fold", "6", "8") == (None, "swap_not_found")
    assert apply_swap("HIV causes AIDS; exercise aids recovery.", "AIDS", "malaria")[0] == (
        "HIV causes malaria; exercise aids recovery."
    )
    assert apply_swap("In a RANDOMIZED trial", "randomized trial", "cohort study")[0] == "In a cohort study"
    assert (
        apply_swap("Interleukin-6 rose. Interleukin-6 fell", "Interleukin-6", "p53")[0]
        == "p53 rose. p53 fell"
    )
    assert apply_swap("levels of interleukin-6 (IL-6) rose", "(IL-6)", "(TNF)")[0].endswith("(TNF) rose")
    assert apply_swap("5% of 15% were", "5%", "7%")[0] == "7% of 15% were"


def test_edits_are_not_near_copies_but_an_unchanged_positive_is_rejected():
    edit = POSITIVE.replace("300 adults", "40 children")
    default = RejectRules("q", POSITIVE, RejectSettings())
    assert default.reason(edit) == "near_copy"
    edits = RejectRules("q", POSITIVE, RejectSettings(), max_copy_overlap=1.0)
    assert edits.reason(edit) is None and edits.reason(POSITIVE.upper()) == "unchanged"
    assert GenerateSettings(template="rewrite").copy_overlap_limit == 1.0
    assert (
        GenerateSettings(mode="swap").copy_overlap_limit == 1.0
        and GenerateSettings(mode="swap").template == "swap"
    )
    assert GenerateSettings(template="rewrite", rejects={"max_copy_overlap": 0.9}).copy_overlap_limit == 0.9
    assert GenerateSettings().copy_overlap_limit == 0.7


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"template": "swap"}, "template 'swap' goes with mode = 'swap'"),
        ({"mode": "swap", "template": "query-only"}, "template 'swap' goes with mode = 'swap'"),
        ({"mode": "swap", "api": "completions", "template": "few-shot"}, "mode 'swap' asks a chat model"),
    ],
)
def test_swap_mode_settings_are_checked(fields, message):
    with pytest.raises(ValueError, match=message):
        GenerateSettings(**fields)


def swap_answer(body: dict) -> str:
    """Three substitutions: two apply, one names a phrase the positive lacks; re-asks get one good one."""
    asked = body["response_format"]["json_schema"]["schema"]["properties"]["swaps"]["minItems"]
    if asked == 3:
        swaps = [("300 adults", "40 children"), ("systolic", "diastolic"), ("aspirin", "statins")]
    else:
        swaps = [("randomized trial", "cohort study")] * asked
    return json.dumps({"swaps": [{"from": a, "to": b} for a, b in swaps]})


def test_swap_mode_end_to_end_keeps_the_positive_s_length_and_asks_with_a_schema(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    out = tmp_path / "swaps.jsonl"
    with FakeLLM(answer=swap_answer) as server:
        result = run_kind(
            "generate", settings(server, mode="swap", num_negatives=3), {"pairs": pairs}, out, False
        )
    first = server.requests[0]
    assert first["response_format"]["json_schema"]["name"] == "substitutions"
    swap = first["response_format"]["json_schema"]["schema"]["properties"]["swaps"]["items"]["properties"]
    offered = swap["from"]["enum"]  # 'from' must be a phrase of the positive: a grammar enforces it
    assert {"300 adults", "systolic blood pressure", "12 mmHg"} <= set(offered) and "of" not in offered
    assert "Give 3 substitutions" in first["messages"][0]["content"]
    counts = result.counts
    assert counts["rejects"] == {"swap_not_found": 2} and counts["delivered"] == 6
    assert counts["source"] == "llm:fake-model/swap"
    for triplet in read_triplets(out):
        assert len(triplet.negatives) == 3
        for negative in triplet.negatives:
            assert negative.text != triplet.positive and len(negative.text.split()) == len(
                triplet.positive.split()
            )


def test_swap_mode_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from hardneg.cli import app

    pairs, out = write_pairs(tmp_path / "pairs.jsonl", 2), tmp_path / "swaps.jsonl"
    with FakeLLM(answer=swap_answer) as server:
        args = ["generate", "--pairs", str(pairs), "--model", "m", "--base-url", server.url, "--mode", "swap",
                "--swap-from", "query", "-n", "3", "--output", str(out), "-q"]  # fmt: skip
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert server.requests[0]["response_format"]["json_schema"]["name"] == "substitutions"
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["settings"]["mode"] == "swap" and manifest["settings"]["swap_from"] == "query"
    assert manifest["counts"]["source"] == "llm:m/swap" and read_triplets(out)


def test_swaps_may_be_held_to_what_the_query_asks_about(tmp_path):
    near = swap_candidates(POSITIVE, "does compound 0 lower blood pressure")
    assert {"Compound 0", "lowered", "blood pressure", "systolic blood pressure"} <= set(near)
    assert not {"300 adults", "randomized trial", "12 mmHg"} & set(near)  # they leave the answer intact
    assert swap_candidates(POSITIVE, "zebra migration") == swap_candidates(POSITIVE)  # nothing near: all

    def answer(body: dict) -> str:
        asked = body["response_format"]["json_schema"]["schema"]["properties"]["swaps"]["minItems"]
        swaps = [("blood pressure", "heart rate"), ("300 adults", "40 children"), ("compound", "placebo")]
        return json.dumps(
            {"swaps": [{"from": a, "to": b} for a, b in (swaps if asked == 3 else [("pressure", "glucose")])]}
        )

    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    with FakeLLM(answer=answer) as server:
        config = settings(server, mode="swap", num_negatives=3, swap_from="query")
        result = run_kind("generate", config, {"pairs": pairs}, tmp_path / "near.jsonl", False)
    schema = server.requests[0]["response_format"]["json_schema"]["schema"]
    offered = schema["properties"]["swaps"]["items"]["properties"]["from"]["enum"]
    assert "blood pressure" in offered and "300 adults" not in offered
    assert result.counts["rejects"] == {"swap_off_query": 2} and result.counts["delivered"] == 6
    texts = [n.text for t in read_triplets(tmp_path / "near.jsonl") for n in t.negatives]
    assert not any("40 children" in text for text in texts) and any("heart rate" in text for text in texts)


def test_rewrites_pass_the_rejects_that_would_call_them_copies(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)

    def rewrites(body: dict) -> str:
        return json.dumps([POSITIVE.replace("300 adults", f"{n} mice") for n in range(count_asked(body))])

    with FakeLLM(answer=rewrites) as server:
        result = generate_file(
            pairs, settings(server, template="rewrite", num_negatives=2), tmp_path / "r.jsonl", False
        )
    assert result.counts["delivered"] == 2 and result.counts["source"] == "llm:fake-model/rewrite"


def test_the_model_sees_only_as_much_of_the_positive_as_the_trainer_reads(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    with FakeLLM(answer=swap_answer) as server:
        run_kind(
            "generate",
            settings(server, mode="swap", num_negatives=3, positive_max_words=4),
            {"pairs": pairs},
            tmp_path / "swaps.jsonl",
            False,
        )
        prompt = server.requests[0]["messages"][0]["content"]
        offered = server.requests[0]["response_format"]["json_schema"]["schema"]["properties"]["swaps"]
    assert "passage: Compound 0 lowered systolic\n" in prompt and "12 mmHg" not in prompt
    assert "300 adults" not in offered["items"]["properties"]["from"]["enum"]  # phrases it was shown
    shown = GenerateSettings(template="length-matched", positive_max_words=4)
    assert shown.shown_positive(POSITIVE) == "Compound 0 lowered systolic"
    assert GenerateSettings().shown_positive(POSITIVE) == POSITIVE
    # swaps of what it saw still apply to the whole positive: the negative keeps its full length
    for triplet in read_triplets(tmp_path / "swaps.jsonl"):
        assert all(len(n.text.split()) == len(triplet.positive.split()) for n in triplet.negatives)


def edits_answer(body: dict) -> str:
    """Swaps of phrases the schema offers; for the written templates, passages."""
    schema = body.get("response_format", {}).get("json_schema", {})
    if schema.get("name") != "substitutions":
        return good_answer(body)
    swaps = schema["schema"]["properties"]["swaps"]
    offered = swaps["items"]["properties"]["from"]["enum"]
    picks = [offered[-1 - i % len(offered)] for i in range(swaps["minItems"])]
    return json.dumps({"swaps": [{"from": phrase, "to": f"zebra{i}"} for i, phrase in enumerate(picks)]})


def test_the_edit_recipes_run_in_a_grid_as_corpus_free_rows(tmp_path, tiny_model_path):
    """Swap mode, the rewrite and length-asking templates and a pool mixed with swaps, from a grid
    config through training, evaluation, the audit and the report."""
    with FakeLLM(answer=edits_answer) as server:
        llm = f'model = "fake-model", base_url = "{server.url}", num_negatives = 2, backoff = 0.01'
        body = (
            mini_grid(tmp_path, "edits", tiny_model_path, audit=f'scorer = "{tiny_model_path}"')
            + f"""
[sources.swap]
generate = {{ {llm}, mode = "swap" }}
[sources.rewrite]
generate = {{ {llm}, template = "rewrite", negatives_per_request = 1, positive_max_words = 20 }}
[sources.length]
generate = {{ {llm}, template = "length-matched" }}
[sources.pool]
mine = {{ method = "bm25", corpus = "pool", num_negatives = 2 }}
[sources."pool+swap"]
combine = {{ inputs = ["pool", "swap"], strategy = "interleave", max_negatives = 2 }}
"""
        )
        run_experiment(write_config(tmp_path, body), tmp_path / "run", show_progress=False)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    rows = {row["source"]: row for row in results["rows"]}
    assert {"swap", "rewrite", "length", "pool+swap"} <= set(rows)
    assert all(rows[name]["corpus_free"] for name in ("swap", "rewrite", "length", "pool", "pool+swap"))
    swap = results["audits"]["mini/swap"]["llm:fake-model/swap"]
    assert 0.9 <= swap["length_ratio"] <= 1.1  # a swapped positive keeps its length
    assert "llm:fake-model/rewrite" in results["audits"]["mini/rewrite"]
    assert set(results["audits"]["mini/pool+swap"]) == {"pool-bm25", "llm:fake-model/swap"}
    asked = [body.get("response_format", {}).get("json_schema", {}).get("name") for body in server.requests]
    assert "substitutions" in asked and any(name != "substitutions" for name in asked)
