"""The LLM judge: verdicts per negative, drop or relabel, stored answers, agreement with the audit."""

from __future__ import annotations

import json

from helpers import FakeLLM, good_answer, mini_head, write_config
from typer.testing import CliRunner

from hardneg.reporting.audit import audit_file
from hardneg.settings.audit import AuditSettings
from hardneg.cli import app
from hardneg.combining.combine import combine_files
from hardneg.settings.combine import CombineSettings
from hardneg.data.records import Negative, Triplet, read_triplets, write_records
from hardneg.generation.judge import judged_path, verdict_of


def verdict_answer(body: dict) -> str:
    """'yes' for passages that contain ANSWERS, in the shape each API asks for."""
    text = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
    passage = text.split("Passage:")[-1]
    verdict = "yes" if "ANSWERS" in passage else "no"
    return f" {verdict.capitalize()}, because" if "prompt" in body else json.dumps({"answer": verdict})


def write_input(tmp_path, scored: bool = False):
    """Three triplets; ``scored``: with a teacher's scores, as margin-MSE needs them."""
    score = {"scorer": "dense:t", "positive_score": 0.9} if scored else {}
    triplets = [
        Triplet(query_id=f"q{i}", query=f"does drug {i} lower blood pressure", positive_id=f"d{i}",
                positive=f"Drug {i} lowered blood pressure by 10 mmHg in a trial.", **score,
                negatives=[Negative(text=f"Drug {i} ANSWERS: it lowers blood pressure.", source="llm:x",
                                    score=0.8 if scored else None),
                           Negative(text=f"Drug {i} is sold in tablets of 5 mg.", source="llm:x",
                                    score=0.1 if scored else None)])
        for i in range(3)
    ]  # fmt: skip
    write_records(tmp_path / "in.jsonl", triplets)
    return tmp_path / "in.jsonl"


def judge(server: FakeLLM, **settings) -> dict:
    return {"model": "fake-judge", "base_url": server.url, "backoff": 0.01, **settings}


def test_the_judge_drops_what_it_says_answers_the_query_and_replays_its_answers(tmp_path):
    source = write_input(tmp_path)
    with FakeLLM(answer=verdict_answer) as server:
        result = combine_files([source], CombineSettings(judge=judge(server)), tmp_path / "out.jsonl", show_progress=False)
        assert len(server.requests) == 6 and server.requests[0]["response_format"]["json_schema"]["name"] == "verdict"
        assert server.requests[0]["temperature"] == 0.0
        again = combine_files([source], CombineSettings(judge=judge(server)), tmp_path / "out.jsonl", show_progress=False)
        assert len(server.requests) == 6  # every answer replayed from the store
    assert result.counts["judge_yes"] == 3 and result.counts["judge_no"] == 3 and result.counts["judge_dropped"] == 3
    assert again.counts["judge_requests_reused"] == 6
    kept = read_triplets(tmp_path / "out.jsonl")
    assert [[n.text for n in t.negatives] for t in kept] == [[f"Drug {i} is sold in tablets of 5 mg."] for i in range(3)]
    verdicts = [json.loads(line) for line in judged_path(tmp_path / "out.jsonl").open()]
    assert [v["verdict"] for v in verdicts] == ["yes", "no"] * 3 and verdicts[0]["positive"].startswith("Drug 0")


def test_relabel_makes_an_extra_pair_from_a_false_negative_and_completions_work(tmp_path):
    source = write_input(tmp_path)
    with FakeLLM(answer=verdict_answer) as server:
        settings = judge(server, action="relabel", api="completions", template=str(write_template(tmp_path)))
        combine_files([source], CombineSettings(judge=settings), tmp_path / "out.jsonl", show_progress=False)
        assert "prompt" in server.requests[0] and "response_format" not in server.requests[0]
    triplets = read_triplets(tmp_path / "out.jsonl")
    assert len(triplets) == 6
    extra = [t for t in triplets if t.positive_id.startswith("relabelled:")]
    assert [t.positive for t in extra] == [f"Drug {i} ANSWERS: it lowers blood pressure." for i in range(3)]
    assert all([n.text for n in t.negatives] == [f"Drug {t.query_id[1:]} is sold in tablets of 5 mg."] for t in extra)


def test_a_relabelled_pair_s_positive_carries_its_own_teacher_score(tmp_path):
    """Margin-MSE reads positive_score - score: the new positive's is the judged passage's (0.8), not
    the old positive's (0.9)."""
    source = write_input(tmp_path, scored=True)
    with FakeLLM(answer=verdict_answer) as server:
        settings = CombineSettings(judge=judge(server, action="relabel"))
        combine_files([source], settings, tmp_path / "out.jsonl", show_progress=False)
    triplets = read_triplets(tmp_path / "out.jsonl")
    extra = [t for t in triplets if t.positive_id.startswith("relabelled:")]
    assert len(extra) == 3 and all(t.positive_score == 0.8 and t.scorer == "dense:t" for t in extra)
    assert all(t.positive_score == 0.9 for t in triplets if not t.positive_id.startswith("relabelled:"))


def write_template(tmp_path):
    path = tmp_path / "judge.txt"
    path.write_text("Query: $query\nPassage: $passage\nDoes the passage answer the query (yes or no)? Answer:")
    return path


def test_verdicts_are_read_from_json_or_the_first_word():
    assert verdict_of('{"answer": "yes"}') == "yes" and verdict_of('{\n  "answer": "no') == "no" and verdict_of(" No, it does not.") == "no"
    assert verdict_of("<think>yes?</think> no") == "no" and verdict_of("Maybe.") == "unclear"


def test_the_audit_reports_agreement_with_the_judge(tmp_path, tiny_model_path):
    source = write_input(tmp_path)
    with FakeLLM(answer=verdict_answer) as server:
        combine_files([source], CombineSettings(judge=judge(server)), tmp_path / "out.jsonl", show_progress=False)
    result = audit_file(tmp_path / "out.jsonl", AuditSettings(scorer=str(tiny_model_path)), show_progress=False)
    agreement = result.judge
    assert agreement.judged == 6 and agreement.judge_yes == 3 and agreement.unclear == 0
    assert 0 <= agreement.both <= min(agreement.judge_yes, agreement.audit_false_negative)
    assert agreement.agreement is not None and 0.0 <= agreement.agreement <= 1.0


def test_the_judge_from_the_command_line(tmp_path):
    source = write_input(tmp_path)
    with FakeLLM(answer=verdict_answer) as server:
        args = ["combine", str(source), "-o", str(tmp_path / "out.jsonl"), "--judge-model", "fake-judge",
                "--judge-base-url", server.url, "--judge-action", "relabel", "-q"]  # fmt: skip
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(read_triplets(tmp_path / "out.jsonl")) == 6
    plain = CliRunner().invoke(app, ["combine", str(source), "-o", str(tmp_path / "plain.jsonl"), "-q"])
    assert plain.exit_code == 0 and not judged_path(tmp_path / "plain.jsonl").exists()  # no judge flag: no judge


def test_a_study_source_judged_by_an_llm_runs_and_its_audit_reports_agreement(tmp_path, tiny_model_path):
    from hardneg.experiment import load_experiment, plan_experiment, run_experiment

    def answer(body: dict) -> str:
        content = body["messages"][-1]["content"]
        return verdict_answer(body) if "Does this passage answer" in content else good_answer(body)

    with FakeLLM(answer=answer) as server:
        body = mini_head(tmp_path, "judged", tiny_model_path) + f"""
epochs = 1
[evaluation]
top_k = 10
pool_depth = 3
bootstrap_resamples = 50
[audit]
scorer = "{tiny_model_path}"
[sources.llm]
generate = {{ model = "fake-model", base_url = "{server.url}", num_negatives = 2, backoff = 0.01 }}
[sources."llm judged"]
combine = {{ inputs = ["llm"], judge = {{ model = "fake-judge", base_url = "{server.url}", action = "relabel" }} }}
[sources."llm dropped"]
combine = {{ inputs = ["llm"], judge = {{ model = "fake-judge", base_url = "{server.url}" }} }}
"""
        config = write_config(tmp_path, body)
        plan = plan_experiment(load_experiment(config), tmp_path / "run")
        run_experiment(config, tmp_path / "run", show_progress=False)
        asked = [r for r in server.requests if "Does this passage answer" in r["messages"][-1]["content"]]
    negatives = sum(len(t.negatives) for t in read_triplets(tmp_path / "run" / next(s.output for s in plan.stages if s.kind == "generate")))
    assert len(asked) == negatives  # the second combination replayed the shared store
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    judged = results["audits"]["mini/llm judged"]
    assert judged and "LLM judge against this scorer" in (tmp_path / "run" / "results.md").read_text()
