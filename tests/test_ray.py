"""`hardneg run --executor ray` on a local Ray cluster: the same results as the local executor,
stages side by side, a killed worker retried, resume across executors, and a run folder the
workers cannot see refused on one line."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from helpers import FakeLLM, grid_config, mini_head, write_config
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import HardnegError
from hardneg.experiment import run_experiment
from hardneg.settings.experiment import ExecutorSettings
from hardneg.stages.training import Train

ray = pytest.importorskip("ray")

RAY = ExecutorSettings(name="ray", max_retries=2)


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module (starting one takes seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _table(run_dir: Path) -> dict[str, float]:
    results = json.loads((run_dir / "results.json").read_text())
    return {row["source"]: row["cells"]["mini"]["metrics"]["ndcg@10"]["value"] for row in results["rows"]}


def _ancestors(stages) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for stage in stages:
        found[stage.key] = set(stage.deps).union(*(found[d] for d in stage.deps))
    return found


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_gives_the_local_results_and_runs_independent_stages_side_by_side(
    cluster, tmp_path, tiny_model_path, tiny_cross_encoder_path
):
    with FakeLLM() as server:
        config = grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path)
        local = run_experiment(config, tmp_path / "local", show_progress=False)
        cache = tmp_path / "ray-cache"  # the module's Ray started before this test set its own cache
        os.environ["HARDNEG_CACHE"] = str(cache)  # (conftest restores it after the test)
        remote = run_experiment(config, tmp_path / "ray", show_progress=False, executor=RAY)
    assert any((cache / "bm25-store").iterdir()), "the Ray workers did not use this test's cache"
    assert len(remote.ran) == len(remote.plan.stages)
    for stage in remote.plan.stages:
        if stage.kind == "mine":
            assert (tmp_path / "ray" / stage.output).read_bytes() == (
                tmp_path / "local" / stage.output
            ).read_bytes()
    ours, theirs = _table(tmp_path / "local"), _table(tmp_path / "ray")
    assert ours.keys() == theirs.keys()
    for source in ours:  # training on another thread count moves the floats, barely
        assert abs(ours[source] - theirs[source]) <= 0.002, source
    assert all(record["worker"].split(":")[1] != str(os.getpid()) for record in remote.records.values())
    ancestors = _ancestors(remote.plan.stages)
    spans = {key: (r["started"], r["finished"]) for key, r in remote.records.items()}
    overlapping = [
        (a, b) for a in spans for b in spans
        if a < b and a not in ancestors[b] and b not in ancestors[a]
        and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
    ]  # fmt: skip
    assert overlapping, "no two independent stages ran at the same time"
    assert local.plan.stages == remote.plan.stages  # the same keys, whoever runs them


def small_config(tmp_path: Path, server: FakeLLM, model: Path) -> Path:
    return write_config(
        tmp_path,
        mini_head(tmp_path, "small", model)
        + f"""
[evaluation]
top_k = 10
bootstrap_resamples = 100
[audit]
enabled = false
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
[sources.llm]
generate = {{ model = "fake-model", base_url = "{server.url}", num_negatives = 2, concurrency = 1, backoff = 0.01 }}
""",
    )


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_a_worker_killed_mid_stage_is_retried_and_the_run_completes(cluster, tmp_path, tiny_model_path):
    run_dir = tmp_path / "run"
    killed: list[int] = []

    def kill_the_generating_worker() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for path in (run_dir / "progress").glob("*.json"):
                try:
                    record = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if record["stage"].startswith("generate") and record["state"] == "running":
                    time.sleep(0.5)  # mid-stage: some answers stored, others not yet asked
                    os.kill(record["pid"], signal.SIGKILL)
                    killed.append(record["pid"])
                    return
            time.sleep(0.05)

    with FakeLLM(delay=0.4) as server:
        config = small_config(tmp_path, server, tiny_model_path)
        killer = threading.Thread(target=kill_the_generating_worker)
        killer.start()
        summary = run_experiment(config, run_dir, show_progress=False, executor=RAY)
        killer.join()
    assert killed, "the generate stage was never seen running"
    generate = next(s for s in summary.plan.stages if s.kind == "generate")
    record = summary.records[generate.key]
    assert record["attempt"] == 2 and record["pid"] != killed[0]
    assert (run_dir / "results.md").exists() and len(summary.ran) == len(summary.plan.stages)


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_a_run_started_locally_finishes_under_ray_reusing_every_finished_stage(
    cluster, tmp_path, tiny_model_path, monkeypatch
):
    trained = []
    real = Train.run

    def stop_after_one(self, call):
        if trained:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C
        real(self, call)
        trained.append(call.label)

    with FakeLLM() as server:
        config = small_config(tmp_path, server, tiny_model_path)
        monkeypatch.setattr(Train, "run", stop_after_one)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(config, tmp_path / "run", show_progress=False)
        monkeypatch.setattr(Train, "run", real)
        finished = {p.name for p in (tmp_path / "run" / "stages").rglob("*.manifest.json")}
        summary = run_experiment(config, tmp_path / "run", show_progress=False, executor=RAY)
    reused = {Path(s.output).name + ".manifest.json" for s in summary.reused}
    assert finished and finished <= reused
    assert ray.is_initialized()  # the caller's Ray instance (the module's) is left running
    assert {s.kind for s in summary.ran} == {"train", "evaluate"}  # the interrupted model and what needs it
    assert len(summary.ran) + len(summary.reused) == len(summary.plan.stages)


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_a_run_folder_the_workers_cannot_see_is_refused_on_one_line(cluster, tmp_path, tiny_model_path):
    with FakeLLM() as server:
        config = small_config(tmp_path, server, tiny_model_path)
        elsewhere = ExecutorSettings(name="ray", worker_run_dir=str(tmp_path / "not-the-run-folder"))
        (tmp_path / "not-the-run-folder").mkdir()
        with pytest.raises(HardnegError, match="does not see it"):
            run_experiment(config, tmp_path / "run", show_progress=False, executor=elsewhere)
        result = CliRunner().invoke(app, ["run", str(config), "-o", str(tmp_path / "run"), "--executor", "ray",
                                          "--worker-run-dir", "/proc/no-such-folder"])  # fmt: skip
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert (
        message.startswith("error: run folder /proc/no-such-folder: a Ray worker on")
        and "cannot write there" in message
    )
    assert not list((tmp_path / "run" / "stages").rglob("*.jsonl"))  # nothing ran


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_a_stage_failing_on_a_worker_leaves_the_others_running(cluster, tmp_path, tiny_model_path):
    """An LLM that writes nothing usable leaves its model with no training data: a DataError raised
    in a worker, which must come back as that stage's one-line failure, not end the run."""
    with FakeLLM(answer=lambda body: "no passages here") as server:
        config = small_config(tmp_path, server, tiny_model_path)
        with pytest.raises(
            HardnegError,
            match=r"did not finish .* first: train mini-llm: .*jsonl: none of its \d+ triplets has a negative left",
        ):
            run_experiment(config, tmp_path / "run", show_progress=False, executor=RAY)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [row["source"] for row in results["rows"]] == ["base", "bm25"]
    failed = [json.loads(p.read_text()) for p in (tmp_path / "run" / "progress").glob("*.json")]
    assert [r["stage"] for r in failed if r["state"] == "failed"] == ["train mini-llm"]


def test_under_ray_a_task_sees_only_the_gpus_it_was_given():
    from hardneg.experiment.ray_executor import visible_devices

    config = {"device": "cuda:3", "dense": {"device": "cuda:1", "devices": ["cuda:2", "cuda:5"]}, "seed": 0}
    assert visible_devices(config) == {"device": "cuda:0", "dense": {"device": "cuda:0", "devices": ["cuda:0", "cuda:1"]},
                                       "seed": 0}  # fmt: skip
