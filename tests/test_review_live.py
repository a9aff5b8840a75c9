"""The Label Studio round trip against a real server: the labeling config and tasks that `hardneg
review export` writes go in through Label Studio's HTTP API, three annotators label with their own
personal access tokens, and `hardneg review import` reads the project's JSON export. Needs the
`review` extra (`pip install -e '.[review]'`; `make setup` installs it); skipped without it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest
from helpers import PersonalToken, label_studio_command, personal_token, running_label_studio
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.records import Negative, Triplet, write_records
from hardneg.experiment.planfile import CellRef, PlanFile

pytestmark = pytest.mark.live

ADMIN = "owner@example.com"
ANNOTATORS = ["ann1@example.com", "ann2@example.com", "ann3@example.com"]
EASY_MARGIN = 0.2
MARGINS = {"hard": -0.1, "false negative": 0.05, "too easy": -0.6}  # audit_class() of each, at EASY_MARGIN
# Per source, three negatives (in triplet order): the audit's class, then the three annotators' labels.
PLAN = {
    "bm25": [("hard", ["hard", "hard", "hard"]), ("false negative", ["hard", "hard", "too easy"]),
             ("false negative", ["false negative"] * 3)],
    "llm": [("too easy", ["too easy"] * 3), ("false negative", ["false negative", "false negative", "hard"]),
            ("hard", ["too easy", "hard", "too easy"])],
}  # fmt: skip


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """One Label Studio per module (it takes ~40 s to start); yields its URL and the owner's password."""
    if label_studio_command() is None:
        pytest.skip("label-studio is not installed (pip install -e '.[review]', or `make setup`)")
    password = secrets.token_urlsafe(16)
    try:
        with running_label_studio(tmp_path_factory.mktemp("label-studio"), ADMIN, password) as base:
            yield base, password
    except RuntimeError as exc:
        pytest.fail(str(exc))


def reviewed_run(folder: Path) -> Path:
    """A run folder with two cells, each with three audited negatives (one per triplet)."""
    cells = []
    for source, rows in PLAN.items():
        triplets = [Triplet(query_id=f"{source}-q{i}", query=f"query {i} for {source}", positive_id=f"p{i}",
                            positive=f"positive passage {i}", negatives=[Negative(
                                text=f"{source} negative {i}", source=source, doc_id=f"{source}-d{i}")])
                    for i in range(len(rows))]  # fmt: skip
        write_records(folder / "negatives" / f"{source}.jsonl", triplets)
        margins = [MARGINS[audit_class] for audit_class, _ in rows]
        audit = {"settings": {"easy_margin": EASY_MARGIN}, "sources": {source: {"margins": margins}}}
        (folder / "audits").mkdir(parents=True, exist_ok=True)
        (folder / "audits" / f"{source}.json").write_text(json.dumps(audit))
        cells.append(CellRef(source=source, label=source, train="t", test="t", evaluation=f"e/{source}.json",
                             negatives=f"negatives/{source}.jsonl", audit=f"audits/{source}.json"))  # fmt: skip
    PlanFile(name="live", base_model="m", baseline=None, metrics=[], evaluation={}, audit={}, notes=[],
             cells=cells).write(folder)  # fmt: skip
    return folder


def test_a_label_studio_project_round_trip(label_studio, tmp_path):
    base, password = label_studio
    runner = CliRunner()
    run, project = reviewed_run(tmp_path / "run"), tmp_path / "review"
    result = runner.invoke(app, ["review", "export", str(run), "--per-source", "3", "-o", str(project)])
    assert result.exit_code == 0, result.output
    key = json.loads((project / "key.json").read_text())

    owner = PersonalToken(personal_token(base, ADMIN, password, signup=False))
    with httpx.Client(base_url=base, auth=owner, timeout=60) as client:
        config = (project / "labeling_config.xml").read_text()
        created = client.post("/api/projects/", json={"title": "hardneg review", "label_config": config})
        assert created.status_code == 201, created.text  # Label Studio accepted the labeling config
        pid = created.json()["id"]
        with (project / "tasks.json").open("rb") as handle:
            imported = client.post(f"/api/projects/{pid}/import", files={"file": ("tasks.json", handle, "application/json")})
        assert imported.status_code == 201, imported.text
        assert imported.json()["task_count"] == len(key["items"]) == 6
        tasks = client.get("/api/tasks/", params={"project": pid, "page_size": 100}).json()["tasks"]
    task_of = {task["data"]["item"]: task["id"] for task in tasks}

    votes = {}  # item -> the three labels, in annotator order
    for source, rows in PLAN.items():
        items = sorted((v["triplet_index"], i) for i, v in key["items"].items() if v["source"] == source)
        for (_, item), (audit, labels) in zip(items, rows):
            assert key["items"][item]["audit_class"] == audit
            votes[item] = labels
    ids = []
    for number, email in enumerate(ANNOTATORS):
        token = PersonalToken(personal_token(base, email, secrets.token_urlsafe(16), signup=True))
        with httpx.Client(base_url=base, auth=token, timeout=60) as client:
            ids.append(client.get("/api/current-user/whoami").json()["id"])
            for item, labels in votes.items():
                value = {"choices": [labels[number]]}
                result = [{"from_name": "difficulty", "to_name": "negative", "type": "choices", "value": value}]
                posted = client.post(f"/api/tasks/{task_of[item]}/annotations/", json={"result": result})
                assert posted.status_code == 201, posted.text

    with httpx.Client(base_url=base, auth=owner, timeout=60) as client:
        exported = client.get(f"/api/projects/{pid}/export", params={"exportType": "JSON", "download_all_tasks": "true"})
    assert exported.status_code == 200, exported.text
    (project / "export.json").write_bytes(exported.content)
    assert len(set(ids)) == 3
    assert sorted({a["completed_by"] for t in exported.json() for a in t["annotations"]}) == sorted(ids)

    result = runner.invoke(app, ["review", "import", str(project / "export.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((project / "review.json").read_text())
    assert json.loads((run / "review.json").read_text()) == report  # a review of one run also lands in the run
    assert report["items"] == report["labelled_items"] == 6 and report["annotations"] == 18
    # Majorities: bm25 hard, hard, false negative; llm too easy, false negative, too easy.
    sources = report["sources"]
    shares = {s: {c: v["share"] for c, v in row["labels"].items() if v["count"]} for s, row in sources.items()}
    assert shares == {"bm25": {"hard": pytest.approx(2 / 3), "false negative": pytest.approx(1 / 3)},
                      "llm": {"too easy": pytest.approx(2 / 3), "false negative": pytest.approx(1 / 3)}}  # fmt: skip
    # Fleiss: P_i = 1, 1/3, 1, 1, 1/3, 1/3 -> 2/3; p_j = 6/18 too easy, 7/18 hard, 5/18 false negative
    # -> P_e = 110/324; kappa = (2/3 - 110/324) / (1 - 110/324) = 53/107.
    fleiss = {"kappa": pytest.approx(53 / 107), "items": 6, "annotators_per_item": 3, "left_out": 0}
    assert report["fleiss"] == fleiss
    audit = report["audit"]
    assert audit["items"] == 6
    assert {c: (row["items"], row["agree"]) for c, row in audit["per_class"].items()} == {
        "too easy": (1, 1), "hard": (2, 1), "false negative": (3, 2)}  # fmt: skip
    # Cohen: observed 4/6; chance (2*2 + 3*2 + 1*2) / 36 = 1/3 -> (2/3 - 1/3) / (2/3) = 1/2.
    assert audit["cohen_kappa"] == pytest.approx(0.5)
