"""scripts/study.sh, which runs the study of docs/results.md over several sittings: it runs a
snapshot of the checkout, one run per folder at a time, and stops on `stop` or a Ctrl-C without
leaving its `hardneg run` behind. A fake `hardneg` stands in for the study."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "study.sh"

FAKE = """#!/usr/bin/env bash
if [[ " $* " == *" --dry-run "* ]]; then
  printf 'the plan, stage by stage\\nphases, in order\\n| swaps | 6 | in-domain | 39 | 2.7 h |\\n'
  exit 0
fi
child=""
trap 'kill $child 2>/dev/null; echo terminated >> "{calls}"; exit 143' TERM  # before it says it runs
echo "$PYTHONPATH" > "{calls}.env"
echo "$@" >> "{calls}"
sleep 60 &
child=$!
wait
"""


def _wait_for(path: Path, seconds: float = 20.0) -> None:
    end = time.time() + seconds
    while not path.exists():
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture
def fake_study(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "hardneg"
    fake.write_text(FAKE.format(calls=calls))
    fake.chmod(0o755)
    env = {**os.environ, "HARDNEG_BIN": str(fake)}
    return tmp_path / "runs" / "study", calls, env


def study(action: str, run_dir: Path, env: dict, **kwargs):
    return subprocess.run(
        [str(SCRIPT), action, str(run_dir)], env=env, capture_output=True, text=True, timeout=60, **kwargs
    )


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the checkout's git history")
def test_the_study_script_runs_a_snapshot_once_per_folder_and_stops(fake_study):
    run_dir, calls, env = fake_study
    running = subprocess.Popen([str(SCRIPT), "run", f"{run_dir}/"], env=env)  # a trailing / too
    try:
        _wait_for(calls)
        _wait_for(Path(f"{run_dir}.pid"))
        code = Path(f"{run_dir}.code")
        assert calls.read_text().split() == [
            "run",
            f"{code}/src/hardneg/configs/study.toml",
            "-o",
            str(run_dir),
            "-q",
        ]
        assert Path(f"{calls}.env").read_text().strip() == f"{code}/src"
        assert (code / "src" / "hardneg" / "experiment" / "phases.py").exists()  # HEAD's code

        second = study("run", run_dir, env)
        assert second.returncode == 2 and "is already running" in second.stderr

        stopped = study("stop", run_dir, env)
        assert stopped.returncode == 0, stopped.stderr
        assert running.wait(timeout=30) == 143  # the run's own status
    finally:
        running.kill()
    assert calls.read_text().splitlines()[-1] == "terminated"
    assert not Path(f"{run_dir}.pid").exists()
    assert Path(f"{run_dir}.log").read_text().splitlines()[-1].endswith("exit 143")
    again = study("stop", run_dir, env)
    assert again.returncode == 2 and "no study running" in again.stderr


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the checkout's git history")
def test_a_ctrl_c_to_the_study_script_stops_its_run_too(fake_study):
    run_dir, calls, env = fake_study
    # As from a terminal: a runner started in the background (nohup, &) passes SIGINT on ignored,
    # and a signal ignored on entry cannot be trapped by the script.
    terminal = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    running = subprocess.Popen([str(SCRIPT), "run", str(run_dir)], env=env, preexec_fn=terminal)
    try:
        _wait_for(Path(f"{run_dir}.pid"))
        _wait_for(calls)
        running.send_signal(signal.SIGINT)
        assert running.wait(timeout=30) == 143
    finally:
        running.kill()
    assert calls.read_text().splitlines()[-1] == "terminated"


def test_the_study_script_names_its_actions(tmp_path):
    wrong = subprocess.run([str(SCRIPT), "bogus"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 2 and "usage: scripts/study.sh run|stop|status|report" in wrong.stderr


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the checkout's git history")
def test_the_status_says_whether_it_runs_where_it_is_and_what_is_left(fake_study):
    run_dir, calls, env = fake_study
    run_dir.parent.mkdir(parents=True)
    Path(f"{run_dir}.log").write_text(
        "2026-12-07T19:57:52+00:00 start at 9e5da70\n2/5 phase swaps: 44 of 54 stages to run\n"
        "[11/54] audit scifact-llm-swap query: done in 84 s\n[12/54] train scifact-llm-swap filtered: running\n"
    )
    idle = study("status", run_dir, env)
    assert idle.returncode == 0, idle.stderr
    assert idle.stdout.splitlines() == [
        "not running; `scripts/study.sh run` resumes it",
        "2026-12-07T19:57:52+00:00 start at 9e5da70",
        "2/5 phase swaps: 44 of 54 stages to run",
        "[12/54] train scifact-llm-swap filtered: running",
        "phases, in order",
        "| swaps | 6 | in-domain | 39 | 2.7 h |",
    ]
    running = subprocess.Popen([str(SCRIPT), "run", str(run_dir)], env=env)
    try:
        _wait_for(calls)
        busy = study("status", run_dir, env)
        assert busy.stdout.startswith(f"running (pid {Path(f'{run_dir}.pid').read_text().strip()})")
        assert "start at" in busy.stdout.splitlines()[1]  # this run's own start line
    finally:
        study("stop", run_dir, env)
        running.wait(timeout=30)
