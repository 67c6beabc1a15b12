"""Geometric measurement (几何量算, CJJ/T 315-2022): the area and perimeter of a polygon, the length of a
line, the distance between two points — geodesic, in metres, on the CGCS2000 ellipsoid (a = 6 378 137 m,
1/f = 298.257222101: GRS80's, so the figures equal WGS84's to well under a millimetre per kilometre).

The geometry may be given in any CRS (x/y order; default lon/lat CRS84): it is moved to lon/lat and
measured there with :class:`pyproj.Geod` (Karney's algorithms), so no projection distorts it. Lines
between vertices are geodesics. Needs no store data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import shapely
from pyproj import CRS, Geod
from shapely.geometry.base import BaseGeometry

from cim.analysis.inputs import CRS84, check_lonlat, to_crs
from cim.crs import crs_uri
from cim.errors import BadInput
from cim.geometry_input import read_geometry, xy_point
from cim.impact_area import MAX_VERTICES, reproject
from cim.processes.process import Process, Progress
from cim.processes.schemas import CRS_INPUT
from cim.processes.schemas import GEOMETRY, input_description, output_description

#: what measure takes
KINDS = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
ELLIPSOID = "CGCS2000 (EPSG:1024; a = 6378137 m, 1/f = 298.257222101)"


@cache
def cgcs2000() -> Geod:
    """The geodesic calculator on CGCS2000's ellipsoid (from EPSG:4490's definition)."""
    return CRS.from_epsg(4490).get_geod()  # type: ignore[return-value]


def measure(geometry: Any, crs: str | int | CRS | None = None) -> dict[str, Any]:
    """Geodesic measures of ``geometry`` (shapely, GeoJSON geometry or Feature, WKT, or a pair of points)
    in ``crs`` (default CRS84):

    - Polygon / MultiPolygon: ``area_m2`` and ``perimeter_m`` (every ring, holes too);
    - LineString / MultiLineString: ``length_m``;
    - two points (a MultiPoint of two, or a sequence of two points): ``distance_m`` and the
      ``azimuth_deg`` from the first to the second (clockwise from north).

    Also ``geometry_type``, ``crs`` (the input's, as a URI) and ``ellipsoid``. BadInput for anything
    else, an empty, invalid or non-finite geometry, or one outside longitude/latitude."""
    source = to_crs(crs)
    geom = _to_geometry(geometry)
    lonlat = reproject(geom, source, CRS84) if not source.equals(CRS84) else geom
    check_lonlat(lonlat)
    geod = cgcs2000()
    out: dict[str, Any] = {"geometry_type": geom.geom_type, "crs": crs_uri(source), "ellipsoid": ELLIPSOID}
    kind = geom.geom_type
    if kind in ("Polygon", "MultiPolygon"):
        oriented = shapely.orient_polygons(lonlat, exterior_cw=False)  # outer rings counter-clockwise: areas positive
        area, _ = geod.geometry_area_perimeter(oriented)
        out["area_m2"] = abs(float(area))
        out["perimeter_m"] = float(geod.geometry_length(lonlat.boundary))
    elif kind in ("LineString", "MultiLineString"):
        out["length_m"] = float(geod.geometry_length(lonlat))
    else:
        points = list(lonlat.geoms) if kind == "MultiPoint" else [lonlat]
        if len(points) != 2:
            raise BadInput(
                f"a {kind} of {len(points)} point{'s' if len(points) != 1 else ''} has nothing to measure: "
                "give two points (a MultiPoint of two) for a distance, a line for a length or a polygon for an area"
            )
        (a, b) = points
        azimuth, _, distance = geod.inv(a.x, a.y, b.x, b.y)
        out["distance_m"] = float(distance)
        out["azimuth_deg"] = float(azimuth) % 360.0
    return out


def _to_geometry(value: Any) -> BaseGeometry:
    """A shapely geometry of one of KINDS from shapely, GeoJSON, WKT or a sequence of two points."""
    geom = read_geometry(value, "geometry", KINDS)
    if geom is None and isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == 2:
        geom = shapely.MultiPoint([_point(p) for p in value])
    elif geom is None:
        raise BadInput(f"the geometry must be shapely, GeoJSON, WKT or two points, not {type(value).__name__}")
    if geom is None or geom.geom_type not in KINDS:
        raise BadInput(f"the geometry must be a {', '.join(KINDS)}, not a {getattr(geom, 'geom_type', None)}")
    if geom.is_empty:
        raise BadInput(f"the geometry is an empty {geom.geom_type}")
    if shapely.get_num_coordinates(geom) > MAX_VERTICES:
        raise BadInput(f"the geometry has more than {MAX_VERTICES} vertices")
    if not all(math.isfinite(v) for v in geom.bounds):
        raise BadInput("the geometry has non-finite coordinates")
    geom = shapely.force_2d(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon") and not geom.is_valid:
        raise BadInput(f"the polygon is not valid: {shapely.is_valid_reason(geom)}")
    return geom


def _point(value: Any) -> shapely.Point:
    if isinstance(value, shapely.Point):
        return value
    if isinstance(value, Mapping) and value.get("type") == "Point":
        value = value.get("coordinates")
    point = xy_point(value)
    if point is not None:
        return point
    raise BadInput(f"a point must be a shapely Point, a GeoJSON Point or [x, y] numbers, not {str(value)[:60]!r}")


def _run(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    return {"measurement": measure(inputs.get("geometry"), inputs.get("crs"))}


_MEASUREMENT = {
    "type": "object",
    "required": ["geometry_type", "crs", "ellipsoid"],
    "properties": {
        "geometry_type": {"type": "string", "enum": list(KINDS)},
        "crs": {"type": "string", "format": "uri"},
        "ellipsoid": {"type": "string"},
        "area_m2": {"type": "number", "minimum": 0},
        "perimeter_m": {"type": "number", "minimum": 0},
        "length_m": {"type": "number", "minimum": 0},
        "distance_m": {"type": "number", "minimum": 0},
        "azimuth_deg": {"type": "number", "minimum": 0, "maximum": 360},
    },
}

PROCESSES = (
    Process(
        id="measure",
        title="Geometric measurement",
        description=(
            "Area and perimeter of a polygon, length of a line, distance between two points (a MultiPoint "
            "of two), in metres: geodesic on the CGCS2000 ellipsoid, whatever the input CRS."
        ),
        inputs={
            "geometry": input_description(
                "Geometry", "A GeoJSON Polygon/MultiPolygon (area), LineString/MultiLineString (length) or "
                "MultiPoint of two points (distance), in `crs`", GEOMETRY),
            "crs": CRS_INPUT,
        },
        outputs={"measurement": output_description("Measurement", "The measures in metres / square metres", _MEASUREMENT)},
        run=_run,
        domain="city-management",
        keywords=("measurement", "几何量算", "geodesic", "CGCS2000"),
        example={"geometry": {"type": "MultiPoint", "coordinates": [[24.944068, 60.170017], [24.936915, 60.171810]]}},
    ),
)
