"""How many CPUs this process may use: what thread pools, worker processes and ONNX Runtime size
themselves by (taskset and cgroup cpusets count, not the machine's total)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
