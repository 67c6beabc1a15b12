"""The PostGIS store's live layers (cim/store/live.py): schema ``cim_live_layers``.

``cim_live_layers.<layer>`` holds each live layer's rows (geometry in EPSG:4326, a GiST index),
``cim_live_layers.live_event`` the event log and ``cim_live_layers.state`` a one-row version counter
that every write increments (readers read it with the current release, CURRENT_TTL). The tables are
made by migration 7 and, for live layers the catalog gains later, whenever a store is opened. A
write is one transaction under a transaction advisory lock, so writes from every process queue up.
No release owns these tables: publishing, rollback and pruning leave them alone.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import sqlalchemy
from sqlalchemy import text

from cim.store.base import GEOM, LayerInfo
from cim.store.live import LiveEvent, LiveTransaction, live_specs
from cim.store.postgis.dialect import LIVE_LAYERS_SCHEMA, SQL_TYPES, PostgisDialect, live_layer_table
from cim.store.sql import live as live_sql
from cim.store.sql import quote_ident
from cim.store.sql.features import feature_from_rows, select_one

T = TypeVar("T")
SCHEMA = LIVE_LAYERS_SCHEMA
EVENTS = f"{SCHEMA}.live_event"
STATE = f"{SCHEMA}.state"
#: advisory lock serialising live-layer writes (0x43494D = "CIM"; +1 publish, +2 the edit log)
LIVE_LOCK = 0x43494D + 3


layer_table = live_layer_table


def create_schema(conn: sqlalchemy.Connection) -> None:
    """Migration 7: the schema, the event log and the version counter."""
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    conn.execute(text(live_sql.events_table_sql(EVENTS, SQL_TYPES)))
    conn.execute(text(f"CREATE INDEX IF NOT EXISTS live_event_fid ON {EVENTS} (layer, kind, fid)"))
    conn.execute(text(f"CREATE TABLE IF NOT EXISTS {STATE} (one boolean PRIMARY KEY DEFAULT true CHECK (one), version bigint NOT NULL)"))
    conn.execute(text(f"INSERT INTO {STATE} (version) VALUES (0) ON CONFLICT DO NOTHING"))


def ensure_tables(conn: sqlalchemy.Connection) -> None:
    """A table per live layer of the catalog, with every field (run at open, after the migrations)."""
    for spec in live_specs():
        info = LayerInfo(spec, live_sql.LIVE_SRID, 0, None)
        table = layer_table(spec.name)
        conn.execute(text(live_sql.create_table_sql(info, table, SQL_TYPES, f"geometry(Geometry, {live_sql.LIVE_SRID})")))
        existing = {r[0] for r in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"
        ), {"s": SCHEMA, "t": spec.name})}  # fmt: skip
        for f in info.fields:
            if f.name not in existing:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {quote_ident(f.name)} {SQL_TYPES[f.type]}"))
        index = quote_ident(f"{spec.name}_geom")
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gist ({quote_ident(GEOM)})"))


def version_sql() -> str:
    return f"SELECT version FROM {STATE}"


def live_state(conn: psycopg.Connection) -> tuple[list[LayerInfo], list[datetime]]:
    """The live layers' infos (count, extents) and their validity boundaries, read now."""
    infos: list[LayerInfo] = []
    boundaries: list[datetime] = []
    for spec in live_specs():
        base = LayerInfo(spec, live_sql.LIVE_SRID, 0, None)
        table = layer_table(spec.name)
        row = conn.execute(live_sql.stats_sql(base, table)).fetchone()
        times_sql = live_sql.boundaries_sql(base, table)
        if times_sql:
            boundaries.extend(r[0] for r in conn.execute(times_sql).fetchall() if r[0] is not None)
        infos.append(live_sql.with_stats(base, row))
    boundaries.sort()
    return infos, boundaries


def passed(boundaries: list[datetime]) -> int:
    """How many of the validity boundaries lie in the past."""
    return bisect.bisect_right(boundaries, datetime.now(UTC))


def write(conn: psycopg.Connection, layer: str, change: Callable[[LiveTransaction], T]) -> tuple[T, list[LiveEvent]]:
    """One write to a live layer, in one transaction under :data:`LIVE_LOCK`."""
    info = live_sql.base_info(layer)
    run = lambda sql, params: _rows(conn.execute(sql, tuple(params)))  # noqa: E731
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LIVE_LOCK,))
            tx = live_sql.SqlLiveTransaction(
                run, "%s", info, layer_table(layer), EVENTS, f"ST_GeomFromWKB(%s, {live_sql.LIVE_SRID})",
                lambda g: f"ST_AsBinary({g})",
            )  # fmt: skip
            result = change(tx)
            if not tx.changed:
                raise live_sql.Unchanged(result)
            statement = select_one(info, None, False, PostgisDialect("cim"))
            events = tx.finish(lambda fid: feature_from_rows(run(statement.sql, (fid,)), info, fid))
            conn.execute(f"UPDATE {STATE} SET version = version + 1")
            return result, events
    except live_sql.Unchanged as unchanged:
        return unchanged.result, []


def _rows(cursor: psycopg.Cursor) -> list[tuple[Any, ...]]:
    return cursor.fetchall() if cursor.description is not None else []


def read_events(conn: psycopg.Connection, layer: str, after: int, limit: int) -> list[LiveEvent]:
    live_sql.base_info(layer)
    rows = conn.execute(live_sql.events_sql(EVENTS, "%s"), (layer, after, limit)).fetchall()
    return [live_sql.event_from_row(r) for r in rows]
