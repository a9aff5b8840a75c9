"""Parsing LLM answers, reject rules, prompt templates and the durable answer store."""

import json

import pytest

from hardneg.settings.llm import RejectSettings
from hardneg.core.errors import DataError, HardnegError
from hardneg.generation.parse import RejectRules, parse_answer, strip_thinking
from hardneg.generation.prompts import load_template
from hardneg.generation.store import ResponseStore, request_key


@pytest.mark.parametrize(
    "answer, expected, shape",
    [
        ('["first passage", "second passage"]', ["first passage", "second passage"], "json"),
        ('Sure:\n```json\n["a one", "b two"]\n```\nHope it helps.', ["a one", "b two"], "json"),
        ('{"negatives": ["x y", "z w"]}', ["x y", "z w"], "json"),
        ('[{"text": "from a dict"}, {"passage": "another one"}]', ["from a dict", "another one"], "json"),
        ('Here they are: ["inline", "array"] done', ["inline", "array"], "json"),
        ("1. First item\nwraps here.\n2) Second item\n\nThat is all.", ["First item wraps here.", "Second item"], "list"),
        ("- **Negative 1:** bullet one\n* bullet two\n• bullet three", ["bullet one", "bullet two", "bullet three"], "list"),
        ('["1. numbered inside", "2) also"]', ["numbered inside", "also"], "json"),
        ('<think>maybe ["not", "this"]</think>["real one"]', ["real one"], "json"),
        ('{"negatives": ["first one", "a \\"quoted\\" two", "cut off at the tok', ["first one", 'a "quoted" two'], "truncated_json"),
        ('He said "hi", then [left', [], "none"),
        ("I cannot write that.", [], "none"),
        ("<think>ran out of tokens while thinking", [], "none"),
    ],
)
def test_parse_answer_shapes(answer, expected, shape):
    assert parse_answer(answer) == (expected, shape)


def test_strip_thinking_keeps_the_answer():
    assert strip_thinking("<THINK>\nplan\n</THINK>\n\nanswer") == "answer"


def test_the_schema_caps_passages_so_all_fit_in_max_tokens():
    from hardneg.generation.client import negatives_schema

    items = negatives_schema(5, 8, 1024)["json_schema"]["schema"]["properties"]["negatives"]
    assert (items["minItems"], items["maxItems"]) == (5, 5)
    assert 5 * items["items"]["maxLength"] / 4 < 1024  # at ~4 characters a token
    assert items["items"]["minLength"] == 48


def test_json_without_a_list_of_passages_falls_back_to_a_list_or_nothing():
    assert parse_answer('{"query": "q", "posted_by": "someone"}') == ([], "none")


POSITIVE = "Pyridostatin stabilizes G-quadruplex structures in telomeres and induces DNA damage in BRCA2-deficient cells."
RULES = RejectSettings(min_words=5, max_copy_overlap=0.7)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Too short here.", "too_short"),
        ("I'm sorry, but I cannot help with writing misleading passages.", "not_a_passage"),
        ("As an AI language model I will write five passages for you now.", "not_a_passage"),
        ("Here is a hard negative passage about telomeres for the query above.", "not_a_passage"),
        ("Does pyridostatin stabilize telomeric G-quadruplexes?", "not_a_passage"),
        ("A: [A:Dysonidae:A:Dysonidae:Dysonidae:A:Dysonidae:Dysonidae:A:Dysonidae:Dysonidae] and more words here", "not_a_passage"),
        ("This is a disorder which is caused by a disorder which is caused by a disorder which is caused by a disorder", "repetitive"),
        ("Pyridostatin stabilizes G-quadruplex structures in telomeres and induces DNA damage in BRCA1-deficient cells.", "near_copy"),
        ("Telomerase activity in stem cells declines with age, and telomere length predicts replicative lifespan.", None),
    ],
)
def test_reject_reasons(text, reason):
    rules = RejectRules("Does pyridostatin stabilize telomeric G-quadruplexes?", POSITIVE, RULES)
    assert rules.reason(text) == reason


def test_duplicates_are_caught_across_answers_ignoring_case_and_spaces():
    rules = RejectRules("q", POSITIVE, RULES)
    text = "Telomerase activity in stem cells declines with age in most tissues studied."
    assert rules.accept(text) is None
    assert rules.accept("  " + text.upper().replace(" ", "  ")) == "duplicate"
    assert rules.reason(text) == "duplicate"


def test_built_in_templates_render_the_pair():
    both = load_template("query+positive").render("the query", "the positive", 3)
    assert both[0]["role"] == "user"
    assert "the query" in both[0]["content"] and "the positive" in both[0]["content"] and "3" in both[0]["content"]
    only = load_template("query-only").render("the query", "the positive", 3, disable_thinking=True)
    assert "the positive" not in only[0]["content"]
    assert only[0]["content"].endswith("/no_think")


def test_user_template_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text('Q=$query P=$positive N=$num_negatives, JSON {"a": 1} costs $$5')
    content = load_template(str(path)).render("q", "p", 2)[0]["content"]
    assert content == 'Q=q P=p N=2, JSON {"a": 1} costs $5'


@pytest.mark.parametrize(
    "text, message",
    [
        ("Show $query and $answer", "unknown placeholder $answer"),
        ("Only $positive here", "never shows the query"),
        ("Costs $ 5 for $query", "invalid '$'"),
    ],
)
def test_bad_template_files_fail_with_the_file_name(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(HardnegError, match=rf"{path}: .*{message.replace('$', '[$]')}"):
        load_template(str(path))


def test_missing_template_names_the_built_ins(tmp_path):
    with pytest.raises(HardnegError, match="query\\+positive, query-only"):
        load_template(str(tmp_path / "nope.txt"))


def test_request_key_depends_on_every_part():
    # generate() passes the JSON schema too, so a change of schema is a new request
    base = dict(model="m", template="t", query="q", positive="p", sample=0)
    keys = {request_key(**base)} | {request_key(**{**base, name: "other"}) for name in base}
    assert len(keys) == len(base) + 1
    assert request_key(**base) == request_key(**dict(reversed(list(base.items()))))


def test_store_survives_reopen_and_a_line_cut_short(tmp_path):
    path = tmp_path / "answers.jsonl"
    with ResponseStore(path) as store:
        store.put("k1", {"answer": "one"})
        store.put("k2", {"answer": "two"})
    with path.open("a") as handle:
        handle.write('{"key": "k3", "answ')  # what a kill in the middle of a write leaves
    with ResponseStore(path) as store:
        assert store.get("k1")["answer"] == "one" and "k2" in store and "k3" not in store
        store.put("k3", {"answer": "three"})
    lines = path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["k1", "k2", "k3"]


def test_store_with_a_corrupt_line_names_it(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text('{"key": "k1", "answer": "a"}\nnot json\n{"key": "k2"}\n')
    with pytest.raises(DataError, match=r"answers.jsonl:2: not a stored response"):
        ResponseStore(path)


def test_a_store_has_one_writer_at_a_time(tmp_path):
    import fcntl

    path = tmp_path / "answers.jsonl"
    with ResponseStore(path) as store:
        store.put("k", {"answer": "a"})
        with path.open("a") as other, pytest.raises(BlockingIOError):  # what a second process would wait on
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with path.open("a") as other:  # closed: free again, and no lock file is left beside it
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert [p.name for p in tmp_path.iterdir()] == ["answers.jsonl"]
