"""Every process, by id: ``processes()`` and ``get_process(id)``.

A process is defined next to its analysis, as ``PROCESSES`` (a tuple of :class:`Process`) in a module
of :mod:`cim.analysis`; the modules are listed here, imported on first use."""

from __future__ import annotations

import importlib
from functools import cache

from cim.processes.process import PROCESS_IDS, NoSuchProcess, Process

#: modules that define processes (each has ``PROCESSES``)
MODULES = (
    "cim.analysis.housing",
    "cim.analysis.planning",
    "cim.analysis.history",
    "cim.analysis.statistics",
    "cim.analysis.measure",
)


@cache
def processes() -> dict[str, Process]:
    """All processes by id, in the order of PROCESS_IDS (then any others by id)."""
    found: dict[str, Process] = {}
    for name in MODULES:
        for process in importlib.import_module(name).PROCESSES:
            if process.id in found:
                raise RuntimeError(f"process {process.id!r} defined twice ({name})")
            found[process.id] = process
    order = {pid: i for i, pid in enumerate(PROCESS_IDS)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def get_process(process_id: str) -> Process:
    try:
        return processes()[process_id]
    except KeyError:
        known = ", ".join(processes())
        raise NoSuchProcess(f"no process {process_id!r} (processes: {known})") from None
