"""The audit log of the PostGIS store: the table ``cim.audit_log`` (migration 6,
cim/store/postgis/schema.py), one ``INSERT`` per record (see :mod:`cim.store.audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from cim.errors import StoreError
from cim.store.audit import AuditRecord


#: the table (created by migration 6, cim/store/postgis/schema.py)
AUDIT_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS cim.audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    who text,
    method text NOT NULL,
    path text NOT NULL,
    layer text,
    feature text,
    status integer NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON cim.audit_log (at DESC);
CREATE INDEX IF NOT EXISTS audit_log_who ON cim.audit_log (who, at DESC);
CREATE INDEX IF NOT EXISTS audit_log_layer ON cim.audit_log (layer, at DESC)
"""


class PostgisAuditLog:
    """The table ``cim.audit_log``, written and read through the store's connection pool."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def record(self, record: AuditRecord) -> None:
        try:
            with self.pool.connection() as conn:
                conn.execute(
                    "INSERT INTO cim.audit_log (at, who, method, path, layer, feature, status)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (record.when, record.who, record.method, record.path, record.layer, record.feature, record.status),
                )
        except psycopg.Error as exc:
            raise StoreError(f"cannot write the audit log: {type(exc).__name__}") from None

    def query(
        self, who: str | None = None, layer: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        where, params = [], []
        for column, value in (("who", who), ("layer", layer)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if since is not None:
            where.append("at >= %s")
            params.append(since)
        sql = "SELECT at, who, method, path, layer, feature, status FROM cim.audit_log"
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        sql += " ORDER BY at DESC, id DESC LIMIT %s"
        try:
            with self.pool.connection() as conn:
                rows = conn.execute(sql, (*params, limit)).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"cannot read the audit log: {type(exc).__name__}") from None
        return [AuditRecord(*row) for row in rows]

    def close(self) -> None:
        pass
