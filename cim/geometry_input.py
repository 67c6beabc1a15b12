"""Geometries as callers give them — shapely, a GeoJSON geometry or Feature, WKT, an (x, y) pair —
read into shapely with a BadInput (400) naming the input (``what``) when they cannot be: the one
reader behind impact areas (cim/impact_area.py), analysis points and areas (cim/analysis/inputs.py)
and measured geometries (cim/analysis/measure.py), which then check what they each need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from cim.errors import BadInput


def read_geometry(value: Any, what: str, kinds: Sequence[str]) -> BaseGeometry | None:
    """``value`` as shapely when it is shapely, a GeoJSON geometry (or Feature) of one of ``kinds``, or
    WKT; None for any other Python value (the caller may take more forms, or refuse it)."""
    if isinstance(value, BaseGeometry):
        return value
    if isinstance(value, Mapping):
        if value.get("type") == "Feature":
            value = value.get("geometry")
        if not isinstance(value, Mapping) or value.get("type") not in kinds:
            kind = value.get("type") if isinstance(value, Mapping) else type(value).__name__
            raise BadInput(f"the {what} must be a GeoJSON {' or '.join(kinds)}, not {str(kind)[:40]!r}")
        try:
            return shapely.geometry.shape(value)
        except Exception as exc:  # noqa: BLE001 - any malformed coordinates
            raise BadInput(f"the {what} is not valid GeoJSON: {str(exc)[:200]}") from None
    if isinstance(value, str):
        try:
            return shapely.from_wkt(value)
        except Exception as exc:  # noqa: BLE001 - GEOS's parse errors
            raise BadInput(f"the {what} is not valid WKT: {str(exc)[:200]}") from None
    return None


def xy_point(value: Any) -> shapely.Point | None:
    """A Point from an (x, y) or (x, y, z) sequence of numbers (booleans are not numbers); None otherwise."""
    if (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and len(value) in (2, 3)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return shapely.Point(float(value[0]), float(value[1]))
    return None
