"""SQL totalling a layer per administrative division (``Store.division_totals``), shared by both back-ends.

One statement per layer: the divisions of one level (optionally some codes) joined to the layer's
features, grouped by division code and, optionally, a field of the layer (POI category, road class).
A point or polygon feature belongs to the division holding its point-on-surface (so a building on a
boundary counts once). The join is one ``ST_Intersects(division, point)``, which DuckDB runs as a
spatial join; PostGIS adds ``division && feature`` (:meth:`Dialect.index_join`) so each division
scans the layer's GiST index (probing the divisions' index once per feature instead took 37 µs a
probe: 37 s for 1,000,000 buildings). A line is cut at the boundaries and each division gets the
length inside it.

Metres: lengths after reprojection to a metric CRS (``metric_srid``, unless the storage CRS is one).
Areas in a geographic storage CRS (lon/lat degrees) are the planar area in degrees² times the
ellipsoid's area scale at the latitude of the feature's bounding-box centre, ``(π/180)² a²(1−e²) cos φ / (1 − e² sin² φ)²``
— reprojecting every polygon costs more than the rest of the statement together (1,000,000
buildings: DuckDB 4.5 s, PostGIS 1.9 s on a loaded machine), the scale a few multiplications; for a
feature under 1 km across the result is within 0.02 % of the geodesic area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pyproj import CRS

from cim.store.base import GEOM, LayerInfo
from cim.store.sql import quote_ident
from cim.store.sql.dialect import Dialect, Statement

Measure = Literal["area", "length"] | None


def is_metric(srid: int) -> bool:
    """Whether EPSG ``srid`` is projected with both axes in metres."""
    crs = CRS.from_epsg(srid)
    return crs.is_projected and all((axis.unit_name or "").startswith("met") for axis in crs.axis_info)


def area_scale(srid: int, latitude_sql: str) -> str | None:
    """An expression: m² per degree² at latitude ``latitude_sql`` (degrees) on the ellipsoid of
    geographic CRS ``srid``; None when ``srid`` is not geographic in degrees."""
    crs = CRS.from_epsg(srid)
    if not crs.is_geographic or not all((axis.unit_name or "").startswith("deg") for axis in crs.axis_info):
        return None
    ellipsoid = crs.ellipsoid
    a = ellipsoid.semi_major_metre
    f = 1 / ellipsoid.inverse_flattening if ellipsoid.inverse_flattening else 0.0
    e2 = f * (2 - f)
    constant = (math.pi / 180) ** 2 * a * a * (1 - e2)
    phi = f"radians({latitude_sql})"
    return f"({constant!r} * cos({phi}) / power(1 - {e2!r} * power(sin({phi}), 2), 2))"


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
    d = f"(SELECT {quote_ident('code')} AS code, {division_geom} AS {g} FROM {dialect.source(divisions)} WHERE {where}) AS d"
    source = dialect.source(info)
    group = quote_ident(group_by) if group_by is not None else f"CAST(NULL AS {dialect.sql_types['string']})"
    null = f"CAST(NULL AS {dialect.sql_types['number']})"
    if measure == "length":
        piece = f"ST_Intersection(f.{g}, d.{g})"
        length = f"ST_Length({piece if is_metric(info.srid) else dialect.transform(piece, info.srid, metric_srid)})"
        pairs = (
            f"SELECT d.code AS code, f.{quote_ident('grp')} AS grp, {length} AS m FROM {d}"
            f" JOIN (SELECT {g}, {group} AS grp FROM {source}) AS f ON ST_Intersects(d.{g}, f.{g})"
        )
    else:
        point_kind = info.spec.geometry_type in ("Point", "MultiPoint")
        inside = f"f.{g}" if point_kind else f"ST_PointOnSurface(f.{g})"
        area = null
        if measure == "area":
            # the latitude of the feature's bounding box centre (its point-on-surface would be made twice)
            scale = area_scale(info.srid, f"((ST_YMin(f.{g}) + ST_YMax(f.{g})) / 2)")
            if scale is not None:
                area = f"ST_Area(f.{g}) * {scale}"
            else:
                area = f"ST_Area({f'f.{g}' if is_metric(info.srid) else dialect.transform(f'f.{g}', info.srid, metric_srid)})"
        indexed = dialect.index_join(f"d.{g}", f"f.{g}")
        on = f"{indexed + ' AND ' if indexed else ''}ST_Intersects(d.{g}, {inside})"
        pairs = f"SELECT d.code AS code, f.grp AS grp, {area} AS m FROM {d} JOIN (SELECT *, {group} AS grp FROM {source}) AS f ON {on}"
    # (code, group, measure) per feature, then totals: ``OFFSET 0`` keeps PostgreSQL from merging the
    # levels, which sorted the geometries with the rows for the grouping (160 MB spilled at 1,000,000)
    sql = f"SELECT code, grp, count(*), sum(m) FROM ({pairs} OFFSET 0) AS t GROUP BY 1, 2 ORDER BY 1, 2"
    return Statement(sql, tuple(params))


__all__ = ["Measure", "area_scale", "division_totals_statement", "is_metric"]
