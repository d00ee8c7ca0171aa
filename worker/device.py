"""What memory a worker offers a job, published with its heartbeat so that
the API routes jobs by size (jobs/routing.py). Read in the worker's main
process, which never imports a framework: ``nvidia-smi`` for a GPU, the
host's (or its cgroup's) memory otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from jobs import settings

#: cgroup v2's memory limit of this process's group ("max": none).
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def gpu_memory_bytes() -> int | None:
    """The memory of the first GPU that ``nvidia-smi`` lists, None without
    one (no driver, no device, or it does not answer within 10 s)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        return int(out.split()[0]) * 1024 * 1024  # MiB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def host_memory_bytes() -> int:
    """The host's physical memory, or its cgroup's limit where lower."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = CGROUP_MEMORY_MAX.read_text().strip()
    except OSError:
        return memory
    return min(memory, int(limit)) if limit.isdigit() else memory


def device() -> dict[str, object]:
    """``{"device": "gpu"|"cpu", "memory_bytes": n}`` of this worker:
    ``SEQLAB_DEVICE_MEMORY_BYTES`` where set, else what the GPU or the host has.
    """
    gpu = gpu_memory_bytes()
    memory = settings.device_memory_bytes() or gpu or host_memory_bytes()
    return {"device": "gpu" if gpu else "cpu", "memory_bytes": memory}
