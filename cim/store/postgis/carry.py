"""Layers carried over into a new release of the PostGIS store (incremental builds, cim/build/carry.py).

A carried vector layer costs no copy: the new schema gets a *view* ``cim_rNNNN."layer" AS SELECT *
FROM <the table that holds it>`` — a simple view, which the planner inlines, so the holding table's
GiST and btree indexes serve it — and the same for each of its prepared tile-geometry tables
(``"layer@zZ"``), recorded in ``cim.tile_geometry`` for the new release so ``prepare_tiles`` does
not redo them. Its ``LayerInfo`` is the holding release's. A carried raster layer's COG is hard
linked under the new release's name (copied across file systems), so pruning stays per release.

Views always name the base table (never another view), found through ``pg_depend``. Pruning a
release whose tables kept releases still read (:func:`rehome`) moves each such table — its indexes
go with it — into the schema of the oldest kept release that reads it, in place of its view there;
other views follow the table by OID. Only then is the pruned schema dropped, so ``DROP SCHEMA ...
CASCADE`` never takes a table a kept release reads. A failed build drops only its own schema: its
views depend on older tables, never the other way round.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import text

from cim.errors import StoreError
from cim.store.base import LayerData, LayerInfo
from cim.store.rasters import link
from cim.store.sql import quote_ident, tile_geometry

#: the tables a view in a release schema reads: (schema, table) of each base table behind it
_VIEW_TABLES = """
SELECT DISTINCT tn.nspname, t.relname
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> r.ev_class AND t.relkind IN ('r', 'v')
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE r.ev_class = to_regclass(:name)
"""

#: base tables of schema :s read by views in other schemas: (table, view schema, view name)
_READ_ELSEWHERE = """
SELECT DISTINCT t.relname, vn.nspname, v.relname
FROM pg_class t
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_depend d ON d.refobjid = t.oid AND d.classid = 'pg_rewrite'::regclass
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class AND v.oid <> t.oid
JOIN pg_namespace vn ON vn.oid = v.relnamespace
WHERE tn.nspname = :s AND t.relkind = 'r' AND vn.nspname <> :s
"""


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def base_table(conn: sqlalchemy.Connection, schema: str, table: str) -> str | None:
    """The qualified base table behind ``schema.table`` (itself when it is a table); None when
    there is none."""
    name = qualified(schema, table)
    for _ in range(16):  # views name base tables; a chain is followed all the same
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
        ).scalar_one_or_none()
        if kind is None:
            return None
        if kind in ("r", "p"):
            return name
        found = conn.execute(text(_VIEW_TABLES), {"name": name}).first()
        if found is None:
            return None
        name = qualified(found[0], found[1])
    return None


def holder_schema(conn: sqlalchemy.Connection, number: int) -> str:
    found = conn.execute(text("SELECT schema FROM cim.release WHERE number = :n"), {"n": number}).scalar_one_or_none()
    if found is None:
        raise StoreError(f"cannot carry a layer over from release {number}: the store no longer has it")
    return str(found)


def carry_layer(
    conn: sqlalchemy.Connection, schema: str, layer: LayerData, raster_dest: Path | None = None
) -> tuple[LayerInfo, list[int]]:
    """Take ``layer`` (``carried_from`` = N) into release schema ``schema`` as release N published
    it; returns its LayerInfo and the zooms of tile geometry carried with it (to record in
    ``cim.tile_geometry`` with the release). A raster's COG is linked to ``raster_dest``."""
    number = layer.carried_from
    assert number is not None
    source = holder_schema(conn, number)
    name = layer.spec.name
    row = conn.execute(
        text("SELECT info FROM cim.layer WHERE release = :n AND name = :name"), {"n": number, "name": name}
    ).scalar_one_or_none()
    if row is None:
        raise StoreError(f"cannot carry layer {name!r} over from release {number}: that release lacks it")
    info = LayerInfo.from_json(json.dumps(row))
    if layer.spec.kind == "raster":
        if raster_dest is None or info.raster_path is None:
            raise StoreError(f"cannot carry raster layer {name!r} over from release {number}: no file")
        link(Path(info.raster_path), raster_dest)
        return dataclasses.replace(info, raster_path=str(raster_dest)), []
    table = base_table(conn, source, name)
    if table is None:
        raise StoreError(f"cannot carry layer {name!r} over from release {number}: its table is gone")
    conn.execute(text(f"CREATE VIEW {qualified(schema, name)} AS SELECT * FROM {table}"))
    zooms = []
    prepared = conn.execute(
        text("SELECT zoom FROM cim.tile_geometry WHERE release = :n AND layer = :name ORDER BY zoom"),
        {"n": number, "name": name},
    ).scalars()
    for zoom in list(prepared):
        tiles = base_table(conn, source, tile_geometry.table_name(name, zoom))
        if tiles is not None:
            view = qualified(schema, tile_geometry.table_name(name, zoom))
            conn.execute(text(f"CREATE VIEW {view} AS SELECT * FROM {tiles}"))
            zooms.append(int(zoom))
    return info, zooms


def copy_totals(conn: Any, schema: str, source_schema: str, layer: str, metric_srid: int) -> bool:
    """Copy ``layer``'s prepared totals per division from ``source_schema`` (psycopg connection) when
    it has them for ``metric_srid``; False: total it."""
    totals = "cim_division_totals"
    source = qualified(source_schema, totals)
    if conn.execute("SELECT to_regclass(%s)", (source,)).fetchone()[0] is None:
        return False
    marker = conn.execute(
        f"SELECT 1 FROM {source} WHERE layer = %s AND level IS NULL AND metric_srid = %s", (layer, metric_srid)
    ).fetchone()
    if marker is None:
        return False
    conn.execute(f"INSERT INTO {qualified(schema, totals)} SELECT * FROM {source} WHERE layer = %s", (layer,))
    return True


def rehome(conn: sqlalchemy.Connection, schema: str, kept: dict[str, int]) -> None:
    """Before ``schema`` is dropped: move each of its tables that views of kept releases (``kept``:
    schema → number) read into the oldest such release's schema, in place of its view there."""
    readers: dict[str, list[tuple[str, str]]] = {}
    for table, view_schema, view in conn.execute(text(_READ_ELSEWHERE), {"s": schema}).all():
        if view_schema in kept:
            readers.setdefault(table, []).append((view_schema, view))
    for table, views in readers.items():
        target, view = min(views, key=lambda v: kept[v[0]])
        if view != table:
            raise StoreError(f"view {target}.{view} reads {schema}.{table}: not a carried layer")
        conn.execute(text(f"DROP VIEW {qualified(target, view)}"))
        conn.execute(text(f"ALTER TABLE {qualified(schema, table)} SET SCHEMA {quote_ident(target)}"))
