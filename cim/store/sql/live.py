"""SQL of live layers (cim/store/live.py), shared by both back-ends.

A live layer's table has ``fid``, ``geom`` (CRS84 lon/lat, EPSG:4326), ``public`` (rows kept off
every public view when false: e.g. CAP alerts of status Test or Exercise) and the layer's fields;
reads select its public rows (:func:`source`). The event log (one table per store) holds
``seq, layer, kind, fid, at, feature``: ``feature`` is the GeoJSON text of the row as the write
that logged the event left it. :class:`SqlLiveTransaction` is the one implementation of
:class:`cim.store.live.LiveTransaction` both back-ends run inside their own atomic step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from cim.errors import LayerNotFound
from cim.store.base import FID, GEOM, LayerInfo
from cim.store.live import LiveEvent, LiveRow, live_specs
from cim.store.sql import quote_ident
from cim.store.sql.temporal import TimeInterval

PUBLIC = "public"
#: the srid of every live layer's geometry (CRS84 x/y)
LIVE_SRID = 4326
EVENT_COLUMNS = ("seq", "layer", "kind", "fid", "event_time", "feature")

Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def create_table_sql(info: LayerInfo, table: str, types: dict[str, str], geometry_type: str) -> str:
    columns = [f"{quote_ident(FID)} BIGINT PRIMARY KEY", f"{quote_ident(GEOM)} {geometry_type}",
               f"{quote_ident(PUBLIC)} BOOLEAN NOT NULL DEFAULT TRUE"]  # fmt: skip
    columns += [f"{quote_ident(f.name)} {types[f.type]}" for f in info.fields]
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})"


def events_table_sql(table: str, types: dict[str, str]) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (seq BIGINT PRIMARY KEY, layer {types['string']} NOT NULL,"
        f" kind {types["string"]} NOT NULL, fid BIGINT NOT NULL, event_time {types['datetime']} NOT NULL,"
        f" feature {types['string']})"
    )


def source(info: LayerInfo, table: str, where: str | None = None) -> str:
    """The live layer's public rows as a derived table (``where`` on its columns applied inside)."""
    cols = ", ".join([quote_ident(FID), quote_ident(GEOM), *(quote_ident(f.name) for f in info.fields)])
    condition = quote_ident(PUBLIC) + (f" AND ({where})" if where else "")
    return f"(SELECT {cols} FROM {table} WHERE {condition}) AS src"


def empty_source(info: LayerInfo, types: dict[str, str], geometry_type: str) -> str:
    """A derived table with the live layer's columns and no row (before its first write)."""
    cols = [f"CAST(NULL AS BIGINT) AS {quote_ident(FID)}", f"CAST(NULL AS {geometry_type}) AS {quote_ident(GEOM)}"]
    cols += [f"CAST(NULL AS {types[f.type]}) AS {quote_ident(f.name)}" for f in info.fields]
    return f"(SELECT {', '.join(cols)} WHERE false) AS src"


def in_force(info: LayerInfo, moment: datetime) -> str:
    """A condition (SQL literal, no parameter: tiles have none) selecting the rows valid at ``moment``."""
    start, end = info.spec.temporal_field, info.spec.temporal_end_field
    at = f"CAST('{moment.astimezone(UTC).isoformat()}' AS TIMESTAMPTZ)"
    if start is None:
        return "true"
    condition = f"{quote_ident(start)} <= {at}"
    if end is not None:
        condition += f" AND ({quote_ident(end)} IS NULL OR {quote_ident(end)} > {at})"
    return condition


def now_interval() -> TimeInterval:
    now = datetime.now(UTC)
    return TimeInterval(now, now)


def stats_sql(info: LayerInfo, table: str) -> str:
    """count, bbox (4 values) and the temporal extent (min start, max end, whether an end is open)
    of the live layer's public rows."""
    start, end = info.spec.temporal_field, info.spec.temporal_end_field
    g = quote_ident(GEOM)
    times = "NULL, NULL, false"
    if start is not None:
        last = f"max({quote_ident(end)})" if end else f"max({quote_ident(start)})"
        open_end = f"bool_or({quote_ident(end)} IS NULL)" if end else "false"
        times = f"min({quote_ident(start)}), {last}, {open_end}"
    return (
        f"SELECT count(*), min(ST_XMin({g})), min(ST_YMin({g})), max(ST_XMax({g})), max(ST_YMax({g})), {times}"
        f" FROM {table} WHERE {quote_ident(PUBLIC)}"
    )


def boundaries_sql(info: LayerInfo, table: str) -> str | None:
    """The instants where a public row starts or stops being valid (tile keys change at each)."""
    start, end = info.spec.temporal_field, info.spec.temporal_end_field
    if start is None:
        return None
    parts = [f"SELECT {quote_ident(start)} AS t FROM {table} WHERE {quote_ident(PUBLIC)}"]
    if end is not None:
        parts.append(f"SELECT {quote_ident(end)} FROM {table} WHERE {quote_ident(PUBLIC)} AND {quote_ident(end)} IS NOT NULL")
    return f"SELECT DISTINCT t FROM ({' UNION ALL '.join(parts)}) AS b ORDER BY t"


def base_info(layer: str) -> LayerInfo:
    """The LayerInfo of live layer ``layer`` before its content is counted; LayerNotFound."""
    for spec in live_specs():
        if spec.name == layer:
            return LayerInfo(spec, LIVE_SRID, 0, None)
    raise LayerNotFound(f"no live layer {layer!r} (live layers: {', '.join(s.name for s in live_specs()) or 'none'})")


def with_stats(base: LayerInfo, row: Sequence[Any] | None) -> LayerInfo:
    """``base`` with the count and extents of a :func:`stats_sql` row."""
    if row is None or not row[0]:
        return base
    count, minx, miny, maxx, maxy, first, last, open_end = row
    bbox = (minx, miny, maxx, maxy) if minx is not None else None
    return replace(base, count=int(count), bbox=bbox, interval=(_iso(first), None if open_end else _iso(last)))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


class Unchanged(Exception):
    """Raised inside a back-end's write when the change wrote nothing: nothing is committed or linked."""

    def __init__(self, result: Any) -> None:
        self.result = result


def event_from_row(row: Sequence[Any]) -> LiveEvent:
    seq, layer, kind, fid, at, feature = row
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return LiveEvent(int(seq), layer, kind, int(fid), at, orjson.loads(feature) if feature else {})


def events_sql(table: str, placeholder: str) -> str:
    cols = ", ".join(EVENT_COLUMNS)
    return f"SELECT {cols} FROM {table} WHERE layer = {placeholder} AND seq > {placeholder} ORDER BY seq LIMIT {placeholder}"


class SqlLiveTransaction:
    """:class:`cim.store.live.LiveTransaction` over a back-end's connection, inside its atomic step.

    ``run(sql, params)`` executes one statement and returns its rows; ``geometry_sql`` is the
    back-end's geometry-from-one-WKB-parameter expression; ``wkb_sql`` its geometry-to-WKB."""

    def __init__(self, run: Run, placeholder: str, info: LayerInfo, table: str, events: str,
                 geometry_sql: str, wkb_sql: Callable[[str], str]) -> None:  # fmt: skip
        self.run, self.p, self.info, self.table, self.events = run, placeholder, info, table, events
        self.geometry_sql, self.wkb_sql = geometry_sql, wkb_sql
        self.names = [f.name for f in info.fields]
        self.logged: list[int] = []
        #: whether this write changed anything (a write that did not links no new version)
        self.changed = False

    def _select(self) -> str:
        cols = ", ".join([quote_ident(FID), self.wkb_sql(quote_ident(GEOM)), *map(quote_ident, self.names)])
        return f"SELECT {cols} FROM {self.table}"

    def _row(self, row: Sequence[Any]) -> LiveRow:
        wkb = row[1]
        return LiveRow(int(row[0]), dict(zip(self.names, row[2:])), bytes(wkb) if wkb is not None else None)

    def rows(self, field: str, value: Any) -> list[LiveRow]:
        if field not in self.names and field != FID:
            raise KeyError(f"live layer {self.info.name!r} has no field {field!r}")
        sql = f"{self._select()} WHERE {quote_ident(field)} = {self.p} ORDER BY {quote_ident(FID)}"
        return [self._row(r) for r in self.run(sql, (value,))]

    def due(self, now: datetime, open_field: str | None = None) -> list[LiveRow]:
        end = self.info.spec.temporal_end_field
        if end is None:
            return []
        open_condition = f" AND {quote_ident(open_field)} IS NULL" if open_field else ""
        sql = (
            f"{self._select()} AS r WHERE {quote_ident(PUBLIC)} AND {quote_ident(end)} <= {self.p}{open_condition}"
            f" AND NOT EXISTS (SELECT 1 FROM {self.events} AS e WHERE e.layer = {self.p}"
            f" AND e.kind IN ('expired', 'cancelled') AND e.fid = r.{quote_ident(FID)}) ORDER BY {quote_ident(FID)}"
        )
        return [self._row(r) for r in self.run(sql, (now, self.info.name))]

    def insert(self, values: dict[str, Any], wkb: bytes | None, public: bool = True) -> int:
        unknown = set(values) - set(self.names)
        if unknown:
            raise KeyError(f"live layer {self.info.name!r} has no fields {sorted(unknown)}")
        fid = int(self.run(f"SELECT coalesce(max({quote_ident(FID)}), 0) + 1 FROM {self.table}", ())[0][0])
        names = [FID, GEOM, PUBLIC, *values]
        marks = [self.p, self.geometry_sql, self.p, *([self.p] * len(values))]
        sql = f"INSERT INTO {self.table} ({', '.join(map(quote_ident, names))}) VALUES ({', '.join(marks)})"
        self.run(sql, (fid, wkb, public, *values.values()))
        self.changed = True
        return fid

    def update(self, fid: int, values: dict[str, Any]) -> None:
        if not values:
            return
        self.changed = True
        sets = ", ".join(f"{quote_ident(n)} = {self.p}" for n in values)
        self.run(f"UPDATE {self.table} SET {sets} WHERE {quote_ident(FID)} = {self.p}", (*values.values(), fid))

    def append_event(self, kind: str, fid: int, at: datetime) -> int:
        seq = int(self.run(f"SELECT coalesce(max(seq), 0) + 1 FROM {self.events}", ())[0][0])
        self.run(
            f"INSERT INTO {self.events} (seq, layer, kind, fid, event_time) VALUES ({', '.join([self.p] * 5)})",
            (seq, self.info.name, kind, fid, at),
        )
        self.logged.append(seq)
        self.changed = True
        return seq

    def finish(self, feature: Callable[[int], dict[str, Any]]) -> list[LiveEvent]:
        """Write each logged event's feature (the row as this write leaves it); the events."""
        events: list[LiveEvent] = []
        for seq in self.logged:
            row = self.run(f"SELECT {', '.join(EVENT_COLUMNS)} FROM {self.events} WHERE seq = {self.p}", (seq,))[0]
            text = orjson.dumps(feature(int(row[3]))).decode()
            self.run(f"UPDATE {self.events} SET feature = {self.p} WHERE seq = {self.p}", (text, seq))
            events.append(event_from_row((*row[:5], text)))
        return events
