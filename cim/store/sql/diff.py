"""SQL comparing one layer across two releases (``Store.diff_releases``), shared by both back-ends.

Features are matched by their identity across releases, (``source``, ``source_id``), as the edits
overlay follows them (cim/store/rebase.py): a ``FULL JOIN`` of the two release tables on it. A
feature of only the later release is *added*, of only the earlier one *removed*; one of both whose
values or geometry differ is *changed*, with a flag per compared field (``IS DISTINCT FROM``: NULLs
compare as values) and the geometry compared as WKB. Features without a full identity are never
matched: they come as removed and added. The database compares; only the differences come back.

With an area, only features whose geometry intersects it in either release are compared: their
identities are selected first, through each release's spatial index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cim.store.base import FID, GEOM, LayerInfo
from cim.store.sql import quote_ident
from cim.store.sql.dialect import Dialect, Statement

#: the identity of a feature across releases
IDENTITY = ("source", "source_id")
#: what a row of :func:`diff_statement` says happened to its feature
ADDED, REMOVED, CHANGED = "added", "removed", "changed"


def compared_fields(before: LayerInfo | None, after: LayerInfo | None) -> list[str]:
    """The fields both releases' tables have (identity excluded), in the later release's order."""
    if before is None or after is None:
        return []
    names = {f.name for f in before.fields}
    return [f.name for f in after.fields if f.name in names and f.name not in IDENTITY]


def diff_statement(
    before: LayerInfo | None,
    after: LayerInfo | None,
    dialects: Sequence[Dialect],
    area_wkb: bytes | None = None,
    out_srid: int | None = None,
    geometry: bool = True,
) -> Statement:
    """Rows (source, source_id, fid before, fid after, change, geometry WKB in ``out_srid``, one
    boolean per :func:`compared_fields` then one for the geometry) of the features that differ.
    ``before``/``after``: the layer in each release (None: the release lacks it, so every feature of
    the other is added or removed); ``dialects``: the two releases' dialects, in that order;
    ``area_wkb``: an area in the layer's storage CRS; without ``geometry`` the geometry column is
    NULL (the change feed's list: cim/sharing/changes.py reads the geometry of a page's features).

    A dialect whose reads merge an edits overlay (the current release as served, ``Dialect.source``)
    compares the layer as served: the later side of a change feed to the current release."""
    if before is None and after is None:
        raise ValueError("the layer is in neither release")
    da, db = dialects
    fields = compared_fields(before, after)
    info = after or before
    assert info is not None
    srid = info.srid
    params: list[Any] = []
    q_fid, q_geom = quote_ident(FID), quote_ident(GEOM)
    ident = ", ".join(quote_ident(c) for c in IDENTITY)
    on = " AND ".join(f"a.{quote_ident(c)} = b.{quote_ident(c)}" for c in IDENTITY)

    def side(layer: LayerInfo | None, dialect: Dialect, alias: str) -> str:
        cols = ", ".join([q_fid, ident, q_geom, *(quote_ident(f) for f in fields)])
        if layer is None:  # the release has no such layer: an empty side of the same columns
            # (no field is compared then: compared_fields is empty)
            nulls = ", ".join(
                [f"CAST(NULL AS {dialect.sql_types['integer']}) AS {q_fid}"]
                + [f"CAST(NULL AS {dialect.sql_types['string']}) AS {quote_ident(c)}" for c in IDENTITY]
                + [f"{_null_geometry(dialect)} AS {q_geom}"]
            )
            return f"(SELECT {nulls} WHERE 1 = 0) AS {alias}"
        if area_wkb is None:
            return f"(SELECT {cols} FROM {dialect.source(layer)}) AS {alias}"
        return f"(SELECT {cols} FROM {dialect.source(layer)} WHERE {ident_in}) AS {alias}"

    ident_in = ""
    if area_wkb is not None:
        picks = []
        for layer, dialect in ((before, da), (after, db)):
            if layer is not None:
                picks.append(f"SELECT {ident} FROM {dialect.source(layer)} WHERE ST_Intersects({q_geom}, {dialect.geometry_param(srid)})")
                params.append(area_wkb)
        ident_in = f"({ident}) IN ({' UNION '.join(picks)})"
        # the same identities select each side present: its parameters go once per such side
        params = params * sum(layer is not None for layer in (before, after))
    flags = [f"(a.{quote_ident(f)} IS DISTINCT FROM b.{quote_ident(f)})" for f in fields]
    geometry_flag = f"({da.wkb('a.' + q_geom)} IS DISTINCT FROM {db.wkb('b.' + q_geom)})"
    shape = f"CASE WHEN b.{q_fid} IS NULL THEN a.{q_geom} ELSE b.{q_geom} END"
    if out_srid is not None and out_srid != srid:
        shape = da.transform(shape, srid, out_srid)
    change = f"CASE WHEN a.{q_fid} IS NULL THEN '{ADDED}' WHEN b.{q_fid} IS NULL THEN '{REMOVED}' ELSE '{CHANGED}' END"
    differs = " OR ".join([f"a.{q_fid} IS NULL", f"b.{q_fid} IS NULL", *flags, geometry_flag])
    select = ", ".join([
        f"coalesce(a.{quote_ident('source')}, b.{quote_ident('source')})",
        f"coalesce(a.{quote_ident('source_id')}, b.{quote_ident('source_id')})",
        f"a.{q_fid}", f"b.{q_fid}", change, da.wkb(shape) if geometry else "NULL", *flags, geometry_flag,
    ])  # fmt: skip
    sql = (
        f"SELECT {select} FROM {side(before, da, 'a')} FULL JOIN {side(after, db, 'b')} ON {on}"
        f" WHERE {differs} ORDER BY 1, 2, 3, 4"
    )
    return Statement(sql, tuple(params))


def _null_geometry(dialect: Dialect) -> str:
    return f"CAST(NULL AS {dialect.geometry_type.split('(')[0]})"


__all__ = ["ADDED", "CHANGED", "IDENTITY", "REMOVED", "compared_fields", "diff_statement"]
