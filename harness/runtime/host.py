"""What a run records about the machine it ran on: the tool's version, the host, how
answers were isolated, and the machine settings (``harness.runtime.machine``)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from harness.runtime import machine, sandbox


def tool_version() -> str:
    try:
        return metadata.version("exam-sweep")
    except metadata.PackageNotFoundError:
        return "0.1.0+source"


def host_info() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "isolation": sandbox.current().to_json(),
        "machine_settings": machine.read().to_json(),   # SWEEP_GO, SWEEP_CACHE_DIR, ... (harness.runtime.machine)
    }
