"""The machine a figure was measured on: what run configs, export reports and
benchmark reports record beside it."""

import datetime
import functools
import os
import platform
from pathlib import Path


@functools.cache
def cpuinfo() -> dict:
    """The first processor's fields in ``/proc/cpuinfo`` (empty elsewhere)."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_name() -> str:
    return cpuinfo().get("model name") or platform.processor() or platform.machine()


def measured_here() -> dict:
    """Date, this host's CPU, cores and platform, and the stack's versions."""
    from bnnzoo.runs import package_versions

    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "host_cpu": cpu_name(),
            "host_cores": os.cpu_count(), "platform": platform.platform(),
            "versions": package_versions()}
