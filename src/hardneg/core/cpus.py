"""The cores this process may use. ``os.cpu_count()`` counts the host's; a container, a Slurm or
Ray allocation, or ``taskset`` grant fewer (CPU affinity, a cgroup quota), and threads sized to the
host's count oversubscribe the ones we have."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def own_cgroup(proc: Path = Path("/proc/self/cgroup")) -> str:
    """This process's cgroup v2 path ('0::/PATH'), or '/' where there is none to read."""
    try:
        for line in proc.read_text().splitlines():
            hierarchy, _, path = line.split(":", 2)
            if hierarchy == "0":
                return path or "/"
    except (OSError, ValueError):
        pass
    return "/"


def _v2_quota(folder: Path) -> float | None:
    quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
    return None if quota == "max" else int(quota) / int(period or 100_000)


def cgroup_quota(root: Path = CGROUP, own: str | None = None) -> float | None:
    """Cores' worth of CPU time the cgroup allows, or None when it sets no limit or cannot be read.
    cgroup v2: the smallest ``cpu.max`` from this process's own cgroup (``own``, default read from
    /proc/self/cgroup; a host-namespace container, a Slurm job or a systemd slice keeps its limit
    there) up to the root. v1: ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``."""
    try:
        if (root / "cpu.max").is_file() or (root / "cgroup.controllers").is_file():
            top = root.resolve()
            path = (top / (own if own is not None else own_cgroup()).lstrip("/")).resolve()
            folders = [path, *path.parents] if path.is_relative_to(top) else [top]
            quotas = []
            for folder in folders:
                if folder.is_relative_to(top) and (folder / "cpu.max").is_file():
                    if (quota := _v2_quota(folder)) is not None:
                        quotas.append(quota)
            return min(quotas, default=None)
        v1 = root / "cpu" if (root / "cpu").is_dir() else root
        quota = int((v1 / "cpu.cfs_quota_us").read_text())
        return None if quota <= 0 else quota / int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def usable_cpus(root: Path = CGROUP, own: str | None = None) -> int:
    """The smaller of this process's CPU affinity and its cgroup's quota (rounded up), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = cgroup_quota(root, own)
    return max(1, min(count, math.ceil(quota)) if quota else count)
