"""Jobs of the PostGIS store: schema ``cim_jobs`` (migration 8, cim/store/postgis/schema.py), a row per
job in ``cim_jobs.job`` and its outputs in ``cim_jobs.result`` (JSONB), through the store's pool.
A conditional update is one ``UPDATE ... WHERE status = ANY(expect)``: atomic across every process."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cim.errors import StoreError
from cim.processes.jobs import FINISHED, Job, JobQuery, JobStore, NoSuchJob
from cim.store import jobs as shared

JOBS_DDL = """
CREATE SCHEMA IF NOT EXISTS cim_jobs;
CREATE TABLE IF NOT EXISTS cim_jobs.job (
    job_id text PRIMARY KEY,
    process_id text NOT NULL,
    status text NOT NULL,
    created timestamptz NOT NULL,
    started timestamptz,
    finished timestamptz,
    updated timestamptz,
    progress integer NOT NULL DEFAULT 0,
    message text NOT NULL DEFAULT '',
    subject text,
    owner text,
    inputs jsonb NOT NULL,
    request jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS cim_jobs.result (
    job_id text PRIMARY KEY REFERENCES cim_jobs.job (job_id) ON DELETE CASCADE,
    outputs jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS job_created ON cim_jobs.job (created DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS job_process ON cim_jobs.job (process_id, created DESC);
CREATE INDEX IF NOT EXISTS job_status ON cim_jobs.job (status, created DESC)
"""

_COLUMNS = "job_id, process_id, status, created, started, finished, updated, progress, message, subject, owner, inputs, request"
_DURATION = "coalesce(extract(epoch FROM coalesce(finished, now()) - started), 0)"


def _job(row: Mapping[str, Any]) -> Job:
    return Job(**row)


class PostgisJobStore(JobStore):
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            with self.pool.connection() as conn:
                with conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(sql, params)
                    return cur.fetchall() if cur.description else []
        except psycopg.errors.UniqueViolation:
            raise StoreError("a job with this id exists already") from None
        except psycopg.Error as exc:
            raise StoreError(f"cannot use the job store: {type(exc).__name__}") from None

    def create(self, job: Job) -> None:
        self._run(
            f"INSERT INTO cim_jobs.job ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                job.job_id, job.process_id, job.status, job.created, job.started, job.finished, job.updated,
                job.progress, job.message, job.subject, job.owner, psycopg.types.json.Jsonb(dict(job.inputs)),
                psycopg.types.json.Jsonb(dict(job.request)),
            ),
        )  # fmt: skip

    def get(self, job_id: str) -> Job:
        rows = self._run(f"SELECT {_COLUMNS} FROM cim_jobs.job WHERE job_id = %s", (job_id,))
        if not rows:
            raise NoSuchJob(f"no job {job_id!r}")
        return _job(rows[0])

    def list(self, query: JobQuery) -> tuple[list[Job], int]:
        where: list[str] = []
        params: list[Any] = []
        if query.process_ids:
            where.append("process_id = ANY(%s)")
            params.append(list(query.process_ids))
        if query.statuses:
            where.append("status = ANY(%s)")
            params.append(list(query.statuses))
        if query.visible_to is not None:
            where.append("(subject IS NULL OR subject = ANY(%s))")
            params.append(list(query.visible_to))
        if query.created_from is not None:
            where.append("created >= %s")
            params.append(query.created_from)
        if query.created_until is not None:
            where.append("created <= %s")
            params.append(query.created_until)
        if query.min_duration is not None:
            where.append(f"{_DURATION} >= %s")
            params.append(query.min_duration)
        if query.max_duration is not None:
            where.append(f"{_DURATION} <= %s")
            params.append(query.max_duration)
        condition = (" WHERE " + " AND ".join(where)) if where else ""
        rows = self._run(
            f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM cim_jobs.job{condition}"
            " ORDER BY created DESC, job_id DESC LIMIT %s OFFSET %s",
            (*params, query.limit, query.offset),
        )
        if not rows and query.offset:
            total = self._run(f"SELECT count(*) AS total FROM cim_jobs.job{condition}", params)[0]["total"]
        else:
            total = rows[0]["total"] if rows else 0
        return [_job({k: v for k, v in row.items() if k != "total"}) for row in rows], int(total)

    def update(self, job_id: str, expect: Sequence[str] | None = None, **changes: Any) -> Job | None:
        shared.check_changes(changes)
        sets = [f"{name} = %s" for name in changes] + ["updated = now()"]
        sql = f"UPDATE cim_jobs.job SET {', '.join(sets)} WHERE job_id = %s"
        params: list[Any] = [*changes.values(), job_id]
        if expect is not None:
            sql += " AND status = ANY(%s)"
            params.append(list(expect))
        rows = self._run(sql + f" RETURNING {_COLUMNS}", params)
        if rows:
            return _job(rows[0])
        self.get(job_id)  # NoSuchJob when there is none
        return None

    def put_results(self, job_id: str, outputs: Mapping[str, Any]) -> None:
        self.get(job_id)
        self._run(
            "INSERT INTO cim_jobs.result (job_id, outputs) VALUES (%s, %s::jsonb)"
            " ON CONFLICT (job_id) DO UPDATE SET outputs = excluded.outputs",
            (job_id, shared.results_text(outputs)),
        )

    def results(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        if job.status != "successful":
            raise shared.not_ready(job)
        rows = self._run("SELECT outputs FROM cim_jobs.result WHERE job_id = %s", (job_id,))
        if not rows:
            raise NoSuchJob(f"job {job_id!r} has no results (deleted)")
        return rows[0]["outputs"]

    def delete(self, job_id: str) -> None:
        if not self._run("DELETE FROM cim_jobs.job WHERE job_id = %s RETURNING job_id", (job_id,)):
            raise NoSuchJob(f"no job {job_id!r}")

    def fail_orphans(self, alive: Callable[[str | None], bool]) -> list[str]:
        return shared.fail_orphans(self, lambda job: not alive(job.owner))

    def prune(self, finished_before: datetime) -> int:
        """Delete the finished jobs (and results) that finished before ``finished_before``."""
        rows = self._run(
            "DELETE FROM cim_jobs.job WHERE status = ANY(%s) AND coalesce(finished, created) < %s RETURNING job_id",
            (sorted(FINISHED), finished_before),
        )
        return len(rows)
