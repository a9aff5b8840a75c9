"""Output in a pipe or a CI log: Markdown tables, long names whole on one line; a terminal keeps rich ones."""

from __future__ import annotations

import io
import re
from pathlib import Path

from helpers import write_mining_beir
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.experiment import load_experiment, plan_experiment
from hardneg.experiment.runner import print_plan
from hardneg.core.output import PipeConsole, markdown_table, print_table

runner = CliRunner()

BASE = "sentence-transformers/msmarco-distilbert-base-tas-b"
CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
LLM = "meta-llama/Meta-Llama-3-8B-Instruct"
LONG_NAMES = (BASE, CROSS_ENCODER, LLM)


def long_names_config(tmp_path: Path) -> Path:
    write_mining_beir(tmp_path / "mini")
    path = tmp_path / "long.toml"
    path.write_text(f"""
name = "long-names"
base_model = "{BASE}"
data_root = "{tmp_path}"
[[datasets]]
train = "mini"
[pairs]
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
[sources.ce]
mine = {{ method = "cross-encoder", model = "{CROSS_ENCODER}", num_negatives = 2 }}
[sources.llm]
generate = {{ model = "{LLM}", base_url = "http://127.0.0.1:9/v1", num_negatives = 2 }}
""")
    return path


def markdown_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.split("|")[1:-1]]


def test_a_piped_dry_run_prints_markdown_tables_with_whole_names(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # what a pipe or a CI log gets: rich's 80 columns
    config = long_names_config(tmp_path)
    result = runner.invoke(app, ["run", str(config), "--dry-run", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = markdown_rows(result.output)
    assert cells(rows[0]) == ["#", "stage", "model", "asks", "status", "work", "rough time"]
    assert set(rows[1]) <= set("|-:")  # the header rule
    assert not any(ch in result.output for ch in "┏━┃│└")  # no box drawing
    for name in LONG_NAMES:
        assert any(name in row for row in rows), name  # whole, in a row of a table
    assert any(line.startswith("| generator") for line in lines)  # the LLM cost table, as Markdown too
    assert any(line.startswith("| stage ") and "planned" in line for line in lines)  # "by kind"
    assert "by kind" in lines and any(line.startswith("plan: long-names -> ") for line in lines)
    critical = next(line for line in lines if line.startswith("critical path"))
    assert re.fullmatch(r"critical path \(the least wall time .* stage\): [\d.]+ (s|min|h)", critical)
    total = next(line for line in lines if "stages to run; rough total on this machine" in line)
    assert re.fullmatch(r"14 of 14 stages to run; .*: data not local, or a remote server\)", total)  # 1 line
    assert not (tmp_path / "run").exists()


def test_the_plan_through_the_python_api_on_a_file_is_markdown(tmp_path):
    plan = plan_experiment(load_experiment(long_names_config(tmp_path)), tmp_path / "run")
    out = io.StringIO()
    print_plan(plan, Console(file=out, width=80))  # a plain Console writing to a file
    text = out.getvalue()
    assert all(any(name in row for row in markdown_rows(text)) for name in LONG_NAMES)
    line = next(line for line in text.splitlines() if "stages to run; rough total" in line)
    assert len(line) > 80 and line.endswith(("s", "min", "h", ")"))


def test_a_terminal_still_gets_the_rich_table(tmp_path):
    plan = plan_experiment(load_experiment(long_names_config(tmp_path)), tmp_path / "run")
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=80, color_system=None)
    print_plan(plan, terminal)
    text = out.getvalue()
    assert "┏" in text and "┃ #" in text and not markdown_rows(text)
    assert all(len(line) <= 80 for line in text.splitlines())  # wrapped to the terminal, as before
    assert BASE not in text  # folded over lines in its column, as before
    assert PipeConsole(force_terminal=True).soft_wrap is False


def test_markdown_table_escapes_pipes_aligns_and_keeps_titles():
    table = Table("name", "score", title="results", caption="2 rows")
    table.columns[1].justify = "right"
    table.add_row("a|b", "0.5")
    table.add_row("multi\nline", "10.25")
    text = markdown_table(table)
    assert text.splitlines() == [
        "results",
        "",
        "| name       | score |",
        "|------------|------:|",
        "| a\\|b       |   0.5 |",
        "| multi line | 10.25 |",
        "",
        "2 rows",
    ]
    out = io.StringIO()
    print_table(Console(file=out), table)
    assert out.getvalue() == text + "\n"
