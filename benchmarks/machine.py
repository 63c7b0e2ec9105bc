"""Facts about this machine and process that every benchmark records beside its figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def peak_rss_mib() -> float | None:
    """This process's peak resident memory (VmHWM) in MiB, where /proc has it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def machine() -> dict:
    """CPU model, cores and the 1-minute load average now (a quiet 2-core machine reads below ~0.5)."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}
