"""Chaos: `hardneg run` killed with SIGKILL at seeded random moments and rerun until it finishes
makes what one uninterrupted run makes (scripts/chaos.py runs the same for longer)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FakeLLM

from hardneg.core.manifest import committed
from hardneg.experiment.planfile import PlanFile
from hardneg.stages import KINDS

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos.py"


def _chaos():
    spec = importlib.util.spec_from_file_location("chaos_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _clean_run(tmp_path: Path, model: Path, server: FakeLLM):
    """The chaos module, the grid, its environment (a cache of this test's), and one clean run."""
    chaos = _chaos()
    env = {**os.environ, "HARDNEG_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    config = chaos.grid(tmp_path, str(model), server.url)
    clean = chaos.run_once(config, tmp_path / "clean", env)
    assert clean.returncode == 0, clean.stderr[-2000:]
    return chaos, config, env


@pytest.mark.slow
def test_a_grid_killed_at_random_moments_ends_as_one_uninterrupted_run(tmp_path, tiny_model_path):
    with FakeLLM(delay=0.3) as server:
        chaos, config, env = _clean_run(tmp_path, tiny_model_path, server)
        report = chaos.chaos(config, tmp_path / "chaos", env, kills=14, seed=3)
    kills = "; ".join(kill["stage"] for kill in report.kills)
    assert len(report.kills) >= 10, kills
    assert {"generate", "train", "evaluate", "audit"} <= report.kinds, kills  # combine may end in ms
    assert report.redone >= 10  # each kill left an interrupted attempt, counted as lost work
    for kind in ("pairs", "negatives"):  # every pairs and negatives file byte-identical
        clean_files, chaos_files = (
            chaos.outputs(tmp_path / "clean", kind),
            chaos.outputs(tmp_path / "chaos", kind),
        )
        assert clean_files and clean_files == chaos_files, kind
    assert chaos.table(tmp_path / "chaos") == chaos.table(tmp_path / "clean")


@pytest.mark.slow
def test_a_full_disk_fails_in_one_line_keeps_nothing_half_written_and_the_run_resumes(
    tmp_path, tiny_model_path
):
    chaos = _chaos()
    run_dir = tmp_path / "disk"
    run_dir.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(run_dir)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    env = {**os.environ, "HARDNEG_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    try:
        with FakeLLM() as server:
            config = chaos.grid(tmp_path, str(tiny_model_path), server.url)
            full = chaos.run_once(config, run_dir, env)
            lines = full.stderr.strip().splitlines()
            assert full.returncode == 2 and "no space left (errno 28)" in lines[-1], full.stderr[-3000:]
            assert "Traceback" not in full.stderr
            plan = PlanFile.read(run_dir)
            done = {
                s.key
                for s in plan.stages
                if committed(run_dir / s.output, KINDS[s.kind].done_marker(run_dir / s.output))
            }
            assert done and len(done) < len(plan.stages)  # what fitted is done; the rest is not trusted
            subprocess.run(["mount", "-o", "remount,size=400m", str(run_dir)], check=True)
            again = chaos.run_once(config, run_dir, env)
            assert again.returncode == 0, again.stderr[-3000:]
            clean = chaos.run_once(config, tmp_path / "clean", env)
            assert clean.returncode == 0
        assert chaos.outputs(run_dir, "negatives") == chaos.outputs(tmp_path / "clean", "negatives")
        assert chaos.table(run_dir) == chaos.table(tmp_path / "clean")
    finally:
        subprocess.run(["umount", str(run_dir)], capture_output=True)


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_workers_killed_mid_stage_are_retried_and_make_what_one_run_makes(tmp_path, tiny_model_path):
    pytest.importorskip("ray")
    with FakeLLM(delay=0.3) as server:
        chaos, config, env = _clean_run(tmp_path, tiny_model_path, server)
        report = chaos.chaos(config, tmp_path / "ray", env, kills=3, seed=5, executor="ray")
    assert len(report.kills) == 3 and report.runs == 1  # Ray retried each killed task within the run
    assert report.redone >= 3
    for kind in ("pairs", "negatives"):
        assert chaos.outputs(tmp_path / "ray", kind) == chaos.outputs(tmp_path / "clean", kind), kind
    ours, theirs = chaos.table(tmp_path / "clean"), chaos.table(tmp_path / "ray")
    assert ours.keys() == theirs.keys()
    for cell in ours:  # training on another thread count moves the floats, barely (test_ray.py)
        assert abs(ours[cell] - theirs[cell]) <= 0.002, cell
