"""What the test modules share: BEIR folders written on the fly, the team's data, small configs
for `hardneg run`, pairs and triplets, and the loopback servers (re-exported from fake_llm.py and
label_studio_server.py). Test modules import these from here, never from each other or from
conftest.py; fixtures live in conftest.py."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fake_llm import FakeLLM, count_asked, good_answer, query_of
from label_studio_server import PersonalToken, label_studio_command, personal_token, running_label_studio

if TYPE_CHECKING:
    from hardneg.data.records import Triplet

__all__ = [
    "AUDIT",
    "FAST",
    "SHARED_BEIR",
    "TINY_CORPUS",
    "TINY_QRELS",
    "TINY_QUERIES",
    "TOPICS",
    "VOTES",
    "FakeLLM",
    "PersonalToken",
    "count_asked",
    "export",
    "good_answer",
    "grid_config",
    "label_studio_command",
    "labelled_project",
    "make_triplets",
    "mini_head",
    "personal_token",
    "query_of",
    "running_label_studio",
    "shared_dataset",
    "triplet",
    "write_beir",
    "write_config",
    "write_export",
    "write_mining_beir",
    "write_pairs",
]

# --- BEIR folders ----------------------------------------------------------------------------

SHARED_BEIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beir"

TINY_CORPUS = {
    "d1": {"title": "Solar panels", "text": "Photovoltaic cells convert sunlight into electricity."},
    "d2": {"title": "Wind power", "text": "Turbines turn wind into electrical energy on farms."},
    "d3": {"title": "Bread", "text": "Yeast makes dough rise before baking bread in an oven."},
    "d4": {"title": "Coffee", "text": "Roasted coffee beans are ground and brewed with hot water."},
    "d5": {"title": "Batteries", "text": "Lithium batteries store electricity from solar panels."},
}
TINY_QUERIES = {
    "q1": "how do solar cells make electricity",
    "q2": "how is bread baked",
    "q3": "wind turbines energy",
    "q4": "brewing coffee",
}
TINY_QRELS = {
    "test": {"q1": {"d1": 2, "d5": 1}, "q2": {"d3": 1}},
    "train": {"q3": {"d2": 1}, "q4": {"d4": 1}},
}


def write_beir(
    folder: Path,
    corpus: dict | None = None,
    queries: dict | None = None,
    qrels: dict | None = None,
) -> Path:
    """Write a BEIR folder; tests corrupt single files afterwards to probe the validator."""
    corpus = TINY_CORPUS if corpus is None else corpus
    queries = TINY_QUERIES if queries is None else queries
    qrels = TINY_QRELS if qrels is None else qrels
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, doc in corpus.items():
            out.write(json.dumps({"_id": doc_id, **doc}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for query_id, text in queries.items():
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    for split, judged in qrels.items():
        with (folder / "qrels" / f"{split}.tsv").open("w") as out:
            out.write("query-id\tcorpus-id\tscore\n")
            for query_id, docs in judged.items():
                for doc_id, score in docs.items():
                    out.write(f"{query_id}\t{doc_id}\t{score}\n")
    return folder


def shared_dataset(name: str) -> Path:
    path = SHARED_BEIR / name
    if not path.is_dir():
        pytest.skip(f"{path} is missing (the team's data sits in ../shared beside the checkout)")
    return path


TOPICS = {
    "solar": "sun panel photovoltaic light electricity cell roof energy",
    "wind": "turbine blade air farm electricity energy tower breeze",
    "bread": "yeast dough oven flour bake crust loaf wheat",
    "coffee": "bean roast grind brew espresso cup caffeine water",
}


def write_mining_beir(folder: Path) -> Path:
    """36 documents on 4 topics with shared words, so every query has many BM25 candidates.

    q-solar-0 is judged in train (s0 positive, s1 judged 0) and in test (s2 positive); document
    'copy' repeats s0's text under another id.
    """
    rng = random.Random(7)
    corpus = {}
    for topic, words in TOPICS.items():
        vocabulary = words.split()
        for i in range(8):
            picked = " ".join(rng.choice(vocabulary) for _ in range(12))
            corpus[f"{topic[0]}{i}"] = {"title": f"{topic} {i}", "text": f"{topic} {picked}"}
    corpus["copy"] = dict(corpus["s0"])
    corpus["misc1"] = {"title": "", "text": "a note on energy prices"}
    corpus["misc2"] = {"title": "", "text": "nothing in common"}
    corpus["misc3"] = {"title": "", "text": "solar energy and wind energy"}
    queries = {
        f"q-{t}-{j}": f"{t} {' '.join(TOPICS[t].split()[j : j + 3])}" for t in TOPICS for j in range(2)
    }
    train = {f"q-{t}-{j}": {f"{t[0]}{j}": 1} for t in TOPICS for j in range(2)}
    train["q-solar-0"] = {"s0": 1, "s1": 0}
    test = {"q-solar-0": {"s2": 2}, "q-wind-0": {"w5": 1}}
    return write_beir(folder, corpus, queries, {"train": train, "test": test})


SOLAR = "solar panels electricity sunlight cells"


def solar_pairs() -> list:
    """Pairs for six queries qA..qF on one topic (positives dA..dF), then qA's second pair (dC):
    every query is a pool candidate of every other, and qA has two known positives."""
    from hardneg.data.records import Pair

    pairs = [
        Pair(
            query_id=f"q{i}",
            query=f"{SOLAR} question {i}",
            positive_id=f"d{i}",
            positive=f"{SOLAR} answer {i}",
        )
        for i in "ABCDEF"
    ]
    return [
        *pairs,
        Pair(query_id="qA", query=f"{SOLAR} question A", positive_id="dC", positive=f"{SOLAR} answer C"),
    ]


# --- `hardneg run` configs -------------------------------------------------------------------


def write_config(folder: Path, body: str) -> Path:
    path = folder / "exp.toml"
    path.write_text(body)
    return path


def mini_head(tmp_path: Path, name: str, model: Path) -> str:
    """The 'mini' dataset, the base model and small training settings (the [train] table stays open)."""
    data = tmp_path / "mini"
    if not data.exists():  # rewriting it would change the data's identity, and rerun everything
        write_mining_beir(data)
    return f"""
name = "{name}"
base_model = "{model}"
data_root = "{tmp_path}"
[[datasets]]
train = "mini"
[pairs]
[train]
num_negatives = 2
batch_size = 2
validation_fraction = 0.25
eval_steps = 2
"""


def mini_grid(tmp_path: Path, name: str, model: Path, audit: str = "enabled = false") -> str:
    """``mini_head`` with one epoch and a small, fast evaluation; ``audit`` is the [audit] table's body."""
    return (
        mini_head(tmp_path, name, model)
        + f"""epochs = 1
[evaluation]
top_k = 10
pool_depth = 3
bootstrap_resamples = 50
[audit]
{audit}
"""
    )


def grid_config(
    tmp_path: Path, server: FakeLLM, model: Path, cross_encoder: Path, learning_rate: float = 2e-5
) -> Path:
    body = (
        mini_head(tmp_path, "tiny", model)
        + f"""
epochs = 1
learning_rate = {learning_rate}
[evaluation]
top_k = 10
pool_depth = 3
bootstrap_resamples = 200
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
[sources.ce]
mine = {{ method = "cross-encoder", num_negatives = 2, rerank_depth = 5 }}
train_cross_encoder = {{ base_model = "{cross_encoder}", num_negatives = 2, batch_size = 4, epochs = 1, max_length = 64 }}
[sources.llm]
generate = {{ model = "fake-model", base_url = "{server.url}", num_negatives = 2, backoff = 0.01 }}
[sources."llm+bm25"]
combine = {{ inputs = ["llm", "bm25"], preset = "llm+bm25", strategy = "interleave", max_negatives = 2 }}
[sources."llm filtered"]
combine = {{ inputs = ["llm"], filters = {{ absolute_margin = 0.0, scorer = "dense:{model}" }} }}
[audit]
scorer = "{model}"
"""
    )
    return write_config(tmp_path, body)


# --- pairs for `generate`, triplets for `train` ----------------------------------------------

FAST = dict(backoff=0.01, backoff_max=0.05, timeout=0.5)
"""Client settings that keep retries against the fake LLM quick."""


def write_pairs(path: Path, count: int = 4) -> Path:
    from hardneg.data.records import Pair, write_records  # here, so conftest.py imports without hardneg

    pairs = [
        Pair(query_id=f"q{i}", query=f"does compound {i} lower blood pressure", positive_id=f"d{i}",
             positive=f"Compound {i} lowered systolic blood pressure by 12 mmHg in a randomized trial of 300 adults.")
        for i in range(count)
    ]  # fmt: skip
    write_records(path, pairs)
    return path


WORDS = "solar wind bread coffee river mountain music garden city ocean forest engine".split()


def triplet(q: int, p: int = 0, negatives: int = 2, source: str = "bm25") -> Triplet:
    from hardneg.data.records import Negative, Triplet

    topic = WORDS[q % len(WORDS)]
    return Triplet(
        query_id=f"q{q}", query=f"what about {topic} {q}", positive_id=f"d{q}-{p}",
        positive=f"{topic} facts number {q} {p} explained",
        negatives=[Negative(text=f"{topic} unrelated note {q} {p} {i}", source=source) for i in range(negatives)],
    )  # fmt: skip


# --- `hardneg review` projects ----------------------------------------------------------------


def make_triplets(path: Path, count: int = 5) -> Path:
    """``count`` triplets, each with two negatives from bm25 and two from llm."""
    from hardneg.data.records import Negative, Triplet, write_records

    triplets = [
        Triplet(query_id=f"q{i}", query=f"query {i}", positive_id=f"p{i}", positive=f"positive {i}",
                negatives=[Negative(text=f"{source} negative {i}.{j}", source=source, doc_id=f"{source}-{i}-{j}")
                           for source in ("bm25", "llm") for j in range(2)])
        for i in range(count)
    ]  # fmt: skip
    write_records(path, triplets)
    return path


def export(tmp_path: Path, *args, out: str = "project") -> tuple[list, dict]:
    """`hardneg review export ARGS -o tmp_path/out`: its tasks and its key."""
    from typer.testing import CliRunner

    from hardneg.cli import app

    result = CliRunner().invoke(app, ["review", "export", *map(str, args), "-o", str(tmp_path / out)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / out
    return json.loads((folder / "tasks.json").read_text()), json.loads((folder / "key.json").read_text())


VOTES = {  # per source, two items, three annotators each: the hand-computed case in test_review's test_import
    "bm25": [["hard", "hard", "hard"], ["hard", "hard", "too easy"]],
    "llm": [["too easy", "too easy", "too easy"], ["false negative", "false negative", "hard"]],
}
AUDIT = {"bm25": ["hard", "false negative"], "llm": ["too easy", "false negative"]}


def labelled_project(tmp_path: Path) -> list:
    triplets = make_triplets(tmp_path / "t.jsonl")
    tasks, key = export(tmp_path, triplets, "--per-source", 2)
    seen = {"bm25": 0, "llm": 0}
    for task in tasks:
        entry = key["items"][task["data"]["item"]]
        k = seen[entry["source"]]
        seen[entry["source"]] += 1
        entry["audit_class"] = AUDIT[entry["source"]][k]
        task["id"] = len(seen)
        task["annotations"] = [
            {"completed_by": user, "was_cancelled": False, "result": [
                {"from_name": "difficulty", "to_name": "negative", "type": "choices", "value": {"choices": [label]}}]}
            for user, label in zip([1, 2, 3], VOTES[entry["source"]][k])
        ] + [{"completed_by": 4, "was_cancelled": True, "result": []}]  # fmt: skip
    (tmp_path / "project" / "key.json").write_text(json.dumps(key))
    return tasks


def write_export(tmp_path: Path, tasks: list) -> Path:
    path = tmp_path / "project" / "export.json"
    path.write_text(json.dumps(tasks))
    return path


def write_topic_beir(folder: Path, per_topic: int = 12, test_per_topic: int = 2) -> Path:
    """Many small train queries on 4 topics (one positive each) and a few test ones: enough for a
    dev split. Test queries are named 'test-*' so a leak is easy to find."""
    rng = random.Random(11)
    corpus, queries, train, test = {}, {}, {}, {}
    for topic, words in TOPICS.items():
        vocabulary = words.split()
        for i in range(per_topic + test_per_topic):
            kind = "test-" if i >= per_topic else ""
            doc = f"{topic}-d{i}"
            corpus[doc] = {
                "title": "",
                "text": f"{topic} " + " ".join(rng.choice(vocabulary) for _ in range(10)),
            }
            query = f"{kind}{topic}-q{i}"
            queries[query] = f"{topic} {' '.join(rng.sample(vocabulary, 3))}"
            (test if kind else train)[query] = {doc: 1}
    return write_beir(folder, corpus, queries, {"train": train, "test": test})
