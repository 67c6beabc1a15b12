"""Fault injection for the crash tests: a build killed at a named point, deterministically.

The build and the stores' publish code call :func:`crash_point` with a name at the moments worth
crashing at (``tests/test_build_crash.py`` lists them). Normally the call returns at once; when the
environment variable ``CIM_CRASH_AT`` names the point, the process sends itself ``SIGKILL`` there,
as a power cut or the OOM killer would: no ``finally``, no ``atexit``, no flush, no cleanup.

``CIM_CRASH_AT=name`` kills at the first arrival at ``name``; ``CIM_CRASH_AT=name:N`` at the Nth
(e.g. ``publish.copy:2``, while the second layer is loaded).
"""

from __future__ import annotations

import os
import signal

#: the environment variable naming the point to crash at
ENV = "CIM_CRASH_AT"

_arrivals: dict[str, int] = {}


def crash_point(name: str) -> None:
    """SIGKILL this process if ``$CIM_CRASH_AT`` names ``name`` (and this is the arrival it counts)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _arrivals[name] = arrivals = _arrivals.get(name, 0) + 1
    if arrivals >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
