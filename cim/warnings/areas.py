"""Geometries of warning areas: CAP ``<polygon>`` and ``<circle>`` text, GeoJSON rings, checked and
never repaired. Everything is WGS84 longitude/latitude (x = longitude); CAP writes "lat,lon".

A circle becomes a geodesic polygon of :data:`CIRCLE_VERTICES` vertices *circumscribed* about the
circle: each vertex lies at ``radius / cos(pi / n)`` from the centre along the WGS84 ellipsoid
(pyproj.Geod), so every point of the circle (everyone at the edge of the warned area) is inside the
polygon, and no point of the polygon is farther than ``radius * (1 / cos(pi / n) - 1)`` beyond the
circle: 0.12 % of the radius for 64 vertices (12 m for a 10 km circle).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from pyproj import Geod
from shapely import union_all
from shapely.geometry import MultiPolygon, Polygon
from shapely.validation import explain_validity

from cim.warnings.errors import InvalidWarning

#: vertices of the polygon a circle becomes (docs/warnings/cap.md: the circle approximation)
CIRCLE_VERTICES = 64
#: the largest circle radius accepted, in km (a warning larger than a country is a mistake)
MAX_RADIUS_KM = 2000.0
#: vertices of one area's geometry accepted
MAX_VERTICES = 100_000

GEOD = Geod(ellps="WGS84")
_COMMA = re.compile(r"\s*,\s*")


def circumscribed_factor(vertices: int = CIRCLE_VERTICES) -> float:
    """How much farther than the radius a vertex lies: ``1 / cos(pi / n)``."""
    return 1.0 / math.cos(math.pi / vertices)


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidWarning(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidWarning(f"{where}: {what} {text!r} is not a finite number")
    return value


def check_lat_lon(lat: float, lon: float, where: str) -> None:
    """400 unless -90 <= lat <= 90 and -180 <= lon <= 180."""
    if not -90.0 <= lat <= 90.0:
        raise InvalidWarning(f'{where}: latitude {lat:g} is outside [-90, 90] (CAP writes "lat,lon")')
    if not -180.0 <= lon <= 180.0:
        raise InvalidWarning(f"{where}: longitude {lon:g} is outside [-180, 180]")


def _lat_lon(pair: str, where: str) -> tuple[float, float]:
    parts = pair.split(",")
    if len(parts) != 2 or not all(parts):
        raise InvalidWarning(f'{where}: {pair!r} is not a "lat,lon" pair')
    lat = _number(parts[0], where, "latitude")
    lon = _number(parts[1], where, "longitude")
    check_lat_lon(lat, lon, where)
    return lat, lon


def ring_polygon(
    lon_lat: Sequence[tuple[float, float]],
    where: str,
    shown: Sequence[str] | None = None,
) -> Polygon:
    """A valid polygon from one closed ring of (lon, lat) points: at least 4 points, first equal to
    last, not self-intersecting (400 with shapely's reason; never repaired). ``shown`` are the
    first and last points as the document wrote them, for the message."""
    if len(lon_lat) < 4:
        raise InvalidWarning(f"{where}: a ring needs at least 4 points (a triangle and its closing point), got {len(lon_lat)}")
    if lon_lat[0] != lon_lat[-1]:
        first, last = (
            shown
            if shown
            else (
                f"{lon_lat[0][0]:g},{lon_lat[0][1]:g}",
                f"{lon_lat[-1][0]:g},{lon_lat[-1][1]:g}",
            )
        )
        raise InvalidWarning(f"{where}: ring is not closed (first {first} ≠ last {last})")
    return _valid(Polygon(lon_lat), where)


def _valid(polygon: Polygon | MultiPolygon, where: str) -> Polygon | MultiPolygon:
    if not polygon.is_valid:
        raise InvalidWarning(f"{where}: invalid polygon: {explain_validity(polygon)}")
    if polygon.is_empty or polygon.area == 0.0:
        raise InvalidWarning(f"{where}: the polygon has no area")
    return polygon


def cap_polygon(text: str, where: str) -> Polygon:
    """A CAP ``<polygon>``: whitespace-separated "lat,lon" pairs (any whitespace, newlines included;
    spaces around the comma tolerated), at least 4, closed, valid. Returns x = longitude."""
    pairs = _COMMA.sub(",", text.strip()).split()
    if len(pairs) > MAX_VERTICES:
        raise InvalidWarning(f"{where}: {len(pairs)} points is over the limit of {MAX_VERTICES}")
    points = [_lat_lon(pair, where) for pair in pairs]
    return ring_polygon(
        [(lon, lat) for lat, lon in points],
        where,
        shown=(pairs[0], pairs[-1]) if pairs else None,
    )


def circle_polygon(
    lat: float,
    lon: float,
    radius_km: float,
    where: str,
    vertices: int = CIRCLE_VERTICES,
) -> Polygon:
    """The geodesic polygon circumscribed about the circle of ``radius_km`` around (lat, lon)."""
    check_lat_lon(lat, lon, where)
    if not radius_km > 0.0:
        raise InvalidWarning(f"{where}: radius {radius_km:g} km must be greater than 0")
    if radius_km > MAX_RADIUS_KM:
        raise InvalidWarning(f"{where}: radius {radius_km:g} km is over the limit of {MAX_RADIUS_KM:g} km")
    distance = radius_km * 1000.0 * circumscribed_factor(vertices)
    azimuths = [360.0 * i / vertices for i in range(vertices)]
    lons, lats, _ = GEOD.fwd([lon] * vertices, [lat] * vertices, azimuths, [distance] * vertices)
    if max(lons) - min(lons) > 180.0 or abs(lat) + radius_km / 111.0 >= 89.0:
        raise InvalidWarning(f"{where}: a circle across the antimeridian or a pole is not supported; send a polygon")
    ring = list(zip(lons, lats))
    ring.append(ring[0])
    return _valid(Polygon(ring), where)


def cap_circle(text: str, where: str) -> Polygon:
    """A CAP ``<circle>``: "lat,lon radius" with the radius in km (> 0)."""
    parts = _COMMA.sub(",", text.strip()).split()
    if len(parts) != 2:
        raise InvalidWarning(f'{where}: {text.strip()!r} is not "lat,lon radius"')
    lat, lon = _lat_lon(parts[0], where)
    radius = _number(parts[1], where, "radius")
    return circle_polygon(lat, lon, radius, where)


def union(geometries: Sequence[Polygon | MultiPolygon], where: str) -> Polygon | MultiPolygon | None:
    """The union of an area's polygons and circles (None when there are none)."""
    if not geometries:
        return None
    if len(geometries) == 1:
        return geometries[0]
    merged = union_all(list(geometries))
    if isinstance(merged, (Polygon, MultiPolygon)):
        return merged
    polygons = [g for g in getattr(merged, "geoms", ()) if isinstance(g, Polygon)]
    if not polygons:
        raise InvalidWarning(f"{where}: the union of the area's shapes has no area")
    return MultiPolygon(polygons)
