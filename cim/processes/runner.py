"""The job runner: runs jobs of a server process in child processes, stops them when dismissed, and
finds at start the jobs a dead server left behind.

- :func:`submit` records a job (``accepted``, owner this server "host:pid") and queues it; the runner's
  thread starts it as ``python -m cim.processes.worker <store> <job id>`` when one of its
  ``limits().jobs`` slots is free. The child gets ``PR_SET_PDEATHSIG = SIGKILL``: it dies with the
  thread that started it, which lives as long as the server process.
- The thread polls the store every 0.2 s for the jobs it runs: one dismissed — by any server worker,
  the status in the store says so — is killed (SIGKILL) at once; one whose child ended without
  finishing it is marked failed.
- :func:`dismiss`: ``accepted``/``running`` → ``dismissed`` (and the run is stopped); a finished job is
  deleted with its results (Processes 1.0).
- :func:`start` (server start-up): :func:`fail_orphans` and :func:`prune`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections import deque
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from cim.limits import limits
from cim.processes.jobs import FINISHED, Job, JobStore, NoSuchJob
from cim.processes.process import Process
from cim.processes.request import ExecuteRequest

log = logging.getLogger(__name__)

#: how often the runner looks at the store for dismissed jobs and at its children, in seconds
POLL_SECONDS = 0.2
#: the message of a job whose server died
ORPHAN_MESSAGE = "the server running it stopped"
#: the environment variable the child reads the store URL from (the URL may carry a password)
STORE_ENV = "CIM_JOB_STORE"
_WORKER_MODULE = "cim.processes.worker"
_PR_SET_PDEATHSIG = 1


def host() -> str:
    return socket.gethostname()


def this_owner() -> str:
    return f"{host()}:{os.getpid()}"


def _store_url(store: Any) -> str:
    connect = getattr(store, "connect_url", None)
    return connect() if callable(connect) else store.url


def _now() -> Any:
    from cim.store.jobs import now

    return now()


class Runner:
    """The jobs one server process runs (one runner per store and process: :func:`runner`)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.jobs: JobStore = store.jobs()
        self.url = _store_url(store)
        self.waiting: deque[str] = deque()
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self._libc = ctypes.CDLL(None, use_errno=True)

    # -- the server side -------------------------------------------------------------------------
    def submit(self, process: Process, request: ExecuteRequest, subject: str | None = None) -> Job:
        job = Job(
            job_id=str(uuid.uuid4()), process_id=process.id, status="accepted", created=_now(),
            inputs=dict(request.inputs), request=request.to_json(), subject=subject, owner=this_owner(),
            message="accepted",
        )  # fmt: skip
        self.jobs.create(job)
        with self.lock:
            self.waiting.append(job.job_id)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="cim-job-runner", daemon=True)
                self.thread.start()
        self.wake.set()
        return job

    def running(self) -> dict[str, int]:
        """Job id → pid of the children running now."""
        with self.lock:
            return {job_id: child.pid for job_id, child in self.children.items()}

    # -- the runner's thread (the only one that starts children: PDEATHSIG follows the thread) -----
    def _loop(self) -> None:
        # it ends when it has nothing to run or watch (submit starts another), never before its children
        while True:
            self.wake.wait(POLL_SECONDS)
            self.wake.clear()
            try:
                self._stop_dismissed()
                self._reap()
                self._start_waiting()
            except Exception:  # the store may be away for a moment: try again at the next poll
                log.exception("job runner")
            with self.lock:
                if not self.children and not self.waiting:
                    self.thread = None
                    return

    def stop(self, reason: str = "the server stopped while the job ran or waited") -> list[str]:
        """A graceful shutdown: kill this runner's children and fail their jobs and the waiting ones with
        ``reason`` (rather than leave them ``running`` until a server starts again on this host); their ids."""
        with self.lock:
            children, waiting = dict(self.children), list(self.waiting)
            self.children.clear()
            self.waiting.clear()
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            child.wait()
        stopped = []
        for job_id in [*children, *waiting]:
            try:
                if self.jobs.update(job_id, expect=("accepted", "running"), status="failed", finished=_now(), message=reason):
                    stopped.append(job_id)
            except NoSuchJob:
                pass
        return stopped

    def idle(self) -> bool:
        """Whether it runs and waits for nothing (its thread has ended)."""
        with self.lock:
            return self.thread is None

    def _stop_dismissed(self) -> None:
        with self.lock:
            ids = list(self.children)
        for job_id in ids:
            try:
                stop = self.jobs.get(job_id).status == "dismissed"
            except NoSuchJob:
                stop = True
            if stop:
                with self.lock:
                    child = self.children.get(job_id)
                if child is not None and child.poll() is None:
                    child.send_signal(signal.SIGKILL)

    def _reap(self) -> None:
        with self.lock:
            ended = [(job_id, child) for job_id, child in self.children.items() if child.poll() is not None]
            for job_id, _ in ended:
                del self.children[job_id]
        for job_id, child in ended:
            try:
                self.jobs.update(
                    job_id, expect=("accepted", "running"), status="failed", finished=_now(),
                    message=f"the job's process ended unexpectedly (exit code {child.returncode})",
                )  # fmt: skip
            except NoSuchJob:
                pass

    def _start_waiting(self) -> None:
        cap = max(1, limits().jobs)
        while True:
            # (a job stays in ``waiting`` until it is in ``children``: is_orphan never misses it; only this
            # thread takes jobs out of ``waiting``)
            with self.lock:
                if len(self.children) >= cap or not self.waiting:
                    return
                job_id = self.waiting[0]
            try:
                startable = self.jobs.get(job_id).status == "accepted"  # not dismissed while it waited
            except NoSuchJob:
                startable = False
            child = None
            if startable:
                try:
                    child = self._spawn(job_id)
                except OSError as exc:
                    log.error("cannot start job %s: %s", job_id, exc)
                    self.jobs.update(
                        job_id, expect=("accepted",), status="failed", finished=_now(),
                        message=f"the job's process could not start ({exc.strerror or type(exc).__name__})",
                    )  # fmt: skip
            with self.lock:
                if child is not None:
                    self.children[job_id] = child
                self.waiting.remove(job_id)

    def _spawn(self, job_id: str) -> subprocess.Popen[bytes]:
        libc = self._libc

        def die_with_parent() -> None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

        env = dict(os.environ)
        env[STORE_ENV] = self.url
        shown = getattr(self.store, "url", "store")
        return subprocess.Popen(
            [sys.executable, "-m", _WORKER_MODULE, shown, job_id],
            env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent, close_fds=True,
        )  # fmt: skip


_runners: dict[int, Runner] = {}
_runners_lock = threading.Lock()


def runner(store: Any) -> Runner:
    """The runner of ``store`` in this process."""
    with _runners_lock:
        found = _runners.get(id(store))
        if found is None or found.store is not store:
            found = _runners[id(store)] = Runner(store)
        return found


def submit(store: Any, process: Process, request: ExecuteRequest, subject: str | None = None) -> Job:
    """Record a job for ``request`` (status ``accepted``) and have this process's runner run it."""
    return runner(store).submit(process, request, subject)


def dismiss(store: Any, job_id: str) -> Job:
    """Dismiss a job: an accepted or running one becomes ``dismissed`` (whichever server runs it kills
    it within a poll); a finished one is deleted with its results. Returns the job as dismissed.
    Raises NoSuchJob."""
    jobs: JobStore = store.jobs()
    while True:
        job = jobs.get(job_id)
        if job.status in FINISHED:
            jobs.delete(job_id)
            return replace(job, status="dismissed")
        done = jobs.update(job_id, expect=("accepted", "running"), status="dismissed", finished=_now(), message="dismissed")
        if done is not None:
            with _runners_lock:
                local = _runners.get(id(store))
            if local is not None:
                local.wake.set()
            return done
        # it finished meanwhile: delete it then


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.decode("utf-8", "replace").split("\0")


def is_orphan(job: Job) -> bool:
    """Whether nobody runs ``job`` any more: its owner is on this host and its pid is gone, or is a
    process that is not what ran it (a worker of another job, or — for a running job — no worker).
    A job owned on another host is taken to be alive."""
    if not job.owner or ":" not in job.owner:
        return True
    owner_host, _, pid_text = job.owner.rpartition(":")
    if owner_host != host():
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return True
    if pid == os.getpid():
        # ours: alive while this process's runner still has it
        local = [r for r in list(_runners.values()) if job.job_id in r.waiting or job.job_id in r.children]
        return not local
    args = _cmdline(pid)
    if args is None:
        return True
    worker = _WORKER_MODULE in args
    if job.status == "running":
        return not (worker and job.job_id in args)
    return worker  # accepted: owned by a server, not by a worker


def fail_orphans(store: Any) -> list[str]:
    """Mark failed (``the server running it stopped``) every accepted/running job nobody runs any more
    (:func:`is_orphan`); their ids. Called when a server starts."""
    from cim.store.jobs import fail_orphans as orphan_pass

    return orphan_pass(store.jobs(), is_orphan)


def prune(store: Any) -> int:
    """Delete the jobs that finished more than ``limits().job_days`` days ago; how many."""
    jobs = store.jobs()
    cut = getattr(jobs, "prune", None)
    return cut(_now() - timedelta(days=limits().job_days)) if cut is not None else 0


def stop(store: Any) -> list[str]:
    """Server shutdown: this process's runner of ``store`` (if it has one) stops its jobs (:meth:`Runner.stop`)."""
    with _runners_lock:
        local = _runners.get(id(store))
    return local.stop() if local is not None and local.store is store else []


def start(store: Any) -> tuple[list[str], int]:
    """Server start-up: fail the orphans, prune old jobs. Returns (failed ids, number pruned)."""
    failed = fail_orphans(store)
    pruned = prune(store)
    if failed or pruned:
        log.info("jobs: %d orphans marked failed, %d old jobs deleted", len(failed), pruned)
    return failed, pruned
