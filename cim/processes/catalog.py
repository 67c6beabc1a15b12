"""Every process, by id: ``processes()`` and ``get_process(id)``.

A process is defined next to its analysis, as ``PROCESSES`` (a tuple of :class:`Process`) in a module
of :mod:`cim.analysis`; the modules are listed here, imported on first use. More come as plug-ins:
modules named by the ``cim.processes`` entry point group, and by ``$CIM_PROCESS_MODULES``
(comma-separated module names; the tests add theirs this way)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from functools import cache
from importlib.metadata import entry_points

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
    plugins = [ep.value for ep in entry_points(group="cim.processes")]
    extra = [name.strip() for name in os.environ.get("CIM_PROCESS_MODULES", "").split(",") if name.strip()]
    # (a built-in module not there is skipped: tests/test_processes_catalog.py checks all of PROCESS_IDS exist)
    builtin = [name for name in MODULES if importlib.util.find_spec(name) is not None]
    for name in (*builtin, *plugins, *extra):
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
