"""The embedded store's live layers (cim/store/live.py): immutable DuckDB files behind a link.

Layout beside the releases::

    cim.duckdb.d/live-layers/current.duckdb -> l000004.duckdb   symlink: the live layers' current version
    cim.duckdb.d/live-layers/l000003.duckdb l000004.duckdb      versions (the last few are kept)
    cim.duckdb.d/live-layers.lock                               flock taken by writers

As for the edits overlay (:mod:`cim.store.duckdb.live`, whose machinery this reuses): a write copies
the current version into a new file, applies the change and its events in one transaction,
checkpoints, and switches the link with one ``rename(2)``; readers attach the version the link
names to their release connection. One version holds every live layer's table and the event log
(``live_event``), and belongs to no release: releases and rollbacks leave it alone.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from cim.store.base import LayerInfo
from cim.store.budget import interrupting
from cim.store.duckdb.dialect import SQL_TYPES, DuckDBDialect, LiveView
from cim.store.duckdb.live import KEEP, LiveFiles
from cim.store.live import LiveEvent, LiveTransaction, live_specs
from cim.store.sql import live as live_sql
from cim.store.sql import quote_ident
from cim.store.sql.features import feature_from_rows, select_one

T = TypeVar("T")
EVENTS = "live_event"


class LiveLayerFiles(LiveFiles):
    """The versions of an embedded store's live layers (``root`` is ``<store>.d``)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.dir = root / "live-layers"
        self.legacy_link = self.dir / "none"
        self.lock_path = root / "live-layers.lock"

    def link(self, release: int) -> Path:
        return self.dir / "current.duckdb"

    def prune(self, release: int) -> None:
        named = {os.readlink(self.link(0))} if self.link(0).is_symlink() else set()
        for old in sorted(self.dir.glob("l[0-9]*.duckdb"))[:-KEEP]:
            if old.name not in named:
                old.unlink(missing_ok=True)


class _WritingDialect(DuckDBDialect):
    """The dialect inside a write: the live tables are the file being written (the current database)."""

    def live_table(self, info: LayerInfo) -> str | None:
        return quote_ident(info.name)


def _version(path: Path | None) -> int:
    return int(path.stem[1:]) if path is not None and path.stem[1:].isdigit() else 0


class DuckDBLiveLayers:
    """Store methods of live layers for :class:`cim.store.duckdb.store.DuckDBStore`."""

    _live_layers: LiveLayerFiles
    #: (version file, its LayerInfos, its validity boundaries), the last read
    _live_cache: tuple[Path, list[LayerInfo], list[datetime]] | None = None
    _live_cache_lock = threading.Lock()

    def _live_view(self, reader: Any) -> LiveView | None:
        return self._live_layers.view(reader.live_layers, 0)

    def _live_state(self, reader: Any) -> tuple[list[LayerInfo], list[datetime]]:
        """The live layers' infos (count, extent, temporal extent) and validity boundaries, per version."""
        view = self._live_view(reader)
        cache = self._live_cache
        if cache is not None and view is not None and cache[0] == view.path:
            return cache[1], cache[2]
        infos: list[LayerInfo] = []
        boundaries: list[datetime] = []
        cur = reader.cursor()
        for spec in live_specs():
            base = LayerInfo(spec, live_sql.LIVE_SRID, 0, None)
            if view is None or spec.name not in view.columns:
                infos.append(base)
                continue
            table = view.table(spec.name)
            with interrupting(cur.interrupt):
                row = cur.execute(live_sql.stats_sql(base, table)).fetchone()
                times_sql = live_sql.boundaries_sql(base, table)
                times = [r[0] for r in cur.execute(times_sql).fetchall()] if times_sql else []
            infos.append(live_sql.with_stats(base, row))
            boundaries.extend(t if t.tzinfo else t.replace(tzinfo=UTC) for t in times if t is not None)
        boundaries.sort()
        if view is not None:
            with self._live_cache_lock:
                self._live_cache = (view.path, infos, boundaries)
        return infos, boundaries

    def live_version(self, layer: str) -> int:
        return _version(self._live_layers.current(0))

    def live_generation(self) -> int:
        """Grows with every write to a live layer and at every instant where a row starts or stops
        being valid (tiles of live layers are keyed by it)."""
        path = self._live_layers.current(0)
        if path is None:
            return 0
        reader = self._read()  # type: ignore[attr-defined]
        _, boundaries = self._live_state(reader)
        return _version(path) + bisect.bisect_right(boundaries, datetime.now(UTC))

    def live_events(self, layer: str, after: int = 0, limit: int = 1000) -> list[LiveEvent]:
        live_sql.base_info(layer)
        reader = self._read()  # type: ignore[attr-defined]
        view = self._live_view(reader)
        if view is None or EVENTS not in view.columns:
            return []
        cur = reader.cursor()
        sql = live_sql.events_sql(view.table(EVENTS), "?")
        with interrupting(cur.interrupt):
            rows = cur.execute(sql, (layer, after, limit)).fetchall()
        return [live_sql.event_from_row(r) for r in rows]

    def live_write(self, layer: str, change: Callable[[LiveTransaction], T]) -> tuple[T, list[LiveEvent]]:
        info = live_sql.base_info(layer)
        files = self._live_layers

        def apply(con: duckdb.DuckDBPyConnection) -> tuple[T, list[LiveEvent]]:
            table = quote_ident(layer)
            con.execute(live_sql.create_table_sql(info, table, SQL_TYPES, "GEOMETRY"))
            existing = {r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND table_name = ?", (layer,)
            ).fetchall()}  # fmt: skip
            for f in info.fields:
                if f.name not in existing:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(f.name)} {SQL_TYPES[f.type]}")
            con.execute(live_sql.events_table_sql(EVENTS, SQL_TYPES))
            run = lambda sql, params: con.execute(sql, list(params)).fetchall()  # noqa: E731
            tx = live_sql.SqlLiveTransaction(run, "?", info, table, EVENTS, "ST_GeomFromWKB(?)", lambda g: f"ST_AsWKB({g})")
            result = change(tx)
            if not tx.changed:
                raise live_sql.Unchanged(result)
            statement = select_one(info, None, False, _WritingDialect())
            events = tx.finish(lambda fid: feature_from_rows(run(statement.sql, (fid,)), info, fid))
            return result, events

        try:
            with files.locked():
                return files.write(0, apply)
        except live_sql.Unchanged as unchanged:
            return unchanged.result, []

