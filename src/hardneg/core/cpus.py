"""The cores this process may use. ``os.cpu_count()`` counts the host's; a container, a Slurm or
Ray allocation, or ``taskset`` grant fewer (CPU affinity, a cgroup quota), and threads sized to the
host's count oversubscribe the ones we have."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cgroup_quota(root: Path = CGROUP) -> float | None:
    """Cores' worth of CPU time the cgroup allows (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None
    when it sets no limit or cannot be read."""
    try:
        if (root / "cpu.max").is_file():
            quota, _, period = (root / "cpu.max").read_text().strip().partition(" ")
            return None if quota == "max" else int(quota) / int(period or 100_000)
        v1 = root / "cpu" if (root / "cpu").is_dir() else root
        quota = int((v1 / "cpu.cfs_quota_us").read_text())
        return None if quota <= 0 else quota / int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def usable_cpus(root: Path = CGROUP) -> int:
    """The smaller of this process's CPU affinity and its cgroup's quota (rounded up), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = cgroup_quota(root)
    return max(1, min(count, math.ceil(quota)) if quota else count)
