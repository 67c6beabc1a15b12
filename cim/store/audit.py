"""The audit log: who wrote, or read a restricted layer, what, when, and with what outcome.

One record per request the web layer audits (ogcapi/access.py: writes, reads of restricted layers,
the admin routes — refused ones included). Two back-ends, one per store:

- **embedded** (:class:`JsonLinesAuditLog`): the server never writes into a DuckDB file readers have
  open, so records go to append-only JSON-lines files beside the store, one per server process:
  ``<store>.d/audit/<host>-<pid>.jsonl``, opened ``O_APPEND`` (mode 0600), one ``write(2)`` per record
  (a record survives a crash of the process as soon as it is written). ``fsync``: after every record of
  a write method (POST, PUT, PATCH, DELETE) and every refusal (401/403), so these survive a power
  failure too; reads that were served are left to the kernel's write-back (``$CIM_AUDIT_FSYNC``:
  ``always`` / ``writes`` (default) / ``never``). Reading merges every process's file, newest first; a
  torn last line (a process killed mid-write) is skipped.
- **PostGIS** (``cim.store.postgis.audit.PostgisAuditLog``): the table ``cim.audit_log`` (migration 6 in
  cim/store/postgis/schema.py), one ``INSERT`` per record (autocommit: durable as PostgreSQL commits are).

Each store gives its own (``Store.audit_log()``); the PostGIS one is in cim/store/postgis/audit.py.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from cim.errors import StoreError

WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
FSYNC_POLICIES = ("always", "writes", "never")


@dataclass(frozen=True)
class AuditRecord:
    """One audited request. ``when``: UTC; ``who``: the token's ``sub`` (None: no valid token)."""

    when: datetime
    who: str | None
    method: str
    path: str
    layer: str | None
    feature: str | None
    status: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["when"] = self.when.astimezone(timezone.utc).isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditRecord:
        return cls(
            when=datetime.fromisoformat(data["when"]),
            who=data.get("who"),
            method=str(data["method"]),
            path=str(data["path"]),
            layer=data.get("layer"),
            feature=data.get("feature"),
            status=int(data["status"]),
        )

    def matches(self, who: str | None, layer: str | None, since: datetime | None) -> bool:
        return (who is None or self.who == who) and (layer is None or self.layer == layer) and (
            since is None or self.when >= since
        )


class AuditLog(Protocol):
    def record(self, record: AuditRecord) -> None: ...

    def query(
        self, who: str | None = None, layer: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """Records newest first, filtered by subject, layer and time (``since``: aware datetime)."""
        ...


def _fsync_policy() -> str:
    policy = os.environ.get("CIM_AUDIT_FSYNC") or "writes"
    if policy not in FSYNC_POLICIES:
        raise StoreError(f"CIM_AUDIT_FSYNC={policy!r}: use one of {', '.join(FSYNC_POLICIES)}")
    return policy


class JsonLinesAuditLog:
    """Append-only JSON-lines files, one per process, in ``directory`` (see the module's doc)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fsync = _fsync_policy()
        self._fd: int | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """This process's file."""
        return self.directory / f"{socket.gethostname()}-{os.getpid()}.jsonl"

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked worker writes its own file
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def record(self, record: AuditRecord) -> None:
        line = (json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            with self._lock:
                fd = self._file()
                os.write(fd, line)
                if self.fsync == "always" or (
                    self.fsync == "writes" and (record.method in WRITE_METHODS or record.status in (401, 403))
                ):
                    os.fsync(fd)
        except OSError as exc:
            raise StoreError(f"cannot write the audit log {self.path}: {exc.strerror}") from None

    def query(
        self, who: str | None = None, layer: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        found: list[AuditRecord] = []
        for path in sorted(self.directory.glob("*.jsonl")):
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        record = _parse(line)
                        if record is not None and record.matches(who, layer, since):
                            found.append(record)
            except OSError as exc:
                raise StoreError(f"cannot read the audit log {path}: {exc.strerror}") from None
        found.sort(key=lambda r: r.when, reverse=True)
        return found[:limit]

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def _parse(line: str) -> AuditRecord | None:
    if not line.endswith("\n"):
        return None  # torn: its writer died mid-line
    try:
        return AuditRecord.from_dict(json.loads(line))
    except (ValueError, KeyError, TypeError):
        return None
