"""Where a benchmark figure came from: the commit and the machine, printed in every BENCHMARKS.md section header.

Why: figures without the commit and CPU they were measured on cannot be compared or trusted later (the machines here
are not all the same CPU, and the code moves under the numbers).
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return f"{cpu_model()}, {os.cpu_count()} cores, {mem:.1f} GB RAM, Python {platform.python_version()}"


def commit() -> str:
    """The short commit hash, with `+changes` when the working tree differs from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown commit"
    return f"{rev}+changes" if dirty else rev


def provenance_line() -> str:
    """One line for a section header: commit, CPU model, cores, memory."""
    return f"Commit `{commit()}` · {machine()}"
