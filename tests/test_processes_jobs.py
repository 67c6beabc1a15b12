"""Jobs (OGC API – Processes) kept in the store and run by the runner in child processes, on both
stores: the life of a job (accepted → running → successful / failed / dismissed), results, dismissal
that kills the run (from this store object or another one: another server worker), deletion of a
finished job, the list's filters, the cap on running jobs, and jobs left behind by a killed server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cim.processes import Job, JobQuery, NoSuchJob, ResultNotReady, get_process
from cim.processes import runner
from cim.processes.request import ExecuteRequest
from cim.store import open_store
from support.jobs import ROOT, pid_gone, use_sample_processes, wait_status, wait_until
from support.planning_city import publish_planning_city

#: the planned city's release layers (landuse, parcels, roads, admin_divisions, buildings, pois) and
#: the live layer every store has (warnings)
LAYERS = 7


@pytest.fixture
def city(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The planned city's store (release 1) with the sample processes; running jobs are dismissed and
    the runner has stopped before the store closes."""
    use_sample_processes(monkeypatch)
    publish_planning_city(store_url)
    store = open_store(store_url)
    yield store
    jobs = store.jobs()
    for job in jobs.list(JobQuery(statuses=("accepted", "running"), limit=1000))[0]:
        runner.dismiss(store, job.job_id)
    wait_until(runner.runner(store).idle, "the runner to stop")
    store.close()


def _submit(store: Any, process_id: str, **inputs: Any) -> Job:
    return runner.submit(store, get_process(process_id), ExecuteRequest(process_id, inputs, {}, "document"), subject="alice")


def test_job_runs_to_success_with_results(city: Any) -> None:
    job = _submit(city, "sample-echo", text="hello", count=3)
    assert job.status == "accepted" and job.subject == "alice" and job.process_id == "sample-echo"
    assert job.owner == f"{runner.host()}:{os.getpid()}"  # the server, until a worker takes it
    done = wait_status(city.jobs(), job.job_id, "successful", "failed")
    assert done.status == "successful", done.message
    assert done.progress == 100 and done.message == "done"
    assert done.started is not None and done.finished is not None and done.created <= done.started <= done.finished
    assert done.owner.startswith(f"{runner.host()}:") and done.owner != job.owner  # the worker ran it
    assert city.jobs().results(job.job_id) == {"echo": {"text": "hello", "count": 3}, "layers": LAYERS}
    assert done.request == {"process_id": "sample-echo", "inputs": {"text": "hello", "count": 3}, "outputs": {}, "response": "document"}
    info = done.status_info()
    assert (info["status"], info["processID"], info["jobID"]) == ("successful", "sample-echo", job.job_id)


def test_job_reports_progress_while_running_then_results(city: Any) -> None:
    job = _submit(city, "sample-countdown", seconds=2)
    running = wait_status(city.jobs(), job.job_id, "running")
    assert running.owner != job.owner
    with pytest.raises(ResultNotReady, match="is running: its results are not ready"):
        city.jobs().results(job.job_id)
    def progressed() -> Job | None:
        seen = city.jobs().get(job.job_id)
        return seen if seen.status == "successful" or 0 < seen.progress < 100 else None

    seen = wait_until(progressed, "progress")
    if seen.status == "running":
        assert seen.message.startswith("step ") and seen.message.endswith(" of 20")
    wait_status(city.jobs(), job.job_id, "successful")
    assert city.jobs().results(job.job_id) == {"steps": 20}


def test_failed_job_keeps_the_reason(city: Any) -> None:
    job = _submit(city, "sample-fail", message="parcel P9 is not in release 1")
    done = wait_status(city.jobs(), job.job_id, "successful", "failed")
    assert done.status == "failed"
    assert done.message == "parcel P9 is not in release 1"  # a CIMError's message as it is
    with pytest.raises(ResultNotReady, match="failed: parcel P9 is not in release 1"):
        city.jobs().results(job.job_id)


def test_failure_of_another_kind_is_its_type_and_message(city: Any) -> None:
    # the store object is fine, the request names an output the process lacks: InvalidInput (a CIMError);
    # a job whose stored request is broken fails with the exception's type and message
    job = _submit(city, "sample-echo", text="x")
    wait_status(city.jobs(), job.job_id, "successful")
    broken = Job(job_id="broken-request", process_id="sample-echo", status="accepted", created=datetime.now(timezone.utc), request={"inputs": {}})
    city.jobs().create(broken)
    from cim.processes.worker import run_job

    assert run_job(city, "broken-request") == "failed"
    assert city.jobs().get("broken-request").message == "KeyError: 'process_id'"


def test_dismissing_a_running_job_kills_its_process(city: Any) -> None:
    job = _submit(city, "sample-countdown", seconds=120)
    wait_status(city.jobs(), job.job_id, "running")
    pid = runner.runner(city).running()[job.job_id]
    assert not pid_gone(pid)
    started = time.monotonic()
    dismissed = runner.dismiss(city, job.job_id)
    assert dismissed.status == "dismissed" and dismissed.message == "dismissed"
    wait_until(lambda: pid_gone(pid), f"worker {pid} to be killed")
    print(f"dismissed job's worker gone after {time.monotonic() - started:.2f} s")
    assert city.jobs().get(job.job_id).status == "dismissed"
    with pytest.raises(ResultNotReady, match="dismissed"):
        city.jobs().results(job.job_id)
    # dismissing it again deletes it (it is finished now)
    assert runner.dismiss(city, job.job_id).status == "dismissed"
    with pytest.raises(NoSuchJob):
        city.jobs().get(job.job_id)


def test_another_worker_dismisses_a_job_this_one_runs(city: Any, store_url: str) -> None:
    job = _submit(city, "sample-countdown", seconds=120)
    wait_status(city.jobs(), job.job_id, "running")
    pid = runner.runner(city).running()[job.job_id]
    with open_store(store_url) as other:  # another server worker: its own store object
        assert other.jobs().get(job.job_id).status == "running"
        assert runner.dismiss(other, job.job_id).status == "dismissed"
    wait_until(lambda: pid_gone(pid), f"worker {pid} to be killed")
    assert city.jobs().get(job.job_id).status == "dismissed"


def test_dismissing_a_finished_job_deletes_it_and_its_results(city: Any) -> None:
    job = _submit(city, "sample-echo", text="gone soon")
    wait_status(city.jobs(), job.job_id, "successful")
    assert runner.dismiss(city, job.job_id).status == "dismissed"
    for call in (city.jobs().get, city.jobs().results, city.jobs().delete):
        with pytest.raises(NoSuchJob, match=f"no job '{job.job_id}'|has no results"):
            call(job.job_id)
    with pytest.raises(NoSuchJob):
        runner.dismiss(city, job.job_id)


def test_unknown_jobs_are_no_such_job(city: Any) -> None:
    jobs = city.jobs()
    for job_id in ("no-such-job", "../../etc/passwd", "", "x" * 300):
        with pytest.raises(NoSuchJob):
            jobs.get(job_id)
        with pytest.raises(NoSuchJob):
            jobs.results(job_id)
        with pytest.raises(NoSuchJob):
            runner.dismiss(city, job_id)
    with pytest.raises(NoSuchJob):
        jobs.update("no-such-job", status="failed")


def test_at_most_the_limit_of_jobs_run_at_once(city: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cim.limits import limits

    monkeypatch.setenv("CIM_LIMIT_JOBS", "1")
    limits.cache_clear()
    first = _submit(city, "sample-countdown", seconds=120)
    second = _submit(city, "sample-echo", text="waits")
    wait_status(city.jobs(), first.job_id, "running")
    time.sleep(1.0)  # (not a timing assertion: the second must still wait, however long we look)
    assert city.jobs().get(second.job_id).status == "accepted"
    runner.dismiss(city, first.job_id)
    assert wait_status(city.jobs(), second.job_id, "successful").status == "successful"


def _at(minutes: float) -> datetime:
    return datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)


def _stored(job_id: str, process_id: str, status: str, created: float, ran: float | None = None) -> Job:
    """A job created at minute ``created`` that ran ``ran`` minutes (from created + 1)."""
    started = _at(created + 1) if ran is not None else None
    finished = _at(created + 1 + ran) if ran is not None and status != "running" else None
    return Job(job_id=job_id, process_id=process_id, status=status, created=_at(created), started=started, finished=finished)  # type: ignore[arg-type]


def test_job_list_filters_newest_first_paged(city: Any) -> None:
    jobs = city.jobs()
    for job in (
        _stored("j1", "measure", "successful", 0, ran=2),  # 120 s
        _stored("j2", "measure", "failed", 10, ran=0.5),  # 30 s
        _stored("j3", "zoning-compliance", "successful", 20, ran=10),  # 600 s
        _stored("j4", "zoning-compliance", "dismissed", 30),  # never started: 0 s
        _stored("j5", "release-diff", "successful", 40, ran=1),  # 60 s
    ):
        jobs.create(job)

    def ids(**query: Any) -> tuple[list[str], int]:
        page, total = jobs.list(JobQuery(**query))
        return [job.job_id for job in page], total

    assert ids() == (["j5", "j4", "j3", "j2", "j1"], 5)
    assert ids(limit=2) == (["j5", "j4"], 5)
    assert ids(limit=2, offset=2) == (["j3", "j2"], 5)
    assert ids(limit=2, offset=4) == (["j1"], 5)
    assert ids(limit=2, offset=6) == ([], 5)
    assert ids(process_ids=["measure"]) == (["j2", "j1"], 2)
    assert ids(process_ids=["measure", "release-diff"], statuses=["successful"]) == (["j5", "j1"], 2)
    assert ids(statuses=["dismissed", "failed"]) == (["j4", "j2"], 2)
    assert ids(created_from=_at(10), created_until=_at(30)) == (["j4", "j3", "j2"], 3)
    assert ids(created_from=_at(25)) == (["j5", "j4"], 2)
    assert ids(created_until=_at(9)) == (["j1"], 1)
    assert ids(min_duration=60) == (["j5", "j3", "j1"], 3)
    assert ids(max_duration=60) == (["j5", "j4", "j2"], 3)
    assert ids(min_duration=100, max_duration=200) == (["j1"], 1)
    assert ids(statuses=["running"]) == ([], 0)


def test_changes_are_conditional_on_the_status(city: Any) -> None:
    jobs = city.jobs()
    jobs.create(_stored("c1", "measure", "running", 0, ran=1))
    assert jobs.update("c1", expect=("accepted",), status="failed") is None
    assert jobs.get("c1").status == "running"
    changed = jobs.update("c1", expect=("running",), progress=40, message="half way")
    assert (changed.status, changed.progress, changed.message) == ("running", 40, "half way")
    assert changed.updated is not None and jobs.get("c1") == changed
    with pytest.raises(ValueError, match="process_id"):
        jobs.update("c1", process_id="other")


def test_old_finished_jobs_are_pruned(city: Any) -> None:
    jobs = city.jobs()
    now = datetime.now(timezone.utc)
    old = replace(_stored("old", "measure", "successful", 0, ran=1), created=now - timedelta(days=9), finished=now - timedelta(days=8))
    recent = replace(_stored("recent", "measure", "failed", 0, ran=1), created=now - timedelta(days=3), finished=now - timedelta(days=2))
    stuck = replace(_stored("stuck", "measure", "accepted", 0), created=now - timedelta(days=30), owner="elsewhere:1")
    for job in (old, recent, stuck):
        jobs.create(job)
    jobs.put_results("old", {"area": 1.5})
    assert runner.start(city) == ([], 1)  # 7 days kept by default; "stuck" is another host's
    assert sorted(j.job_id for j in jobs.list(JobQuery())[0]) == ["recent", "stuck"]
    with pytest.raises(NoSuchJob):
        jobs.results("old")


def test_jobs_of_a_dead_server_are_failed_at_start(city: Any, store_url: str) -> None:
    # an accepted job whose server is gone (a pid that ran and ended) and one of a live one (this process,
    # holding it: not an orphan); a job of another host is left alone
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    city.jobs().create(replace(_stored("dead-server", "measure", "accepted", 0), owner=f"{runner.host()}:{ended.stdout.strip()}"))
    city.jobs().create(replace(_stored("far-away", "measure", "running", 0, ran=1), owner="another-host:1"))
    # a server (the runner in a child python) running a long job, killed with SIGKILL
    script = (
        "import sys, time\n"
        "from cim.store import open_store\n"
        "from cim.processes import get_process\n"
        "from cim.processes.runner import submit\n"
        "from cim.processes.request import ExecuteRequest\n"
        "store = open_store(sys.argv[1])\n"
        "job = submit(store, get_process('sample-countdown'), ExecuteRequest('sample-countdown', {'seconds': 300}))\n"
        "print(job.job_id, flush=True)\n"
        "time.sleep(600)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script, store_url], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        job_id = server.stdout.readline().strip()
        running = wait_status(city.jobs(), job_id, "running")
        worker = int(running.owner.rpartition(":")[2])
        assert running.owner == f"{runner.host()}:{worker}" and worker != server.pid
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
        server.stdout.close()
    wait_until(lambda: pid_gone(worker), "the worker to die with its server")  # PR_SET_PDEATHSIG
    assert city.jobs().get(job_id).status == "running"  # nobody said otherwise yet
    failed, _ = runner.start(city)
    assert sorted(failed) == sorted([job_id, "dead-server"])
    for failed_id in failed:
        job = city.jobs().get(failed_id)
        assert (job.status, job.message) == ("failed", "the server running it stopped")
        assert job.finished is not None
    assert city.jobs().get("far-away").status == "running"
    assert runner.start(city) == ([], 0)  # nothing more the second time


def test_a_pid_reused_by_another_process_is_no_owner(city: Any) -> None:
    # the owner pid is alive (this test's own parent shell… here: pid 1) but is no worker of the job
    city.jobs().create(replace(_stored("reused", "measure", "running", 0, ran=1), owner=f"{runner.host()}:1"))
    assert runner.fail_orphans(city) == ["reused"]


def test_fail_orphans_asks_whether_each_owner_is_alive(city: Any) -> None:
    jobs = city.jobs()
    jobs.create(replace(_stored("a1", "measure", "accepted", 0), owner="h:1"))
    jobs.create(replace(_stored("a2", "measure", "running", 1, ran=1), owner="h:2"))
    jobs.create(replace(_stored("a3", "measure", "successful", 2, ran=1), owner="h:3"))
    asked: list[str | None] = []

    def alive(owner: str | None) -> bool:
        asked.append(owner)
        return owner == "h:2"

    assert jobs.fail_orphans(alive) == ["a1"]
    assert sorted(asked) == ["h:1", "h:2"]  # finished jobs are not asked about
    assert [jobs.get(i).status for i in ("a1", "a2", "a3")] == ["failed", "running", "successful"]
    assert jobs.get("a1").message == "the server running it stopped"
