"""The code is the formatter's: `ruff format` leaves src/, benchmarks/ and scripts/ as they are, no
line is over the configured 110 characters, nothing is packed with `fmt: skip`, imports are sorted
and every name is defined."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ["src", "benchmarks", "scripts"]


def _ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (the dev extra has it)")
    return [found]


def test_ruff_format_leaves_the_code_as_it_is():
    result = subprocess.run([*_ruff(), "format", "--check", *TREES], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_are_sorted_and_every_name_is_defined():
    result = subprocess.run([*_ruff(), "check", "--select", "I,F", *TREES], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_line_over_110_and_no_fmt_skip():
    long, skipped = [], []
    for tree in TREES:
        for path in (ROOT / tree).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                where = f"{path.relative_to(ROOT)}:{number}"
                if len(line) > 110:
                    long.append(where)
                if "fmt: skip" in line or "fmt: off" in line:
                    skipped.append(where)
    assert not long and not skipped, (long[:10], skipped[:10])
