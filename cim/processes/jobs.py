"""Jobs: asynchronous executions of processes, kept in the store so that they survive a restart and
every server worker sees them (OGC API – Processes Part 1, job-list and dismiss).

``Store.jobs()`` returns the store's :class:`JobStore`: a PostgreSQL table on PostGIS; on the embedded
store, files beside it (``<store>.d/jobs/``), each replaced whole by an atomic rename — never a
database file a second process would have to open for writing.

Life of a job (statusCode of the standard): ``accepted`` → ``running`` → ``successful`` | ``failed``
| ``dismissed``. ``dismissed`` may follow ``accepted`` or ``running`` (the run is stopped: the runner
kills it); a finished job can be dismissed too, which deletes it and its results. A job whose
runner died (a killed server) is found at start by :meth:`JobStore.fail_orphans` and marked failed.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cim.errors import CIMError, NotFound

JobStatus = Literal["accepted", "running", "successful", "failed", "dismissed"]
STATUSES: tuple[JobStatus, ...] = ("accepted", "running", "successful", "failed", "dismissed")
#: statuses a job does not leave (but for deletion)
FINISHED: frozenset[str] = frozenset({"successful", "failed", "dismissed"})


class NoSuchJob(NotFound):
    """Unknown (or deleted) job id: 404 ``no-such-job``."""

    code = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job"


class ResultNotReady(CIMError):
    """Results of a job that has not succeeded: 404 ``result-not-ready`` (accepted/running), or the
    job's failure message (failed/dismissed)."""

    status = 404
    code = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready"


@dataclass(frozen=True)
class Job:
    """One job as stored (its ``statusInfo`` in JSON: :meth:`status_info`)."""

    job_id: str
    process_id: str
    status: JobStatus
    created: datetime
    #: the validated inputs of the execute request, and its requested outputs / response form
    inputs: Mapping[str, Any] = field(default_factory=dict)
    request: Mapping[str, Any] = field(default_factory=dict)
    started: datetime | None = None
    finished: datetime | None = None
    updated: datetime | None = None
    #: 0..100
    progress: int = 0
    message: str = ""
    #: who asked (token subject), or None for anonymous
    subject: str | None = None
    #: who runs it: "host:pid" of the runner process while accepted/running
    owner: str | None = None

    def status_info(self) -> dict[str, Any]:
        """``statusInfo`` of the standard (links are added by the web layer)."""
        info: dict[str, Any] = {
            "type": "process",
            "processID": self.process_id,
            "jobID": self.job_id,
            "status": self.status,
            "message": self.message,
            "created": _iso(self.created),
            "progress": self.progress,
        }
        for key, value in (("started", self.started), ("finished", self.finished), ("updated", self.updated)):
            if value is not None:
                info[key] = _iso(value)
        return info


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class JobQuery:
    """The job list's filters (``GET /jobs``): each None/empty = no filter."""

    process_ids: Sequence[str] = ()
    statuses: Sequence[str] = ()
    #: created within [start, end] (either end open: None)
    created_from: datetime | None = None
    created_until: datetime | None = None
    #: duration (finished or now, minus started) in seconds
    min_duration: float | None = None
    max_duration: float | None = None
    limit: int = 10
    offset: int = 0
    #: whose jobs: None = everyone's; a tuple = jobs made anonymously (subject None) plus those of these
    #: subjects (what a caller may see: docs/processes.md, "Who sees a job")
    visible_to: Sequence[str] | None = None

    def shows(self, subject: str | None) -> bool:
        """Whether a job of ``subject`` is visible under :attr:`visible_to`."""
        return self.visible_to is None or subject is None or subject in self.visible_to


class JobStore(abc.ABC):
    """Where a store keeps its jobs. All times are UTC; every method is safe across processes."""

    @abc.abstractmethod
    def create(self, job: Job) -> None:
        """Record a new job (status ``accepted``)."""

    @abc.abstractmethod
    def get(self, job_id: str) -> Job:
        """The job; raises NoSuchJob."""

    @abc.abstractmethod
    def list(self, query: JobQuery) -> tuple[list[Job], int]:
        """Jobs matching ``query``, newest first, one page; and how many match in all."""

    @abc.abstractmethod
    def update(self, job_id: str, expect: Sequence[str] | None = None, **changes: Any) -> Job | None:
        """Change fields of a job (status, progress, message, started, finished, owner ...), only if
        its status is one of ``expect`` (None: any); returns the job as changed, or None when its status
        was not expected (e.g. it was dismissed meanwhile). Sets ``updated``."""

    @abc.abstractmethod
    def put_results(self, job_id: str, outputs: Mapping[str, Any]) -> None:
        """Store a job's outputs (JSON values by output id), before it is marked successful."""

    @abc.abstractmethod
    def results(self, job_id: str) -> dict[str, Any]:
        """A successful job's outputs; raises NoSuchJob or ResultNotReady."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None:
        """Remove a job and its results; raises NoSuchJob."""

    @abc.abstractmethod
    def fail_orphans(self, alive: Any) -> list[str]:
        """Mark failed every accepted/running job whose ``owner`` is not alive (``alive(owner) -> bool``);
        returns their ids. Called when a server starts."""
