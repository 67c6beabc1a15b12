"""Why a source feature's geometry cannot be used: a ring of fewer than 4 points, a ring that is not
closed, a line of one point, a NaN or infinite coordinate, coordinates nested wrongly for the type,
an unknown geometry type.

Readers decode a whole file's geometries at once (GDAL's WKB through shapely, or the GeoJSON text);
where that refuses or drops a single feature's geometry these functions say why, so that the
pipeline rejects that feature with the reason (QA rule ``geometry.missing``) and builds the rest of
the file, instead of refusing the file.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import shapely

#: WKB type codes (ISO / OGC), without dimension flags
_WKB_TYPES = {1: "Point", 2: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon",
              7: "GeometryCollection"}  # fmt: skip
#: GeoJSON geometry types and how deeply their ``coordinates`` nest positions
_GEOJSON_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def nonfinite(geoms: np.ndarray) -> np.ndarray:
    """Per geometry: it has a NaN or infinite x or y (missing and empty geometries have none)."""
    geoms = np.asarray(geoms, dtype=object)
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    bad = np.zeros(len(geoms), dtype=bool)
    if len(coords):
        bad[np.unique(index[~np.isfinite(coords).all(axis=1)])] = True
    return bad


NONFINITE = "a NaN or infinite coordinate"


def _ring(label: str, first: tuple[float, ...] | None, last: tuple[float, ...] | None, points: int) -> str | None:
    if 0 < points < 4:
        return f"{label} has {points} point{'s' if points > 1 else ''}: a ring needs at least 4, the last repeating the first"
    if points and first is not None and last is not None and tuple(first[:2]) != tuple(last[:2]):
        return f"{label} is not closed: it ends at {_xy(last)}, not at its first point {_xy(first)}"
    return None


def _line(label: str, points: int) -> str | None:
    return f"{label} has 1 point: a line needs at least 2" if points == 1 else None


def _xy(position: tuple[float, ...] | list[Any]) -> str:
    return f"({position[0]:g}, {position[1]:g})"


def _ring_label(prefix: str, i: int) -> str:
    return f"{prefix}ring {i + 1} ({'the exterior' if i == 0 else f'hole {i}'})"


# -- WKB -----------------------------------------------------------------------------------------


class _Cut(Exception):
    pass


class _WKB:
    """Reads just enough of a WKB (ISO or EWKB, 2D/Z/M/ZM) to find what GEOS refuses in it."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = bytes(data), 0

    def _take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise _Cut
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return values

    def _points(self, order: str, dims: int, count: int) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, bool]:
        """(first, last, every coordinate finite) of ``count`` points."""
        size = 8 * dims * count
        if self.at + size > len(self.data):
            raise _Cut
        values = np.frombuffer(self.data, dtype=f"{order}f8", count=dims * count, offset=self.at).reshape(count, dims)
        self.at += size
        if count == 0:
            return None, None, True
        return tuple(values[0]), tuple(values[-1]), bool(np.isfinite(values[:, :2]).all())

    def problem(self, prefix: str = "") -> str | None:
        (flag,) = self._take("B")
        order = "<" if flag == 1 else ">"
        (code,) = self._take(f"{order}I")
        dims = 2 + bool(code & 0x80000000) + bool(code & 0x40000000)
        if code & 0x20000000:
            self._take(f"{order}I")  # EWKB SRID
        code &= 0x0FFFFFFF
        dims += {1: 1, 2: 1, 3: 2}.get(code // 1000, 0)
        kind = _WKB_TYPES.get(code % 1000)
        if kind is None:
            return f"{prefix}unknown WKB geometry type {code}"
        if kind == "Point":
            first, _, finite = self._points(order, dims, 1)
            empty = first is not None and all(math.isnan(v) for v in first[:2])  # POINT EMPTY
            return None if finite or empty else f"{prefix}{NONFINITE}"
        (count,) = self._take(f"{order}I")
        if kind == "LineString":
            _, _, finite = self._points(order, dims, count)
            return _line(f"{prefix}the line", count) or (None if finite else f"{prefix}{NONFINITE}")
        if kind == "Polygon":
            found = None
            for i in range(count):
                (points,) = self._take(f"{order}I")
                first, last, finite = self._points(order, dims, points)
                label = _ring_label(prefix, i)
                found = found or _ring(label, first, last, points) or (None if finite else f"{label}: {NONFINITE}")
            return found
        part = kind.removeprefix("Multi").lower() if kind != "GeometryCollection" else "member"
        found = None
        for i in range(count):
            found = found or self.problem(f"{prefix}{part} {i + 1}, ")
        return found


def wkb_problem(wkb: bytes | None) -> str:
    """Why shapely (GEOS) cannot make a geometry of ``wkb``: a one-line reason naming the part."""
    try:
        shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as exc:
        message = str(exc).strip()
    else:
        return "the geometry cannot be read"
    try:
        found = _WKB(wkb or b"").problem()
    except _Cut:
        found = "its WKB is cut short"
    return found or f"unreadable geometry: {message}"


# -- GeoJSON -------------------------------------------------------------------------------------


def _position(value: Any, label: str) -> str | None:
    if not isinstance(value, list):
        return f"{label}: expected a position [x, y], got {_short(value)}"
    if len(value) < 2:
        return f"{label}: a position needs x and y, got {_short(value)}"
    for number in value:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            return f"{label}: a coordinate that is not a number: {_short(number)}"
    if not all(math.isfinite(n) for n in value[:2]):
        return f"{label}: {NONFINITE}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _positions(value: Any, label: str) -> str | None:
    if not isinstance(value, list):
        return f"{label}: expected a list of positions, got {_short(value)}"
    return next((p for i, v in enumerate(value) if (p := _position(v, f"{label}, point {i + 1}"))), None)


def _coordinates(kind: str, coords: Any, prefix: str) -> str | None:
    """The first problem of ``coords`` as a ``kind``'s coordinates."""
    if kind == "Point":
        return _position(coords, f"{prefix}the point")
    if kind in ("MultiPoint", "LineString"):
        label = f"{prefix}the {'line' if kind == 'LineString' else 'points'}"
        found = _positions(coords, label)
        return found or (_line(f"{prefix}the line", len(coords)) if kind == "LineString" else None)
    if kind == "Polygon":
        if not isinstance(coords, list):
            return f"{prefix}expected a list of rings, got {_short(coords)}"
        for i, ring in enumerate(coords):
            label = _ring_label(prefix, i)
            found = _positions(ring, label)
            if found is None and ring:
                found = _ring(label, ring[0], ring[-1], len(ring))
            if found:
                return found
        return None
    single = kind.removeprefix("Multi")
    if not isinstance(coords, list):
        return f"{prefix}expected a list of {single.lower()}s, got {_short(coords)}"
    return next(
        (p for i, part in enumerate(coords) if (p := _coordinates(single, part, f"{prefix}{single.lower()} {i + 1}, "))),
        None,
    )


def geojson_problem(geometry: Any, prefix: str = "") -> str | None:
    """What makes a GeoJSON geometry object unusable (None when nothing does, or when it is null)."""
    if geometry is None:
        return None
    if not isinstance(geometry, dict):
        return f"{prefix}the geometry is not a JSON object: {_short(geometry)}"
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        members = geometry.get("geometries")
        if not isinstance(members, list):
            return f"{prefix}a GeometryCollection needs a list of geometries"
        return next(
            (p for i, g in enumerate(members) if (p := geojson_problem(g, f"{prefix}member {i + 1}, "))), None
        )
    if kind not in _GEOJSON_DEPTH:
        return f"{prefix}unknown geometry type {_short(kind)}"
    if "coordinates" not in geometry:
        return f"{prefix}a {kind} without coordinates"
    return _coordinates(kind, geometry["coordinates"], prefix)
