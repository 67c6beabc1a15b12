"""SQL totalling a layer per administrative division (``Store.division_totals``), shared by both back-ends.

One statement per layer: the divisions of one level (optionally some codes) joined to the layer's
features, grouped by division code and, optionally, a field of the layer (POI category, road class).
A point or polygon feature belongs to the division holding its point-on-surface (so a building on a
boundary counts once); a line is cut at the boundaries and each division gets the length inside it.
Areas and lengths are measured after reprojection to a metric CRS (``metric_srid``: a Gauss-Krüger
zone of CGCS2000, or the storage CRS when it is one). The candidate pairs come from each table's
spatial index (bounding boxes overlap), then the exact test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from cim.store.base import GEOM, LayerInfo
from cim.store.sql import quote_ident
from cim.store.sql.dialect import Dialect, Statement

Measure = Literal["area", "length"] | None


def division_totals_statement(
    info: LayerInfo,
    divisions: LayerInfo,
    dialect: Dialect,
    level: str,
    codes: Sequence[str] | None,
    group_by: str | None,
    measure: Measure,
    metric_srid: int,
) -> Statement:
    """Rows (division code, group value or NULL, count, total area m² / length m or NULL)."""
    ph = dialect.placeholder
    g = quote_ident(GEOM)
    params: list[Any] = [level]
    where = f"{quote_ident('level')} = {ph}"
    if codes:
        where += f" AND {quote_ident('code')} IN ({', '.join([ph] * len(codes))})"
        params.extend(codes)
    division_geom = g
    if divisions.srid != info.srid:
        division_geom = dialect.transform(g, divisions.srid, info.srid)
    division_source = dialect.source(divisions)
    d = f"(SELECT {quote_ident('code')} AS code, {division_geom} AS {g} FROM {division_source} WHERE {where}) AS d"
    fg, dg = f"f.{g}", f"d.{g}"
    overlap = dialect.extents_intersect(dg, fg)
    if measure == "length":
        join = f"{overlap} AND ST_Intersects({dg}, {fg})"
        piece = f"ST_Intersection({fg}, {dg})"
        total = f"sum(ST_Length({_metric(dialect, piece, info.srid, metric_srid)}))"
    else:
        inside = fg if info.spec.geometry_type in ("Point", "MultiPoint") else f"ST_PointOnSurface({fg})"
        join = f"{overlap} AND ST_Intersects({dg}, {inside})"
        total = f"sum(ST_Area({_metric(dialect, fg, info.srid, metric_srid)}))" if measure == "area" else "NULL"
    group = f"f.{quote_ident(group_by)}" if group_by is not None else "NULL"
    sql = (
        f"SELECT d.code, {group}, count(*), {total} FROM {d} JOIN (SELECT * FROM {dialect.source(info)}) AS f ON {join}"
        f" GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return Statement(sql, tuple(params))


def _metric(dialect: Dialect, geom: str, srid: int, metric_srid: int) -> str:
    return geom if srid == metric_srid else dialect.transform(geom, srid, metric_srid)


__all__ = ["Measure", "division_totals_statement"]
