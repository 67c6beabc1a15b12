"""Checks of what a write (OGC API - Features Part 4, :mod:`cim.store.edits`) may store, so that
nothing written can break a later read: nesting depth, the shape of GeoJSON coordinates, vertex
count, and coordinates inside the range of the body's CRS and the area of use of the storage CRS.

The areas of use are the build's (:func:`cim.crs.area_of_use` and :func:`cim.crs.inside_area`: pyproj's
``area_of_use`` widened by ``AREA_TOLERANCE_DEG``), so a feature a build would refuse cannot come in through the API either.
:func:`storage_domain` gives readers the box stored geometries are guaranteed to lie in, which
:func:`cim.store.sql.features.output_geometry` uses to leave out (null) any geometry that cannot be
transformed, such as one written before these checks existed.

Every refusal names the offending value: :class:`InvalidWrite` (400), :class:`TooLarge` (413).
"""

from __future__ import annotations

import math
import numbers
import reprlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer

from cim import limits as limits_module
from cim.crs import CRS84_URI, area_of_use, crs_uri, inside_area, parse_crs, transformer
from cim.errors import CIMError, InvalidQuery

#: how many positions each GeoJSON geometry type nests its coordinates (a Point is one position)
POSITION_DEPTH = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2, "MultiPolygon": 3}
#: what holds coordinates: JSON arrays, and what Python callers pass (shapely's mapping gives tuples)
_ARRAYS = (list, tuple, np.ndarray)
#: beyond the storage CRS's area of use, how much wider (degrees) :func:`storage_domain` is
READ_MARGIN_DEG = 1.0


class InvalidWrite(InvalidQuery):
    """The body cannot be stored as it is: 400 saying why."""


class TooLarge(CIMError):
    """The body or its geometry is larger than the limits allow: 413."""

    status = 413
    code = "ContentTooLarge"


def check_depth(value: Any, what: str = "the body") -> None:
    """Refuse a parsed JSON value nested deeper than ``max_json_depth`` (400)."""
    deepest = limits_module.limits().max_json_depth
    depth = limits_module.value_depth(value, stop_at=deepest)
    if depth > deepest:
        raise InvalidWrite(f"{what} is nested more than {deepest} levels deep (arrays and objects); a GeoJSON Feature needs 6")


def check_text(name: str, value: str) -> None:
    """Refuse a string property with a NUL character (databases cannot store one) or longer than
    ``max_text_chars`` (400)."""
    longest = limits_module.limits().max_text_chars
    if len(value) > longest:
        raise InvalidWrite(f"property {name!r} is {len(value)} characters long; the limit is {longest}")
    if "\x00" in value:
        raise InvalidWrite(f"property {name!r} contains a NUL character (U+0000), which cannot be stored")


def check_positions(geojson: dict[str, Any]) -> int:
    """Check that a GeoJSON geometry's ``coordinates`` nest as its type says and that every position
    is 2 or 3 finite numbers (x, y[, z]); return the number of positions. Counts first, so a huge
    geometry is refused (413, more than ``max_vertices``) before anything is built from it; without
    recursion. Types it does not know are left to the parser."""
    kind = geojson.get("type")
    depth = POSITION_DEPTH.get(kind) if isinstance(kind, str) else None
    if depth is None:  # a GeometryCollection or no geometry: the parser recurses, so limit its depth
        check_depth(geojson, "the geometry")
        return 0
    level: list[Any] = [geojson.get("coordinates")]
    for _ in range(depth):
        for item in level:
            if not isinstance(item, _ARRAYS):
                raise InvalidWrite(f"not a GeoJSON geometry: {kind} coordinates hold {_show(item)} where an array was expected")
        level = [child for item in level for child in item]
    most = limits_module.limits().max_vertices
    if len(level) > most:
        raise TooLarge(f"the geometry has {len(level)} vertices; the limit is {most}")
    if not _plain_positions(level):
        for position in level:
            _check_position(position)
    return len(level)


def _plain_positions(level: list[Any]) -> bool:
    """Whether every position is a list of 2 or of 3 finite JSON numbers (the common case, checked
    with sets and numpy: 100,000 positions in ~20 ms); False sends the caller the slow way, which
    names the first bad position (or accepts what this one does not know, such as numpy values)."""
    if {type(p) for p in level} - {list, tuple} or {len(p) for p in level} not in ({2}, {3}):
        return False
    if {type(v) for p in level for v in p} - {int, float}:
        return False
    try:
        values = np.asarray(level, dtype=float)
    except (ValueError, OverflowError):
        return False
    return bool(np.isfinite(values).all())


def is_finite(value: int | float) -> bool:
    """Whether a number is finite (and, for an int, small enough to be a float)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_int64(value: int | float) -> bool:
    """Whether a number is an integer a BIGINT column can hold."""
    return is_finite(value) and float(value).is_integer() and -(2**63) <= int(value) < 2**63


def _is_number(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real) and is_finite(value)


def _check_position(item: Any) -> None:
    if not isinstance(item, _ARRAYS):
        raise InvalidWrite(f"not a GeoJSON geometry: a position is an array of 2 or 3 numbers; got {_show(item)}")
    if not 2 <= len(item) <= 3:
        noun = "number" if len(item) == 1 else "numbers"
        raise InvalidWrite(
            f"not a GeoJSON geometry: a position has 2 or 3 numbers (x, y[, z]); got {len(item)} {noun}: {_show(item)}"
        )
    for value in item:
        if not _is_number(value):
            raise InvalidWrite(f"not a GeoJSON geometry: a position holds finite numbers; got {_show(value)} in {_show(item)}")


#: how a value is shown in a message: short, and without recursing into deep nesting
_REPR = reprlib.Repr(maxlevel=3, maxlist=4, maxtuple=4, maxdict=3, maxstring=40, maxother=40)


def _show(item: Any) -> str:
    text = _REPR.repr(item)
    return text if len(text) <= 80 else text[:77] + "..."


def check_coordinates(geom: shapely.Geometry, sent: np.ndarray, body: CRS, storage: CRS) -> None:
    """Refuse ``geom`` (x/y order, in the body's CRS) when a vertex lies outside the valid range of
    a geographic body CRS (longitude -180..180, latitude -90..90) or outside the area of use of the
    body's or the storage CRS (400). ``sent``: the vertices as the body wrote them (for the message,
    same order as ``shapely.get_coordinates(geom)``)."""
    xy = shapely.get_coordinates(geom)
    frame = _frame(body.srs, storage.srs)
    if body.is_geographic:
        bad = np.flatnonzero((np.abs(xy[:, 0]) > 180) | (np.abs(xy[:, 1]) > 90))
        if len(bad):
            raise InvalidWrite(
                f"coordinate {_coordinate(sent[bad[0]])} is outside the range of {frame.name} (longitude -180..180, "
                f"latitude -90..90; {len(bad)} of {len(xy)} vertices): coordinates in another CRS need a "
                "Content-Crs header naming it"
            )
        lon, lat = xy[:, 0], xy[:, 1]
    else:
        with np.errstate(invalid="ignore"):
            lon, lat = (np.asarray(v, dtype=float) for v in frame.to_geodetic.transform(xy[:, 0], xy[:, 1], errcheck=False))
        lost = ~(np.isfinite(lon) & np.isfinite(lat))
        lon, lat = np.where(lost, np.inf, lon), np.where(lost, np.inf, lat)
    lonlat = np.column_stack([lon, lat, lon, lat])
    for (west, south, east, north), area in frame.areas:
        bad = np.flatnonzero(~inside_area(lonlat, (west, south, east, north)))
        if len(bad):
            raise InvalidWrite(
                f"coordinate {_coordinate(sent[bad[0]])} (in {frame.name}) lies outside the area of use of {area}, "
                f"{west}..{east}°E, {south}..{north}°N ({len(bad)} of {len(xy)} vertices){frame.hint}"
            )


def check_transformed(geom: shapely.Geometry, storage: CRS) -> None:
    """Refuse a geometry whose transformation into the storage CRS gave non-finite coordinates (400)."""
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise InvalidWrite(f"the geometry cannot be transformed into the storage CRS {_frame(storage.srs, storage.srs).name}")


@dataclass(frozen=True)
class _Frame:
    """What checking coordinates of one body CRS for one storage CRS needs (pyproj's lookups cost
    tens of milliseconds, so it is made once per pair)."""

    #: the body CRS as a message names it (CRS84, EPSG:3857)
    name: str
    #: the areas of use (lon/lat bounds and name) of the body and the storage CRS, as the build has them
    areas: list[tuple[tuple[float, float, float, float], str]]
    #: a projected body CRS's x/y to lon/lat of its datum (None for a geographic one)
    to_geodetic: Transformer | None
    #: what the message suggests
    hint: str


@lru_cache(maxsize=64)
def _frame(body_srs: str, storage_srs: str) -> _Frame:
    body, storage = CRS.from_user_input(body_srs), CRS.from_user_input(storage_srs)
    if crs_uri(body) == CRS84_URI:
        name = "CRS84"
    else:
        code = body.to_epsg()
        name = f"EPSG:{code}" if code else body.name
    areas = [area for area in (area_of_use(body), area_of_use(storage)) if area is not None]
    to_geodetic = None if body.is_geographic else transformer(body, body.geodetic_crs)
    hint = "" if body.equals(storage) else "; is the Content-Crs right?"
    return _Frame(name, areas, to_geodetic, hint)


def _coordinate(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


@lru_cache(maxsize=64)
def storage_domain(srid: int) -> tuple[float, float, float, float]:
    """The box (storage coordinates, x/y) that every geometry a build or a write can store lies in:
    the storage CRS's area of use widened by :data:`READ_MARGIN_DEG` (for a geographic CRS, its valid
    range: longitude -360..360, latitude -90..90). Every supported output CRS can be reached from
    inside it; a geometry outside it (stored before these checks) is read as a null geometry."""
    crs = parse_crs(srid)
    if crs.is_geographic:
        return (-360.0, -90.0, 360.0, 90.0)
    area = crs.area_of_use
    if area is None:
        return (-math.inf, -math.inf, math.inf, math.inf)
    west, south, east, north = area.bounds
    margin = READ_MARGIN_DEG
    box = (max(west - margin, -180.0), max(south - margin, -90.0), min(east + margin, 180.0), min(north + margin, 90.0))
    to_storage = transformer(crs.geodetic_crs, crs)
    bounds = to_storage.transform_bounds(*box, densify_pts=21)
    if not all(math.isfinite(v) for v in bounds):
        return (-math.inf, -math.inf, math.inf, math.inf)
    return tuple(float(v) for v in bounds)  # type: ignore[return-value]
