"""GeoJSON feature by feature: the fall-back reader when GDAL refuses a whole GeoJSON file, and the
explanation of geometries GDAL dropped.

GDAL reads a GeoJSON file as a whole: one feature it cannot make sense of (a number it cannot parse)
makes it refuse the file, and coordinates nested wrongly or an unknown type silently become a null
geometry. Only on those paths is the file parsed here (orjson; Python's json for the NaN and
Infinity literals GDAL accepts but JSON does not), each feature's geometry checked
(:func:`cim.build.malformed.geojson_problem`) and made with shapely: a bad feature gets no geometry
and a reason, and the pipeline rejects it while the rest of the file builds. A file that is not JSON
(cut off, corrupt) stays a file-level error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely.geometry

from cim.build.malformed import geojson_problem


def load_features(path: Path) -> tuple[list[Any], Any] | None:
    """(the features, the legacy ``crs`` member) of a GeoJSON file; None when it is not GeoJSON."""
    data = path.read_bytes()
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:  # NaN / Infinity literals
            document = json.loads(data)
        except (ValueError, RecursionError):
            return None
    if not isinstance(document, dict):
        return None
    if document.get("type") == "FeatureCollection" and isinstance(document.get("features"), list):
        return document["features"], document.get("crs")
    if document.get("type") == "Feature":
        return [document], document.get("crs")
    return None


def feature_geometry(feature: Any) -> tuple[Any, str | None]:
    """(shapely geometry or None, why there is none) of one GeoJSON feature."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return None, "not a GeoJSON Feature object"
    raw = feature.get("geometry")
    problem = geojson_problem(raw)
    if problem is not None:
        return None, problem
    if raw is None:
        return None, None
    try:
        return shapely.geometry.shape(raw), None
    except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError) as exc:
        return None, f"unreadable geometry: {exc}"


def read_features(path: Path) -> tuple[gpd.GeoDataFrame, pd.Series] | None:
    """Every feature of a GeoJSON file GDAL refused: (frame of properties and geometry, per feature
    the reason its geometry is missing or None); None when the file is not GeoJSON at all. Features
    are numbered from 0 in file order, as GDAL numbers them."""
    loaded = load_features(path)
    if loaded is None:
        return None
    features, crs_member = loaded
    rows, geoms, problems = [], np.full(len(features), None, dtype=object), []
    for i, feature in enumerate(features):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        rows.append(properties if isinstance(properties, dict) else {})
        geoms[i], problem = feature_geometry(feature)
        problems.append(problem)
    table = pd.DataFrame.from_records(rows, index=pd.RangeIndex(len(rows))) if rows else pd.DataFrame()
    frame = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, index=table.index), crs=_crs(crs_member))
    return frame, pd.Series(problems, dtype=object)


def _crs(member: Any) -> str:
    """The CRS of a GeoJSON file: CRS84, or what a legacy (2008) ``crs`` member names."""
    if isinstance(member, dict) and isinstance(member.get("properties"), dict):
        name = member["properties"].get("name")
        if isinstance(name, str) and name:
            return name
    return "OGC:CRS84"


def explain_dropped(path: Path, frame: gpd.GeoDataFrame) -> pd.Series | None:
    """For a frame GDAL read from a GeoJSON file: per feature, why GDAL gave it no geometry where the
    file has one (wrong nesting, unknown type...); None when the features cannot be matched up."""
    loaded = load_features(path)
    if loaded is None:
        return None
    features = [f for f in loaded[0] if isinstance(f, dict) and f.get("type") == "Feature"]
    if len(features) != len(frame):
        return None
    reasons = [geojson_problem(f.get("geometry")) if g is None else None for f, g in zip(features, frame.geometry)]
    return pd.Series(reasons, dtype=object)
