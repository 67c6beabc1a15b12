"""Jobs of the embedded store: JSON files beside it, not a DuckDB file (DuckDB allows one writing
process per file, and every server worker and job runner writes jobs).

    cim.duckdb.d/jobs/<job id>.json           the job (cim/store/jobs.py: job_to_json)
    cim.duckdb.d/jobs/<job id>.results.json   its outputs, once it succeeded
    cim.duckdb.d/jobs.lock                     flock held by every change (read, compare, replace)

Each file is written to a temporary name and ``os.replace``d over its own (atomic: a reader sees the old
file or the new, never half of one); readers take no lock."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cim.store.duckdb.locks import file_lock
from cim.errors import StoreError
from cim.processes.jobs import FINISHED, Job, JobQuery, JobStore, NoSuchJob
from cim.store import jobs as shared

#: job ids are made by the runner (uuid4); anything else is no job of ours (and no path)
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RESULTS = ".results.json"


class FileJobStore(JobStore):
    def __init__(self, store_dir: Path) -> None:
        self.dir = store_dir / "jobs"
        self.lock_path = store_dir / "jobs.lock"

    # -- files ---------------------------------------------------------------------------------
    def _path(self, job_id: str, suffix: str = ".json") -> Path:
        if not _ID.fullmatch(job_id):
            raise NoSuchJob(f"no job {job_id!r}")
        return self.dir / f"{job_id}{suffix}"

    def _locked(self) -> AbstractContextManager[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        return file_lock(self.lock_path)

    def _write(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write job file {path.name}: {exc.strerror}") from None

    def _read(self, job_id: str) -> Job:
        try:
            text = self._path(job_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NoSuchJob(f"no job {job_id!r}") from None
        return shared.job_from_json(json.loads(text))

    def _all(self) -> Iterator[Job]:
        if not self.dir.is_dir():
            return
        for path in self.dir.glob("*.json"):
            if path.name.endswith(_RESULTS) or path.name.startswith("."):
                continue
            try:
                yield shared.job_from_json(json.loads(path.read_text(encoding="utf-8")))
            except FileNotFoundError:  # deleted while listing
                continue

    # -- the contract --------------------------------------------------------------------------
    def create(self, job: Job) -> None:
        path = self._path(job.job_id)
        with self._locked():
            if path.exists():
                raise StoreError(f"job {job.job_id!r} exists already")
            self._write(path, json.dumps(shared.job_to_json(job)))

    def get(self, job_id: str) -> Job:
        return self._read(job_id)

    def list(self, query: JobQuery) -> tuple[list[Job], int]:
        return shared.select(self._all(), query)

    def update(self, job_id: str, expect: Sequence[str] | None = None, **changes: Any) -> Job | None:
        shared.check_changes(changes)
        with self._locked():
            job = self._read(job_id)
            if expect is not None and job.status not in expect:
                return None
            job = replace(job, **changes, updated=shared.now())
            self._write(self._path(job_id), json.dumps(shared.job_to_json(job)))
            return job

    def put_results(self, job_id: str, outputs: Mapping[str, Any]) -> None:
        self._read(job_id)
        self._write(self._path(job_id, _RESULTS), shared.results_text(outputs))

    def results(self, job_id: str) -> dict[str, Any]:
        job = self._read(job_id)
        if job.status != "successful":
            raise shared.not_ready(job)
        try:
            return json.loads(self._path(job_id, _RESULTS).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NoSuchJob(f"job {job_id!r} has no results (deleted)") from None

    def delete(self, job_id: str) -> None:
        with self._locked():
            path = self._path(job_id)
            if not path.exists():
                raise NoSuchJob(f"no job {job_id!r}")
            self._path(job_id, _RESULTS).unlink(missing_ok=True)
            path.unlink()

    def fail_orphans(self, alive: Callable[[str | None], bool]) -> list[str]:
        return shared.fail_orphans(self, lambda job: not alive(job.owner))

    def prune(self, finished_before: datetime) -> int:
        """Delete the finished jobs (and results) that finished before ``finished_before``."""
        old = [j.job_id for j in self._all() if j.status in FINISHED and (j.finished or j.created) < finished_before]
        for job_id in old:
            try:
                self.delete(job_id)
            except NoSuchJob:
                pass
        return len(old)

