"""What both back-ends' job stores share (cim/store/duckdb/jobs.py, cim/store/postgis/jobs.py): a job
as a JSON row, the list filters applied to jobs in memory, the orphan pass, results as JSON text."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timezone
from typing import Any

from cim.processes.jobs import Job, JobQuery, JobStore, ResultNotReady

#: fields of a Job that hold a datetime
TIMES = ("created", "started", "finished", "updated")
#: fields ``JobStore.update`` may change
CHANGEABLE = frozenset({"status", "progress", "message", "started", "finished", "owner"})


def now() -> datetime:
    return datetime.now(timezone.utc)


def job_to_json(job: Job) -> dict[str, Any]:
    data = {
        "job_id": job.job_id, "process_id": job.process_id, "status": job.status,
        "inputs": dict(job.inputs), "request": dict(job.request), "progress": job.progress,
        "message": job.message, "subject": job.subject, "owner": job.owner,
    }  # fmt: skip
    for key in TIMES:
        value = getattr(job, key)
        data[key] = value.isoformat() if value is not None else None
    return data


def job_from_json(data: Mapping[str, Any]) -> Job:
    times = {key: datetime.fromisoformat(data[key]) if data.get(key) else None for key in TIMES}
    return Job(
        job_id=data["job_id"], process_id=data["process_id"], status=data["status"],
        inputs=data.get("inputs") or {}, request=data.get("request") or {}, progress=int(data.get("progress") or 0),
        message=data.get("message") or "", subject=data.get("subject"), owner=data.get("owner"), **times,
    )  # fmt: skip


def check_changes(changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - CHANGEABLE
    if unknown:
        raise ValueError(f"a job's {', '.join(sorted(unknown))} cannot be changed")


def duration(job: Job, at: datetime) -> float:
    """Seconds the job ran (until it finished, or until ``at``); 0 before it started."""
    if job.started is None:
        return 0.0
    return ((job.finished or at) - job.started).total_seconds()


def matches(job: Job, query: JobQuery, at: datetime) -> bool:
    if query.process_ids and job.process_id not in query.process_ids:
        return False
    if query.statuses and job.status not in query.statuses:
        return False
    if not query.shows(job.subject):
        return False
    if query.created_from is not None and job.created < query.created_from:
        return False
    if query.created_until is not None and job.created > query.created_until:
        return False
    seconds = duration(job, at)
    if query.min_duration is not None and seconds < query.min_duration:
        return False
    if query.max_duration is not None and seconds > query.max_duration:
        return False
    return True


def select(jobs: Iterable[Job], query: JobQuery) -> tuple[list[Job], int]:
    """The page of ``jobs`` ``query`` asks for, newest first (ties by id), and how many match."""
    at = now()
    found = sorted((job for job in jobs if matches(job, query, at)), key=lambda j: (j.created, j.job_id), reverse=True)
    return found[query.offset : query.offset + query.limit], len(found)


def fail_orphans(jobs: JobStore, is_orphan: Callable[[Job], bool]) -> list[str]:
    """Mark failed every accepted/running job ``is_orphan`` says nobody runs any more; their ids."""
    failed: list[str] = []
    offset = 0
    while True:
        page, total = jobs.list(JobQuery(statuses=("accepted", "running"), limit=1000, offset=offset))
        for job in page:
            if is_orphan(job):
                done = jobs.update(
                    job.job_id, expect=(job.status,), status="failed", finished=now(),
                    message="the server running it stopped",
                )  # fmt: skip
                if done is not None:
                    failed.append(job.job_id)
        offset += len(page)
        if not page or offset >= total:
            return failed


def results_text(outputs: Mapping[str, Any]) -> str:
    """Outputs as JSON text (numpy scalars, dates; NaN and infinities become null)."""
    return json.dumps(_clean(outputs), default=_default, allow_nan=False)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _clean(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return _clean(tolist())
    raise TypeError(f"an output of type {type(value).__name__} is not JSON")


def not_ready(job: Job) -> ResultNotReady:
    """The error for the results of a job that has not succeeded."""
    if job.status in ("accepted", "running"):
        return ResultNotReady(f"job {job.job_id!r} is {job.status}: its results are not ready")
    return ResultNotReady(f"job {job.job_id!r} {job.status}: {job.message or 'no results'}")
