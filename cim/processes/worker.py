"""The child process that runs one job: ``python -m cim.processes.worker <store> <job id>`` (started by
:mod:`cim.processes.runner`; the store URL is read from ``$CIM_JOB_STORE`` when set, as it may carry a
password, the argument being the URL as shown).

It marks the job ``running`` (owner "host:pid"), runs the process with a progress callback that updates
the job at most twice a second, stores the outputs and marks it ``successful`` — or ``failed`` with the
error's message (a ``CIMError``'s as it is; any other exception as its type and message, its traceback
on stderr only). A job dismissed meanwhile is left as it is: the runner kills this process, and the
progress callback exits at once when it sees the dismissal first."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from typing import Any

from cim.errors import CIMError
from cim.processes.catalog import get_process
from cim.processes.execute import run
from cim.processes.jobs import JobStore
from cim.processes.request import ExecuteRequest
from cim.processes.runner import STORE_ENV, this_owner
from cim.store import open_store
from cim.store.jobs import now

#: progress updates of the job are at least this far apart (seconds)
PROGRESS_SECONDS = 0.5


class Reporter:
    """The progress callback: throttled updates of the job; exits the process once it is dismissed."""

    def __init__(self, jobs: JobStore, job_id: str) -> None:
        self.jobs, self.job_id, self.last = jobs, job_id, 0.0

    def __call__(self, percent: int, message: str = "") -> None:
        at = time.monotonic()
        if at - self.last < PROGRESS_SECONDS:
            return
        self.last = at
        done = self.jobs.update(self.job_id, expect=("running",), progress=max(0, min(100, int(percent))), message=message)
        if done is None:  # dismissed (or failed by someone else): stop now
            os._exit(0)


#: the longest failure message a job keeps (a library's error may quote a whole statement or value)
MESSAGE_CHARS = 500


def failure_message(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, CIMError) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def run_job(store: Any, job_id: str) -> str:
    """Run job ``job_id`` of ``store`` here; returns its final status."""
    jobs = store.jobs()
    job = jobs.update(job_id, expect=("accepted",), status="running", started=now(), owner=this_owner(), message="running")
    if job is None:
        return jobs.get(job_id).status
    try:
        request = ExecuteRequest.from_json(job.request)
        outputs = run(store, get_process(job.process_id), request, Reporter(jobs, job_id))
        jobs.put_results(job_id, outputs)
    except Exception as exc:  # the job's failure, reported in the job; never a traceback to the client
        if not isinstance(exc, CIMError):
            traceback.print_exc(file=sys.stderr)
        done = jobs.update(job_id, expect=("running",), status="failed", finished=now(), message=failure_message(exc))
    else:
        done = jobs.update(job_id, expect=("running",), status="successful", finished=now(), progress=100, message="done")
    return done.status if done is not None else jobs.get(job_id).status


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m cim.processes.worker <store-url> <job-id>", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    store = open_store(os.environ.get(STORE_ENV) or argv[0])
    try:
        run_job(store, argv[1])
    except CIMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
