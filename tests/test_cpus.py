"""The cores a process may use: its affinity and its cgroup's quota, not the host's count."""

from __future__ import annotations

import math
import os
from pathlib import Path

from hardneg.core.cpus import cgroup_quota, usable_cpus


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cgroup_v2_quota_caps_the_count(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert cgroup_quota(_write(tmp_path / "a", {"cpu.max": "150000 100000\n"})) == 1.5
    assert usable_cpus(tmp_path / "a") == 2  # 1.5 cores' worth: two threads, not sixteen
    assert cgroup_quota(_write(tmp_path / "b", {"cpu.max": "max 100000\n"})) is None
    assert usable_cpus(tmp_path / "b") == 16


def test_a_cgroup_v2_limit_is_read_from_the_process_s_own_cgroup_up_to_the_root(tmp_path, monkeypatch):
    """A Slurm job or a systemd slice keeps its limit in its own cgroup, not at the root."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    root = _write(tmp_path / "v2", {"cgroup.controllers": "cpu", "cpu.max": "max 100000\n",
                                    "slice/cpu.max": "400000 100000\n",
                                    "slice/job/cpu.max": "max 100000\n"})  # fmt: skip
    assert cgroup_quota(root, "/slice/job") == 4 and usable_cpus(root, "/slice/job") == 4
    assert cgroup_quota(root, "/") is None and usable_cpus(root, "/elsewhere") == 16
    (root / "slice" / "job" / "cpu.max").write_text("250000 100000\n")  # the tighter of the two
    assert usable_cpus(root, "/slice/job") == 3


def test_a_cgroup_v1_quota_and_no_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    v1 = _write(tmp_path / "v1", {"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"})
    assert cgroup_quota(v1) == 3 and usable_cpus(v1) == 3
    unlimited = _write(tmp_path / "u", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    assert cgroup_quota(unlimited) is None and usable_cpus(unlimited) == 8


def test_affinity_caps_the_count_and_unreadable_files_mean_no_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert usable_cpus(_write(tmp_path / "q", {"cpu.max": "800000 100000\n"})) == 2
    assert cgroup_quota(_write(tmp_path / "bad", {"cpu.max": "garbage\n"})) is None
    assert cgroup_quota(tmp_path / "missing") is None and usable_cpus(tmp_path / "missing") == 2


def test_this_machine(tmp_path):
    here = usable_cpus()
    assert 1 <= here <= (os.cpu_count() or 1)
    quota = cgroup_quota()
    assert quota is None or here <= math.ceil(quota)
