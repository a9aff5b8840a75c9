"""docs/results.md's figures come from results.json: marked blocks filled by scripts/results_doc.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_report_effects import fake_run

from hardneg.core.errors import HardnegError
from hardneg.reporting.docs import fill, replace_block, stale_figures
from hardneg.reporting.report import write_report

ROOT = Path(__file__).resolve().parents[1]
DOC = """# A study

Prose the script never touches.

<!-- results:table-ndcg@10:start -->
stale
<!-- results:table-ndcg@10:end -->

More prose.

<!-- results:effects:start -->
<!-- results:effects:end -->
"""


def test_a_document_s_blocks_are_filled_from_results_json_and_the_rest_kept(tmp_path):
    results = write_report(fake_run(tmp_path / "run")).results
    doc = tmp_path / "results.md"
    doc.write_text(DOC)
    assert fill(results, doc) == ["table-ndcg@10", "effects"]
    text = doc.read_text()
    assert "stale" not in text and "Prose the script never touches." in text and "More prose." in text
    assert "| pool gist | **0.7000 [0.694, 0.706]** | 0.4000" in text  # the report's own row
    assert (
        "| loss | pool | pool gist | train loss: mnrl -> cached-gist | +0.0800 [+0.080, +0.080] (p " in text
    )
    once = text
    fill(results, doc)
    assert doc.read_text() == once  # filling again changes nothing


def test_an_unknown_block_is_one_line_naming_the_file_and_line(tmp_path):
    results = write_report(fake_run(tmp_path / "run")).results
    doc = tmp_path / "results.md"
    doc.write_text(DOC + "\n<!-- results:table-map@5:start -->\n<!-- results:table-map@5:end -->\n")
    with pytest.raises(HardnegError, match=rf"{doc}:14: no block 'table-map@5' in these results \(blocks: "):
        fill(results, doc)
    assert doc.read_text().count("stale") == 1  # nothing written


def test_results_of_an_older_hardneg_say_to_rebuild_them(tmp_path):
    results = write_report(fake_run(tmp_path / "run")).results
    doc = tmp_path / "results.md"
    doc.write_text(DOC)
    older = {k: v for k, v in results.items() if k not in ("effects", "column_datasets")}
    with pytest.raises(
        HardnegError, match=r"results.md:11: results.json has no 'effects' .*hardneg report RUN"
    ):
        fill(older, doc)


def test_a_marker_quoted_in_the_prose_is_not_a_block(tmp_path):
    results = write_report(fake_run(tmp_path / "run")).results
    doc = tmp_path / "results.md"
    doc.write_text("Write `<!-- results:effects:start -->` where it goes.\n\n" + DOC)
    assert fill(results, doc) == ["table-ndcg@10", "effects"]
    assert doc.read_text().startswith("Write `<!-- results:effects:start -->` where it goes.\n\n# A study")


def test_a_marker_that_opens_a_line_but_is_not_a_block_is_an_error(tmp_path):
    results = write_report(fake_run(tmp_path / "run")).results
    doc = tmp_path / "results.md"
    doc.write_text(DOC.replace("<!-- results:effects:start -->", "<!-- results:effects:start --> "))
    with pytest.raises(HardnegError, match=r"results.md:11: block 'effects' is not filled: its start marker"):
        fill(results, doc)
    indented = DOC.replace("<!-- results:effects:start -->", "  <!-- results:effects:start -->")
    doc.write_text(indented.replace("<!-- results:effects:end -->", "  <!-- results:effects:end -->"))
    assert fill(results, doc) == ["table-ndcg@10", "effects"]  # a block in a list item is a block
    doc.write_text(indented.replace("  <!-- results:effects:start -->", "  <!-- results:effects:start --> "))
    with pytest.raises(HardnegError, match=r"results.md:11: block 'effects' is not filled"):
        fill(results, doc)


def test_the_script_fills_a_document_from_a_results_file(tmp_path):
    results = write_report(fake_run(tmp_path / "run")).results
    (tmp_path / "study.json").write_text(json.dumps(results))
    doc = tmp_path / "results.md"
    doc.write_text(DOC)
    script = [
        sys.executable,
        str(ROOT / "scripts" / "results_doc.py"),
        str(tmp_path / "study.json"),
        str(doc),
    ]
    done = subprocess.run(script, capture_output=True, text=True)
    assert done.returncode == 0 and "filled table-ndcg@10, effects" in done.stdout
    bad = subprocess.run(
        [*script[:2], str(tmp_path / "missing.json"), str(doc)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def test_a_benchmark_section_is_appended_once_then_replaced():
    text = replace_block("# Benchmarks\n", "bench", "x", "one", append=True)
    assert (
        replace_block(text, "bench", "x", "two", append=True)
        == "# Benchmarks\n\n<!-- bench:x:start -->\ntwo\n<!-- bench:x:end -->\n"
    )
    assert replace_block("# t\n", "results", "y", "z") == "# t\n"  # fill never invents a block


def test_the_costs_block_renders_what_results_json_keeps(tmp_path):
    results = write_report(fake_run(tmp_path / "run")).results
    results["costs"] = {
        "train": {
            "stages": 2,
            "seconds": 120.0,
            "estimated_seconds": 180.0,
            "interrupted": 1,
            "lost_seconds": 30.0,
        },
        "evaluate": {
            "stages": 4,
            "seconds": 6000.0,
            "estimated_seconds": 600.0,
            "interrupted": 0,
            "lost_seconds": 0.0,
        },
    }
    doc = tmp_path / "results.md"
    doc.write_text("# Cost\n\n<!-- results:costs:start -->\n<!-- results:costs:end -->\n")
    assert fill(results, doc) == ["costs"]
    text = doc.read_text()
    assert text.startswith("# Cost\n\n<!-- results:costs:start -->\nWall time of the attempt")
    assert "| train (bi-encoder training) | 2 | 2.0 min | 3.0 min | 1 | 0.5 min |" in text
    assert "| total | 6 | 1.70 h | 13.0 min | 1 | 0.5 min |" in text
    results["costs"] = {}
    fill(results, doc)
    assert "<!-- results:costs:start -->\n(no stage has finished yet)\n" in doc.read_text()


@pytest.mark.parametrize("page", ["results.md", "training.md"])
def test_the_committed_pages_match_the_committed_results(tmp_path, page):
    """docs/results.md says its tables are filled from docs/results/study.json: refilling changes
    nothing, or the page (or the renderer) moved on without the other."""
    results = json.loads((ROOT / "docs" / "results" / "study.json").read_text())
    doc = tmp_path / page
    doc.write_text((ROOT / "docs" / page).read_text())
    assert fill(results, doc), "no block to fill"
    assert doc.read_text() == (ROOT / "docs" / page).read_text(), (
        f"docs/{page} is stale: python scripts/results_doc.py docs/results/study.json docs/{page}"
    )


@pytest.mark.parametrize("page", ["results.md", "generation.md"])
def test_the_committed_pages_quote_no_figure_their_runs_do_not_hold(page):
    """Every four-decimal figure in the prose of the pages that quote the study is a value (or a gap
    between two rows) of the committed study or of the first study: a refill that moves a row shows
    up here."""
    runs = [
        json.loads((ROOT / "docs" / "results" / name).read_text()) for name in ("study.json", "study-1.json")
    ]
    assert stale_figures(ROOT / "docs" / page, runs) == []


def test_the_check_lists_the_prose_figures_no_results_hold(tmp_path):
    results = write_report(fake_run(tmp_path / "run")).results
    (tmp_path / "study.json").write_text(json.dumps(results))
    values = sorted(row["cells"]["a"]["metrics"]["ndcg@10"]["value"] for row in results["rows"])
    doc = tmp_path / "results.md"
    doc.write_text(
        DOC.replace("stale\n", "0.9999 inside a results block is the script's own\n")
        + f"\nBest {values[-1]:.4f}, {values[-1] - values[0]:.4f} above the worst (-{values[-1] - values[0]:.4f}"
        + " the other way); once 0.1234.\n"
        + "<!-- bench:x:start -->\n0.8888 in another kind of block is prose\n<!-- bench:x:end -->\n"
        + "> A note of another run: 0.4321.\n"
    )

    def expected() -> list[str]:
        lines = doc.read_text().split("\n")
        at = {
            figure: n for n, line in enumerate(lines, 1) for figure in ("0.1234", "0.8888") if figure in line
        }
        return [f"{doc}:{at['0.1234']}: 0.1234", f"{doc}:{at['0.8888']}: 0.8888"]

    assert stale_figures(doc, [results]) == expected()  # before a fill: 0.9999 is passed over, in a block
    script = [
        sys.executable,
        str(ROOT / "scripts" / "results_doc.py"),
        str(tmp_path / "study.json"),
        str(doc),
    ]
    done = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{line} is in none of these results (prose from another run?)" for line in expected()
    ]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rows": [], "effects": {"x": [0.12341]}}))
    implied = subprocess.run(
        [*script, "--also", str(other)], capture_output=True, text=True
    )  # implies --check
    assert implied.returncode == 1 and implied.stderr.startswith(expected()[1])
    other.write_text(json.dumps({"rows": [], "effects": {"x": [0.12341, -0.88881]}}))  # (a sign is prose's)
    assert subprocess.run([*script, "--also", str(other)], capture_output=True).returncode == 0
