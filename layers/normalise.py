"""Bring source features into a layer's normalised form.

:func:`conform` turns attribute series and geometries read from any source into the frame a
:class:`~cim.store.base.LayerData` carries: exactly the spec's fields (typed), the provenance columns
``source`` and ``source_id``, and a ``geometry`` column of the spec's geometry type in EPSG:4326.
"""

from __future__ import annotations

from typing import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cim.layerspec import FieldSpec, LayerSpec
from cim.store.base import PROVENANCE_FIELDS
from layers.geometry import apply_validity_policy

#: shapely type ids of the single-part types and the Multi* type each is promoted to
_SINGLE_OF_MULTI: dict[str, tuple[int, int]] = {
    "MultiPoint": (shapely.GeometryType.POINT, shapely.GeometryType.MULTIPOINT),
    "MultiLineString": (shapely.GeometryType.LINESTRING, shapely.GeometryType.MULTILINESTRING),
    "MultiPolygon": (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON),
}
_MULTI_BUILDERS = {
    "MultiPoint": shapely.multipoints,
    "MultiLineString": shapely.multilinestrings,
    "MultiPolygon": shapely.multipolygons,
}
_SINGLE_IDS: dict[str, int] = {
    "Point": shapely.GeometryType.POINT,
    "LineString": shapely.GeometryType.LINESTRING,
    "Polygon": shapely.GeometryType.POLYGON,
}


def to_geometry_type(geoms: np.ndarray, target: str) -> np.ndarray:
    """Geometries cast to ``target``: single parts promoted to the Multi* target, others None.

    Empty and missing geometries, and geometries of any other type, become None.
    """
    geoms = np.asarray(geoms, dtype=object)
    type_ids = shapely.get_type_id(geoms)
    out = np.full(len(geoms), None, dtype=object)
    if target in _SINGLE_OF_MULTI:
        single_id, multi_id = _SINGLE_OF_MULTI[target]
        keep = type_ids == multi_id
        out[keep] = geoms[keep]
        promote = np.flatnonzero(type_ids == single_id)
        if len(promote):
            out[promote] = _MULTI_BUILDERS[target](geoms[promote], indices=np.arange(len(promote)))
    elif target in _SINGLE_IDS:
        keep = type_ids == _SINGLE_IDS[target]
        out[keep] = geoms[keep]
    else:
        raise ValueError(f"unsupported geometry type {target!r}")
    present = np.flatnonzero(~pd.isna(out))
    out[present[shapely.is_empty(out[present])]] = None
    return out


def cast_field(values: pd.Series, spec: FieldSpec) -> pd.Series:
    """``values`` in the pandas dtype of ``spec.type``; unparseable values become missing.

    strings: object with None (blank strings count as missing); integers: nullable Int64 (non-integral
    numbers are missing); numbers: float64; booleans: nullable boolean; dates: datetime64.
    """
    if spec.type == "string":
        text = values.astype("string").str.strip()
        text = text.mask(text == "")
        return text.astype(object).where(text.notna(), None)
    if spec.type in ("integer", "number"):
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        if spec.type == "number":
            return numbers
        return numbers.where(np.floor(numbers) == numbers).astype("Int64")
    if spec.type == "boolean":
        return values.astype("boolean")
    return pd.to_datetime(values, errors="coerce", utc=spec.type == "datetime")


def empty_series(index: pd.Index) -> pd.Series:
    """An all-missing object series on ``index``."""
    return pd.Series([None] * len(index), index=index, dtype=object)


def conform(
    spec: LayerSpec,
    values: Mapping[str, pd.Series],
    geometry: gpd.GeoSeries,
    source: str,
    source_id: pd.Series,
) -> gpd.GeoDataFrame:
    """The normalised frame of ``spec`` from per-field ``values`` aligned with ``geometry``.

    Fields absent from ``values`` are all missing. Invalid geometries are repaired or rejected by the
    spec's ``invalid_geometry`` policy. Features whose geometry cannot be cast to the spec's type, and
    features missing a required field, are dropped. The result is in EPSG:4326 with
    a fresh RangeIndex and columns ``[*fields, source, source_id, geometry]``.
    """
    if spec.geometry_type is None:
        raise ValueError(f"layer {spec.name!r} is not a vector layer")
    unknown = set(values) - {f.name for f in spec.fields}
    if unknown:
        raise ValueError(f"layer {spec.name!r} has no fields {sorted(unknown)}")
    if geometry.crs is None:
        raise ValueError(f"layer {spec.name!r}: source geometry has no CRS")
    index = geometry.index
    geometry = geometry.to_crs(4326)
    columns: dict[str, pd.Series] = {}
    for field in spec.fields:
        raw = values.get(field.name)
        raw = empty_series(index) if raw is None else raw.reindex(index)
        columns[field.name] = cast_field(raw, field)
    prov = {f.name: f for f in PROVENANCE_FIELDS}
    columns["source"] = cast_field(pd.Series(source, index=index, dtype=object), prov["source"])
    columns["source_id"] = cast_field(source_id.reindex(index), prov["source_id"])
    valid, _ = apply_validity_policy(geometry.to_numpy(), spec.geometry_type, spec.invalid_geometry)
    geoms = to_geometry_type(valid, spec.geometry_type)
    keep = ~pd.isna(geoms)
    for field in spec.fields:
        if field.required:
            keep &= columns[field.name].notna().to_numpy()
    frame = pd.DataFrame(columns, index=index)[keep].reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms[keep], crs=4326), crs=4326)


def concat(spec: LayerSpec, frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Conformed frames of one layer stacked into one (an empty conformed frame when none)."""
    if not frames:
        values: dict[str, pd.Series] = {}
        empty = gpd.GeoSeries([], crs=4326)
        return conform(spec, values, empty, "", pd.Series([], dtype=object))
    frame = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)
