"""The area of an impact analysis (cim/impact.py): a polygon checked, and the metric CRS it is measured in."""

from __future__ import annotations

import math
import os
from typing import Any

import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from cim.crs import parse_crs, srid_of, transformer
from cim.errors import BadInput, ConfigError
from cim.geometry_input import read_geometry

#: the largest area analysed, km² (``$CIM_IMPACT_MAX_KM2`` or the ``max_area_km2`` argument)
DEFAULT_MAX_KM2 = 500.0
MAX_VERTICES = 100_000


def max_area_km2(value: float | None = None) -> float:
    if value is not None:
        return float(value)
    text = os.environ.get("CIM_IMPACT_MAX_KM2", "").strip()
    if not text:
        return DEFAULT_MAX_KM2
    try:
        parsed = float(text)
    except ValueError:
        raise ConfigError(f"$CIM_IMPACT_MAX_KM2 must be a number of km², not {text[:40]!r}") from None
    if not math.isfinite(parsed) or parsed <= 0:
        raise ConfigError(f"$CIM_IMPACT_MAX_KM2 must be a positive number of km², not {text[:40]!r}")
    return parsed


def to_polygon(area: Any) -> BaseGeometry:
    """A shapely (Multi)Polygon from a shapely geometry, a GeoJSON geometry/Feature dict or WKT;
    BadInput (400) saying what is wrong with anything else, empty, non-finite or invalid."""
    geom = read_geometry(area, "area", ("Polygon", "MultiPolygon"))
    if geom is None:
        raise BadInput(f"the area must be a polygon (shapely, GeoJSON or WKT), not {type(area).__name__}")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise BadInput(f"the area must be a Polygon or MultiPolygon, not a {geom.geom_type}")
    if geom.is_empty:
        raise BadInput("the area is an empty polygon")
    if shapely.get_num_coordinates(geom) > MAX_VERTICES:
        raise BadInput(f"the area has more than {MAX_VERTICES} vertices")
    if not all(math.isfinite(v) for v in geom.bounds):
        raise BadInput("the area has non-finite coordinates")
    if shapely.has_z(geom):
        geom = shapely.force_2d(geom)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise BadInput(f"the area is not a valid polygon: {reason} (fix it, e.g. with ST_MakeValid / shapely.make_valid)")
    return geom


def reproject(geom: BaseGeometry, src: CRS, dst: CRS) -> BaseGeometry:
    if src.equals(dst):
        return geom
    t = transformer(src, dst)
    try:
        moved = shapely.transform(geom, lambda xy: _stack(t.transform(xy[:, 0], xy[:, 1])))
    except Exception as exc:  # noqa: BLE001 - pyproj fails on coordinates outside the CRS
        raise BadInput(f"the area cannot be transformed to {dst.name}: {str(exc)[:200]}") from None
    if not all(math.isfinite(v) for v in moved.bounds):
        raise BadInput(f"the area lies outside the domain of {dst.name}")
    return moved


def _stack(xy: tuple[Any, Any]) -> Any:
    import numpy as np

    return np.column_stack(xy)


def metric_crs(storage: CRS, lonlat_centre: tuple[float, float]) -> CRS:
    """The CRS lengths and areas are measured in: the storage CRS when it is projected in metres (a
    Gauss-Krüger zone, UTM...), else a Lambert azimuthal equal-area projection centred near the area
    (areas exact; lengths within 0.01 % up to 50 km from the centre)."""
    if storage.is_projected and all((axis.unit_name or "").startswith("met") for axis in storage.axis_info):
        return storage
    # the centre on a 0.25° grid: one CRS (and one cached transformer) per neighbourhood, lengths
    # still within 0.01 % (a point 30 km off the centre is scaled by 1 + (30/6371)²/4 ≈ 1.000006)
    lon, lat = (round(value * 4) / 4 for value in lonlat_centre)
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +ellps=GRS80 +units=m +no_defs")


def area_crs(value: str | int | CRS) -> CRS:
    return value if isinstance(value, CRS) else parse_crs(value)


__all__ = ["DEFAULT_MAX_KM2", "area_crs", "max_area_km2", "metric_crs", "reproject", "srid_of", "to_polygon"]
