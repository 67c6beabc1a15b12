"""Helpers of the job tests: the sample processes plugged in (here and in the runner's children), and
waiting for a job or a process to reach a state (with a generous deadline: never a timed assertion)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

#: the deadline of a wait: long enough on a loaded machine, only reached when something is wrong
DEADLINE = 90.0


def use_sample_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """``support.sample_processes`` in this process's catalog and in the children's (PYTHONPATH)."""
    from cim.limits import limits
    from cim.processes.catalog import processes

    monkeypatch.setenv("CIM_PROCESS_MODULES", "support.sample_processes")
    path = [str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
    processes.cache_clear()
    limits.cache_clear()


def wait_until(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what`` past the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_status(jobs: Any, job_id: str, *statuses: str) -> Any:
    """The job once its status is one of ``statuses``."""
    return wait_until(lambda: (job := jobs.get(job_id)).status in statuses and job, f"job {job_id} {'/'.join(statuses)}")


def pid_gone(pid: int) -> bool:
    """Whether process ``pid`` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
