"""SQL for feature queries, shared by both backends.

The backends differ only in a few spellings (placeholders, how a CRS is named to ST_Transform,
where the tables live); a :class:`~cim.store.sql.dialect.Dialect` holds those, and
:func:`select_features` (pages), :func:`select_one` (one feature) and :func:`select_frame`
(geodataframes) build the same statement for both. Every value is bound as a parameter; identifiers come only from the
layer's own schema and are quoted.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Sequence

import orjson

from cim.errors import InvalidQuery
from cim.store.base import FID, GEOM, FeaturePage, FeatureQuery, LayerInfo, not_found
from cim.store.sql import quote_ident
from cim.store.sql.cql2 import translate
from cim.store.sql.dialect import Dialect, Statement
from cim.store.sql.keyset import Cursor, keyset_condition
from cim.store.sql.live import now_interval
from cim.store.sql.temporal import TimeInterval, datetime_condition, overlap_condition
from cim.store.write_checks import storage_domain


def _check_property(info: LayerInfo, name: str, what: str) -> str:
    if name not in info.field_types:
        known = ", ".join(info.field_types)
        raise InvalidQuery(f"unknown property {name!r} in {what} of collection {info.name!r} (known: {known})")
    return name


def coerce_value(info: LayerInfo, name: str, value: Any) -> Any:
    """Turn a query-string value into the Python type of the property, or raise InvalidQuery."""
    ftype = info.field_types[name]
    if not isinstance(value, str):
        return value
    try:
        if ftype == "integer":
            return int(value)
        if ftype == "number":
            return float(value)
        if ftype == "boolean":
            lowered = value.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return lowered in ("true", "1")
        if ftype == "date":
            return date.fromisoformat(value)
        if ftype == "datetime":
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidQuery(f"property {name!r} of collection {info.name!r} is of type {ftype}; got {value!r}") from None
    return value


def _where(info: LayerInfo, query: FeatureQuery, dialect: Dialect, keyset: bool = False) -> tuple[str, list[Any]]:
    """The WHERE clause of ``query``: bbox, property equality, datetime, CQL2 filter and (for
    pages, with ``keyset``) the cursor's keyset condition."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.bbox is not None:
        clauses.append(dialect.bbox_filter(info.srid))
        params.extend(query.bbox)
    for name, value in query.equals:
        _check_property(info, name, "the property filters")
        clauses.append(f"{quote_ident(name)} = {dialect.placeholder}")
        params.append(coerce_value(info, name, value))
    temporal, until = info.spec.temporal_field, info.spec.temporal_end_field
    interval = time_selection(info, query)
    if interval is not None and temporal is not None and until is not None:
        sql, values = overlap_condition(
            quote_ident(temporal), quote_ident(until), info.field_types[temporal], interval, dialect.placeholder
        )
        clauses.append(sql)
        params.extend(values)
    elif interval is not None and temporal is not None:
        sql, values = datetime_condition(
            quote_ident(temporal), info.field_types[temporal], interval, dialect.placeholder
        )
        clauses.append(sql)
        params.extend(values)
    if query.filter is not None:
        sql, values = translate(query.filter, info, dialect)
        clauses.append(sql)
        params.extend(values)
    if keyset and query.cursor is not None:
        sql, values = _keyset(info, query, dialect)
        clauses.append(sql)
        params.extend(values)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def time_selection(info: LayerInfo, query: FeatureQuery) -> TimeInterval | None:
    """The time a query selects: its ``datetime``; for a live layer valid over intervals without
    one, now (the features in force)."""
    if query.datetime is not None:
        return query.datetime
    if info.spec.live and info.spec.temporal_end_field is not None:
        return now_interval()
    return None


def _keyset(info: LayerInfo, query: FeatureQuery, dialect: Dialect) -> tuple[str, list[Any]]:
    names = [_check_property(info, name, "sortby") for name, _ in query.sortby]
    values = [None if v is None else coerce_value(info, n, v) for n, v in zip(names, query.cursor.values)]
    return keyset_condition(
        query.cursor, query.sortby, [quote_ident(n) for n in names], values, quote_ident(FID), dialect.placeholder
    )


def select_features(info: LayerInfo, query: FeatureQuery, dialect: Dialect) -> Statement:
    """SELECT fid, geojson, *properties for one page, in a stable order (sort keys, then fid)."""
    names = list(query.properties) if query.properties is not None else [f.name for f in info.fields]
    for name in names:
        _check_property(info, name, "properties")
    columns = [quote_ident(FID)]
    if query.skip_geometry:
        columns.append("NULL")
    else:
        columns.append(dialect.geojson(output_geometry(info, query.out_srid, query.flip_axes, dialect, null_outside=True)))
    columns.extend(quote_ident(n) for n in names)
    # the sort keys again, last: the next page's cursor is made of the last row's
    columns.extend(quote_ident(_check_property(info, name, "sortby")) for name, _ in query.sortby)
    where, params = _where(info, query, dialect, keyset=True)
    order = [f"{quote_ident(name)} {'ASC' if asc else 'DESC'} NULLS LAST" for name, asc in query.sortby]
    order.append(quote_ident(FID))
    offset = 0 if query.cursor is not None else query.offset
    # one row more than asked: tells whether there is a next page
    limit = query.limit + 1 if query.limit > 0 else 0
    source, ordering = dialect.source(info), ", ".join(order)
    page = f" ORDER BY {ordering} LIMIT {dialect.placeholder} OFFSET {dialect.placeholder}"
    if offset:
        # deferred join: the skipped rows are read for their fid only, the page's rows are then
        # looked up by fid and only they are turned into GeoJSON (an OFFSET over the full select
        # list would build the GeoJSON of every skipped row: 113 ms against 10 ms at row 50 000)
        fids = f"SELECT {quote_ident(FID)} FROM {source}{where}{page}"
        sql = f"SELECT {', '.join(columns)} FROM {source} WHERE {quote_ident(FID)} IN ({fids}) ORDER BY {ordering}"
    else:
        sql = f"SELECT {', '.join(columns)} FROM {source}{where}{page}"
    return Statement(sql, tuple(params) + (limit, offset))


def frame_fields(info: LayerInfo, columns: Sequence[str] | None = None) -> list[str]:
    """The properties :func:`select_frame` reads: the layer's fields, or those of them in ``columns``."""
    return [f.name for f in info.fields if columns is None or f.name in columns]


def select_frame(
    info: LayerInfo, dialect: Dialect, bbox: tuple[float, float, float, float] | None = None,
    out_srid: int | None = None, limit: int | None = None, columns: Sequence[str] | None = None,
    equals: Sequence[tuple[str, Any]] = (),
) -> Statement:
    """SELECT fid, *properties, wkb (the geometry as WKB, in ``out_srid``) in fid order: the rows of
    :meth:`cim.store.Store.read_frame` (:func:`cim.store.frames.to_frame` makes the frame). With
    ``columns``, only those properties (reading fewer columns is what makes a bbox read fast on
    DuckDB: fetching a long text column of the rows an R-tree scan found costs ~0.5 s at 1,000,000 rows)."""
    geom = output_geometry(info, out_srid, False, dialect)
    cols = ", ".join([quote_ident(FID)] + [quote_ident(name) for name in frame_fields(info, columns)])
    sql = f"SELECT {cols}, {dialect.wkb(geom)} AS wkb FROM {dialect.source(info)}"
    params: list[Any] = []
    clauses: list[str] = []
    if bbox is not None:
        clauses.append(dialect.bbox_filter(info.srid))
        params.extend(bbox)
    for name, value in equals:  # (``equals``: property = value, e.g. a feature's identity)
        clauses.append(f"{quote_ident(_check_property(info, name, 'the property filters'))} = {dialect.placeholder}")
        params.append(value)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += f" ORDER BY {quote_ident(FID)}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return Statement(sql, tuple(params))


def page_from_rows(rows: Sequence[Sequence[Any]], info: LayerInfo, query: FeatureQuery, matched: int | None) -> FeaturePage:
    """The page of features in ``rows`` (from :func:`select_features`), with the next page's cursor."""
    names = list(query.properties) if query.properties is not None else [f.name for f in info.fields]
    next_cursor = None
    if query.limit > 0 and len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        start = query.cursor.position if query.cursor is not None else query.offset
        next_cursor = Cursor(tuple(query.sortby), tuple(last[2 + len(names) :]), int(last[0]), start + query.limit)
    encoded = query.encoded_geometry
    return FeaturePage([row_to_feature(r, names, encoded) for r in rows], matched, next_cursor)


def is_filtered(info: LayerInfo, query: FeatureQuery) -> bool:
    """Whether ``query`` selects part of the layer (so its count is not the layer's)."""
    has_time = time_selection(info, query) is not None and info.spec.temporal_field is not None
    return bool(query.bbox is not None or query.equals or has_time or query.filter is not None)


def count_features(info: LayerInfo, query: FeatureQuery, dialect: Dialect) -> Statement | None:
    """A COUNT(*) for filtered queries; None when the release's stored count is exact."""
    where, params = _where(info, query, dialect)
    if not where:
        return dialect.count_all(info)
    return Statement(f"SELECT count(*) FROM {dialect.source(info)}{where}", tuple(params))


def output_geometry(
    info: LayerInfo, out_srid: int | None, flip_axes: bool, dialect: Dialect, null_outside: bool = False
) -> str:
    """The geometry column reprojected to ``out_srid`` and, if asked, in y/x axis order.

    With ``null_outside`` (the GeoJSON of features), a geometry outside the storage CRS's domain
    (:func:`cim.store.write_checks.storage_domain`: what builds and writes guarantee, so only one
    stored before those checks) reprojects to NULL: PostGIS would fail the whole statement on it,
    DuckDB make infinite coordinates, which it writes as an empty string, not GeoJSON."""
    geom = quote_ident(GEOM)
    if out_srid is not None and out_srid != info.srid:
        transformed = dialect.transform(geom, info.srid, out_srid)
        inside = _inside_storage_domain(info, geom) if null_outside else ""
        geom = f"CASE WHEN {inside} THEN {transformed} END" if inside else transformed
    return f"ST_FlipCoordinates({geom})" if flip_axes else geom


def _inside_storage_domain(info: LayerInfo, geom: str) -> str:
    """A condition: ``geom``'s bounds lie inside the storage CRS's domain ("" when it has no bounds)."""
    functions = ("ST_XMin", "ST_YMin", "ST_XMax", "ST_YMax")
    operators = (">=", ">=", "<=", "<=")
    return " AND ".join(
        f"{function}({geom}) {operator} {bound!r}"
        for function, operator, bound in zip(functions, operators, storage_domain(info.srid))
        if math.isfinite(bound)
    )


def select_one(info: LayerInfo, out_srid: int | None, flip_axes: bool, dialect: Dialect) -> Statement:
    geom = output_geometry(info, out_srid, flip_axes, dialect, null_outside=True)
    cols = ", ".join(quote_ident(f.name) for f in info.fields)
    sql = (
        f"SELECT {quote_ident(FID)}, {dialect.geojson(geom)}, {cols} FROM {dialect.source(info)}"
        f" WHERE {quote_ident(FID)} = {dialect.placeholder}"
    )
    return Statement(sql, ())


def select_by_fids(info: LayerInfo, dialect: Dialect, fids: Sequence[int], out_srid: int | None, flip_axes: bool) -> Statement:
    """SELECT fid, GeoJSON, *properties of the features whose fid is in ``fids`` (a page of a
    change feed: cim/sharing/changes.py), in no particular order."""
    geom = output_geometry(info, out_srid, flip_axes, dialect, null_outside=True)
    cols = ", ".join(quote_ident(f.name) for f in info.fields)
    ids = sorted({int(f) for f in fids}) or [-1]
    ph, fid = dialect.placeholder, quote_ident(FID)
    # the ids as one array parameter, joined: DuckDB evaluates a long IN list row by row (0.14 s for
    # 1,000 ids over 150,000 rows, 0.05 s joined); the range lets it skip row groups by their zone
    # maps (a change feed's page holds ids close together); PostgreSQL probes the primary key
    sql = (
        f"SELECT {fid}, {dialect.geojson(geom)}, {cols} FROM {dialect.source(info)}"
        f" JOIN (SELECT unnest(CAST({ph} AS BIGINT[])) AS cim_id) AS ids ON {fid} = ids.cim_id"
        f" WHERE {fid} BETWEEN {ph} AND {ph}"
    )
    return Statement(sql, (ids, ids[0], ids[-1]))


def feature_from_rows(rows: Sequence[Sequence[Any]], info: LayerInfo, fid: int) -> dict[str, Any]:
    """The feature of :func:`select_one`'s rows; FeatureNotFound when there is none."""
    if not rows:
        raise not_found(info.name, fid)
    return row_to_feature(rows[0], [f.name for f in info.fields])


#: value types that go into GeoJSON as they come from the database
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def json_value(value: Any) -> Any:
    """A database value as it goes into GeoJSON properties (NaN as null, dates in ISO 8601)."""
    kind = type(value)
    if kind in _PLAIN_TYPES:  # the common case first: this runs for every value of every feature
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def row_to_feature(row: Sequence[Any], names: Sequence[str], encoded_geometry: bool = False) -> dict[str, Any]:
    """A GeoJSON feature from a row (fid, GeoJSON text, properties...); with ``encoded_geometry``
    the geometry stays GeoJSON text, wrapped for orjson to embed as it is."""
    fid, geometry = row[0], row[1]
    if isinstance(geometry, str):
        if not geometry.startswith("{"):  # DuckDB writes a geometry with non-finite coordinates as ""
            geometry = None
        else:
            geometry = orjson.Fragment(geometry) if encoded_geometry else orjson.loads(geometry)
    return {
        "type": "Feature",
        "id": fid,
        "geometry": geometry,
        "properties": {name: json_value(v) for name, v in zip(names, row[2:])},
    }
