"""SQL of the edits overlay, shared by both backends (see :mod:`cim.store.edits`).

An overlay table has the release table's columns plus ``deleted`` and ``conflict``; a row replaces
the release's feature of the same fid (or adds one), a row with ``deleted`` hides it, and a row with
a negative fid is an edit no feature of the current release takes (a conflict, see
:mod:`cim.store.rebase`): reads ignore it. Reads select from
:func:`merged_source` instead of the release table, so filters, sorting, keyset paging and counts
see the edited layer; layers without overlay read the release table directly.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from cim.store.base import FID, GEOM, LayerInfo
from cim.store.sql import quote_ident

DELETED = "deleted"
#: why an overlay row is not applied (NULL when it is): cim/store/rebase.py
CONFLICT = "conflict"

def merged_source(
    info: LayerInfo, release_table: str, live_table: str, live_columns: Collection[str], where: str | None = None
) -> str:
    """A derived table: the release's rows not shadowed by the overlay, and the overlay's live rows.
    Fields the overlay table lacks (added to the layer after its last edit) read as NULL there.

    ``where``, a condition on the layer's columns (unqualified), is applied inside both branches:
    directly on the release table, so that its spatial index serves an ``ST_Intersects`` there
    without relying on the planner pushing a condition through the UNION ALL and the anti-join, and
    on the overlay's rows (in a subquery, so fields it lacks read as NULL there too)."""
    names = [f.name for f in info.fields]
    release_cols = ", ".join([quote_ident(FID), quote_ident(GEOM), *map(quote_ident, names)])
    live_cols = ", ".join(
        [quote_ident(FID), quote_ident(GEOM), *(quote_ident(n) if n in live_columns else f"NULL AS {quote_ident(n)}" for n in names)]
    )
    fid = quote_ident(FID)
    live_rows = f"SELECT {live_cols} FROM {live_table} WHERE {applied()}"
    release_where = ""
    if where is not None:
        release_where = f"({where}) AND "
        live_rows = f"SELECT * FROM ({live_rows}) AS e WHERE {where}"
    return (
        f"(SELECT {release_cols} FROM {release_table} AS r"
        f" WHERE {release_where}NOT EXISTS (SELECT 1 FROM {live_table} AS e WHERE e.{fid} = r.{fid})"
        f" UNION ALL {live_rows}) AS src"
    )


def applied() -> str:
    """The overlay rows reads take: live (not deleted) and applied to the current release (conflicts
    have negative fids, which no release feature has, so they shadow nothing either)."""
    return f"NOT {quote_ident(DELETED)} AND {quote_ident(FID)} >= 0"


def count_sql(release_table: str, live_table: str, placeholder: str) -> str:
    """The number of features of an edited layer from the release's stored count (the one
    parameter): plus live overlay rows, minus release rows the overlay shadows. Costs what the
    overlay's size costs, not a scan of the release."""
    fid = quote_ident(FID)
    return (
        f"SELECT {placeholder} + (SELECT count(*) FROM {live_table} WHERE {applied()})"
        f" - (SELECT count(*) FROM {live_table} AS e WHERE EXISTS"
        f" (SELECT 1 FROM {release_table} AS r WHERE r.{fid} = e.{fid}))"
    )


def create_table_sql(info: LayerInfo, table: str, types: dict[str, str], geometry_type: str) -> str:
    """CREATE TABLE of an overlay; ``types``: the backend's SQL type of each field type."""
    columns = [f"{quote_ident(FID)} BIGINT PRIMARY KEY", f"{quote_ident(GEOM)} {geometry_type}",
               f"{quote_ident(DELETED)} BOOLEAN NOT NULL DEFAULT FALSE", f"{quote_ident(CONFLICT)} {types['string']}"]  # fmt: skip
    columns += [f"{quote_ident(f.name)} {types[f.type]}" for f in info.fields]
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})"


def add_columns_sql(info: LayerInfo, table: str, types: dict[str, str], existing: Collection[str]) -> list[str]:
    """ALTER TABLEs adding the layer's fields the overlay table lacks."""
    return [
        f"ALTER TABLE {table} ADD COLUMN {quote_ident(f.name)} {types[f.type]}" for f in info.fields if f.name not in existing
    ]


def upsert_sql(info: LayerInfo, table: str, geometry_sql: str, placeholder: str) -> str:
    """INSERT ... ON CONFLICT (fid) DO UPDATE of one overlay row: fid, geometry (``geometry_sql``
    takes the WKB parameter), deleted, then every field."""
    names = [FID, GEOM, DELETED, *(f.name for f in info.fields)]
    values = [placeholder, geometry_sql, placeholder, *([placeholder] * len(info.fields))]
    updates = ", ".join(f"{quote_ident(n)} = EXCLUDED.{quote_ident(n)}" for n in names[1:])
    return (
        f"INSERT INTO {table} ({', '.join(map(quote_ident, names))}) VALUES ({', '.join(values)})"
        f" ON CONFLICT ({quote_ident(FID)}) DO UPDATE SET {updates}"
    )


def upsert_params(info: LayerInfo, fid: int, wkb: bytes | None, deleted: bool, values: dict[str, Any]) -> tuple[Any, ...]:
    return (fid, wkb, deleted, *(values.get(f.name) for f in info.fields))
