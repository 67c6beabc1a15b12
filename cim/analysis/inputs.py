"""Points and areas as the analyses take them: from shapely, GeoJSON (geometry or Feature), WKT or a
(x, y) pair, in any CRS (x/y order; default lon/lat CRS84), checked and moved to lon/lat; and the
check that they lie in the city. Polygons are checked by :func:`cim.impact_area.to_polygon`."""

from __future__ import annotations

import math
from typing import Any

import shapely
from pyproj import CRS
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from cim.crs import parse_crs
from cim.errors import BadInput, CIMError
from cim.geometry_input import read_geometry, xy_point
from cim.impact_area import reproject, to_polygon
from cim.store import LayerInfo, Store

CRS84 = parse_crs("OGC:CRS84")


def to_crs(value: str | int | CRS | None) -> CRS:
    """``value`` as a CRS (None: CRS84); BadInput naming it when unknown."""
    if value is None:
        return CRS84
    if isinstance(value, CRS):
        return value
    try:
        return parse_crs(value)
    except CIMError as exc:  # parse_crs's own message names the CRS
        raise BadInput(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - anything pyproj refuses
        raise BadInput(f"unknown CRS {str(value)[:80]!r}: {str(exc)[:200]}") from None


def to_point(value: Any, crs: str | int | CRS | None = None) -> Point:
    """A lon/lat Point from shapely, GeoJSON Point (or Feature), WKT or an (x, y) pair in ``crs``."""
    geom = read_geometry(value, "point", ("Point",))
    if geom is None:
        geom = xy_point(value)
    if geom is None:
        raise BadInput(f"the point must be a GeoJSON Point, a WKT POINT or [x, y] numbers, not {str(value)[:60]!r}")
    if geom.geom_type != "Point" or geom.is_empty:
        raise BadInput("the point must be a non-empty Point")
    if not all(math.isfinite(v) for v in (geom.x, geom.y)):
        raise BadInput("the point has non-finite coordinates")
    lonlat = reproject(Point(geom.x, geom.y), to_crs(crs), CRS84)
    check_lonlat(lonlat)
    return lonlat


def to_area(value: Any, crs: str | int | CRS | None = None) -> BaseGeometry:
    """A lon/lat (Multi)Polygon from shapely, GeoJSON or WKT in ``crs``; BadInput when empty, invalid
    or outside longitude/latitude."""
    lonlat = reproject(to_polygon(value), to_crs(crs), CRS84)
    check_lonlat(lonlat)
    return lonlat


def check_lonlat(geom: BaseGeometry) -> None:
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise BadInput("the geometry lies outside longitude -180..180 / latitude -90..90: check the CRS and the axis order (x = longitude)")


def city_bounds(store: Store) -> tuple[float, float, float, float] | None:
    """Lon/lat bounds of the current release's vector layers (None: no layer has a bbox)."""
    boxes = [i.bbox for i in store.layers() if i.bbox is not None and not i.spec.live and i.spec.kind == "vector"]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def check_in_city(store: Store, lonlat: BaseGeometry) -> None:
    """BadInput when ``lonlat`` (a point or area) lies outside the city's extent, with that extent."""
    bounds = city_bounds(store)
    if bounds is not None and not lonlat.intersects(shapely.box(*bounds)):
        x0, y0, x1, y1 = bounds
        raise BadInput(
            f"the {'point' if lonlat.geom_type == 'Point' else 'area'} lies outside the city "
            f"(its layers cover longitude {x0:.4f}..{x1:.4f}, latitude {y0:.4f}..{y1:.4f})"
        )


def in_storage(lonlat: BaseGeometry, info: LayerInfo) -> BaseGeometry:
    """``lonlat`` in the storage CRS of layer ``info``."""
    return reproject(lonlat, CRS84, parse_crs(info.srid))
