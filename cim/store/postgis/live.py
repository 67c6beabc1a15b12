"""The PostGIS store's edits overlay: schema ``cim_live`` (see :mod:`cim.store.edits`).

``cim_live.<layer>`` holds the edited features of each editable layer (created when a release with
the layer is published, or by migration 2 for releases published before), ``cim_live.edit_log`` the
log, ``cim_live.fid_seq`` the fids of created features. An edit is one transaction: a transaction
advisory lock on (layer, fid) so two edits of one feature queue up, the read of the feature as
readers see it, the upsert of its overlay row and the log entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import psycopg
import sqlalchemy
from sqlalchemy import text

from cim.errors import StoreError
from cim.store.base import GEOM, LayerInfo
from cim.store.edits import FIRST_CREATED_FID, Edit, EditRecord, NotEditable, prepare
from cim.store.postgis.dialect import LIVE_SCHEMA, SQL_TYPES, live_table
from cim.store.rebase import EditConflict, Rebase
from cim.store.sql import quote_ident
from cim.store.sql.dialect import Dialect
from cim.store.sql.features import row_to_feature, select_one
from cim.store.sql.overlay import CONFLICT, add_columns_sql, create_table_sql, upsert_params, upsert_sql

#: advisory lock serialising the edit-log inserts (0x43494D = "CIM"; +1 is the publish lock)
LOG_LOCK = 0x43494D + 2


def create_live_schema(conn: sqlalchemy.Connection) -> None:
    """Migration 2: the overlay schema, the edit log, the fid sequence, and overlay tables for the
    editable layers of releases published before it."""
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {LIVE_SCHEMA}"))
    conn.execute(text(
        f"CREATE TABLE IF NOT EXISTS {LIVE_SCHEMA}.edit_log (id bigserial PRIMARY KEY,"
        " edited_at timestamptz NOT NULL DEFAULT now(), who text NOT NULL, action text NOT NULL, layer text NOT NULL,"
        " fid bigint NOT NULL, release integer NOT NULL, feature jsonb)"
    ))  # fmt: skip
    conn.execute(text(f"CREATE INDEX IF NOT EXISTS edit_log_layer_fid ON {LIVE_SCHEMA}.edit_log (layer, fid)"))
    conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {LIVE_SCHEMA}.fid_seq START {FIRST_CREATED_FID}"))
    index_overlays(conn)


def index_overlays(conn: sqlalchemy.Connection) -> None:
    """The overlay tables of the stored releases' editable layers, made or completed (fields, spatial
    index); migration 3 on its own, for overlays made before they had an index."""
    rows = conn.execute(text("SELECT DISTINCT ON (name) info FROM cim.layer ORDER BY name, release DESC")).all()
    ensure_overlays(conn, [LayerInfo.from_json(json.dumps(r[0])) for r in rows])


def ensure_overlays(conn: sqlalchemy.Connection, infos: Iterable[LayerInfo]) -> None:
    """Overlay tables for the editable vector layers, with every field of the layer (run in the
    transaction that publishes a release)."""
    for info in infos:
        if info.spec.kind != "vector" or not info.spec.editable:
            continue
        table = live_table(info.name)
        conn.execute(text(create_table_sql(info, table, SQL_TYPES, "geometry")))
        existing = {r[0] for r in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"
        ), {"s": LIVE_SCHEMA, "t": info.name})}  # fmt: skip
        for statement in add_columns_sql(info, table, SQL_TYPES, existing):
            conn.execute(text(statement))
        if CONFLICT not in existing:  # made before edits followed their feature's identity (migration 5)
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote_ident(CONFLICT)} text"))
        # tiles and bbox reads filter the overlay by ST_Intersects too: without an index its scan
        # is costed high enough (PostGIS function costs) for a Parallel Append over the merge, whose
        # workers took ~20 ms to start for a z15 tile that takes 1.5 ms
        index = quote_ident(f"{info.name}_{GEOM}_idx")
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING GIST ({quote_ident(GEOM)})"))


def apply_edit(conn: psycopg.Connection, dialect: Dialect, info: LayerInfo, edit: Edit, release: int) -> int:
    """Apply ``edit`` in one transaction on ``conn``; returns the feature's fid."""
    if not info.spec.editable:
        raise NotEditable(f"collection {info.name!r} is not editable")
    table = live_table(info.name)
    try:
        with conn.transaction():
            # shares the pointer's row lock with other edits; a release switch (which re-bases the
            # overlay) waits for edits in flight, and an edit prepared against the release before
            # a switch is refused rather than applied to the fids of the new one
            row = conn.execute("SELECT number FROM cim.current_release FOR SHARE").fetchone()
            if row is None or row[0] != release:
                raise ReleaseChanged(f"release {row[0] if row else None} became current during the edit; try again")
            current = None
            if edit.action == "create":
                fid = conn.execute(f"SELECT nextval('{LIVE_SCHEMA}.fid_seq')").fetchone()[0]  # type: ignore[index]
            else:
                fid = edit.fid
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{info.name}:{fid}",))
                statement = select_one(info, None, False, dialect)
                rows = conn.execute(statement.sql, (fid,)).fetchall()
                current = row_to_feature(rows[0], [f.name for f in info.fields]) if rows else None
            state = prepare(info, edit, current)
            conn.execute(
                upsert_sql(info, table, dialect.geometry_param(info.srid), "%s"),
                upsert_params(info, fid, state.wkb, state.deleted, state.values),
            )
            # edits take log ids in commit order (the lock is held to the commit), so the largest
            # committed id names every edit readers see: the tile engine's edit generation
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_LOCK,))
            conn.execute(
                f"INSERT INTO {LIVE_SCHEMA}.edit_log (who, action, layer, fid, release, feature)"
                " VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
                (edit.who, edit.action, info.name, fid, release, state.log_json()),
            )
    except psycopg.Error as exc:
        raise StoreError(f"edit failed: {str(exc).strip()}") from exc
    return int(fid)


class ReleaseChanged(StoreError):
    """The current release changed between reading it and editing: the edit is not applied."""


def rebase_overlays(conn: sqlalchemy.Connection, release: int, schema: str, infos: Iterable[LayerInfo]) -> None:
    """Re-base every overlay table onto release ``release`` (schema ``schema``, its layers ``infos``)
    in the transaction that makes it current (cim/store/rebase.py). Locks the current-release row
    first, so edits in flight finish before and edits after see the new release."""
    row = conn.execute(text(
        "SELECT c.number, r.schema FROM cim.current_release c JOIN cim.release r USING (number) FOR UPDATE OF c"
    )).first()  # fmt: skip
    previous, previous_schema = (row[0], row[1]) if row is not None else (None, None)
    vector = {i.name for i in infos if i.spec.kind == "vector"}
    before = set()
    if previous_schema is not None:
        before = set(conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": previous_schema}).scalars())  # fmt: skip
    rebase = Rebase(lambda sql, params: _run(conn, sql, params), "%s")
    for layer, columns in _overlay_columns(conn).items():
        rebase.rebase_table(
            live_table(layer), columns,
            f"{quote_ident(schema)}.{quote_ident(layer)}" if layer in vector else None, release,
            f"{quote_ident(previous_schema)}.{quote_ident(layer)}" if layer in before else None, previous,
        )  # fmt: skip


def _overlay_columns(conn: sqlalchemy.Connection) -> dict[str, list[str]]:
    rows = conn.execute(text(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t"
        " USING (table_schema, table_name) WHERE c.table_schema = :s AND t.table_type = 'BASE TABLE'"
        " AND c.table_name <> 'edit_log' ORDER BY c.table_name, c.ordinal_position"
    ), {"s": LIVE_SCHEMA}).all()  # fmt: skip
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def _run(conn: sqlalchemy.Connection, sql: str, params: Any) -> list[tuple[Any, ...]]:
    result = conn.exec_driver_sql(sql, tuple(params) if params else None)
    return [tuple(r) for r in result.fetchall()] if result.returns_rows else []


def read_conflicts(conn: psycopg.Connection) -> list[EditConflict]:
    """The overlay's conflicts (rows kept aside, negative fids) of every layer."""
    tables = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = %s AND column_name = %s ORDER BY 1",
        (LIVE_SCHEMA, CONFLICT),
    ).fetchall()]  # fmt: skip
    rebase = Rebase(lambda sql, params: conn.execute(sql, tuple(params) if params else None).fetchall(), "%s")
    return [c for table in tables for c in rebase.conflicts(table, live_table(table))]


def generation_sql() -> str:
    """A scalar query: the id of the last committed edit, 0 before the first (one index lookup).
    Edits take ids in commit order (:data:`LOG_LOCK`), so every edit up to it is visible."""
    return f"SELECT coalesce(max(id), 0) FROM {LIVE_SCHEMA}.edit_log"


def read_log(conn: psycopg.Connection, layer: str | None, limit: int) -> list[EditRecord]:
    sql = f"SELECT id, edited_at, who, action, layer, fid, release, feature FROM {LIVE_SCHEMA}.edit_log"
    params: list[Any] = []
    if layer is not None:
        sql += " WHERE layer = %s"
        params.append(layer)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT %s", (*params, limit)).fetchall()
    return [EditRecord(*r[:7], feature=r[7]) for r in rows]
