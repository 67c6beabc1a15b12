"""Bring source features into a layer's normalised form.

:func:`conform` turns attribute series and geometries read from any source into the frame a
:class:`~cim.store.base.LayerData` carries: exactly the spec's fields (typed), the provenance columns
``source`` and ``source_id``, and a ``geometry`` column of the spec's geometry type in EPSG:4326.
:func:`conform_detail` does the same in any CRS and also says, per input feature, what made it
unusable or changed it, which the build pipeline turns into QA records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cim.build.validity import apply_validity_policy
from cim.layerspec import FieldSpec, LayerSpec
from cim.store import PROVENANCE_FIELDS

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
    numbers are missing); numbers: float64; booleans: nullable boolean (text and numbers are read as
    true/false, yes/no, t/f, y/n, 1/0); dates: datetime64.
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
        return _booleans(values)
    return pd.to_datetime(values, errors="coerce", utc=spec.type == "datetime")


_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


def _booleans(values: pd.Series) -> pd.Series:
    """Booleans as they are; anything else read as text (see :func:`cast_field`)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = True
    out[text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = False
    return out


def empty_series(index: pd.Index) -> pd.Series:
    """An all-missing object series on ``index``."""
    return pd.Series([None] * len(index), index=index, dtype=object)


@dataclass
class Conformed:
    """Every input feature after conforming, with masks (over the input order) saying what happened."""

    #: the spec's fields, provenance and geometry for every input feature (geometry None where unusable)
    frame: gpd.GeoDataFrame
    #: no geometry, or an empty one, in the source
    missing_geometry: np.ndarray
    #: geometry invalid in the source: repaired or rejected by the layer's policy
    invalid: np.ndarray
    #: the geometry could not be used: missing, rejected, nothing left after repair, or of another type
    unusable: np.ndarray
    #: per required field: the value is missing
    missing_required: dict[str, np.ndarray]
    #: per field: a value was given but is not of the field's type (it became missing)
    uncast: dict[str, np.ndarray]
    #: per coded field: a value outside the field's ``enum`` (kept)
    outside_enum: dict[str, np.ndarray]
    #: features that make it into the layer
    keep: np.ndarray

    def kept(self) -> gpd.GeoDataFrame:
        """The kept features with a fresh RangeIndex."""
        frame = pd.DataFrame(self.frame.drop(columns="geometry"))[self.keep].reset_index(drop=True)
        crs = self.frame.crs
        geoms = self.frame.geometry.to_numpy()[self.keep]
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def _given(raw: pd.Series) -> np.ndarray:
    """Where a raw value is present (blank text counts as absent)."""
    present = np.array(raw.notna(), dtype=bool)
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        present &= (raw.astype("string").str.strip() != "").fillna(False).to_numpy(dtype=bool)
    return present


def conform_detail(
    spec: LayerSpec,
    values: Mapping[str, pd.Series],
    geometry: gpd.GeoSeries,
    source: str,
    source_id: pd.Series,
    crs: object = 4326,
) -> Conformed:
    """What :func:`conform` computes, in ``crs``, before dropping anything; see :class:`Conformed`."""
    if spec.geometry_type is None:
        raise ValueError(f"layer {spec.name!r} is not a vector layer")
    unknown = set(values) - {f.name for f in spec.fields}
    if unknown:
        raise ValueError(f"layer {spec.name!r} has no fields {sorted(unknown)}")
    if geometry.crs is None:
        raise ValueError(f"layer {spec.name!r}: source geometry has no CRS")
    index = geometry.index
    geometry = geometry.to_crs(crs)
    columns: dict[str, pd.Series] = {}
    uncast: dict[str, np.ndarray] = {}
    outside_enum: dict[str, np.ndarray] = {}
    for field in spec.fields:
        raw = values.get(field.name)
        raw = empty_series(index) if raw is None else raw.reindex(index)
        columns[field.name] = cast_field(raw, field)
        uncast[field.name] = _given(raw) & columns[field.name].isna().to_numpy(dtype=bool)
        if field.enum is not None:
            coded = columns[field.name]
            outside_enum[field.name] = (coded.notna() & ~coded.isin(field.enum)).to_numpy(dtype=bool)
    prov = {f.name: f for f in PROVENANCE_FIELDS}
    columns["source"] = cast_field(pd.Series(source, index=index, dtype=object), prov["source"])
    columns["source_id"] = cast_field(source_id.reindex(index), prov["source_id"])
    raw_geoms = geometry.to_numpy()
    missing = np.array(shapely.is_missing(raw_geoms), dtype=bool)
    missing[~missing] = shapely.is_empty(raw_geoms[~missing])
    valid, invalid = apply_validity_policy(raw_geoms, spec.geometry_type, spec.invalid_geometry)
    geoms = to_geometry_type(valid, spec.geometry_type)
    unusable = np.array(pd.isna(geoms), dtype=bool)
    keep = ~unusable
    missing_required: dict[str, np.ndarray] = {}
    for field in spec.fields:
        if field.required:
            missing_required[field.name] = columns[field.name].isna().to_numpy(dtype=bool)
            keep &= ~missing_required[field.name]
    frame = gpd.GeoDataFrame(pd.DataFrame(columns, index=index), geometry=gpd.GeoSeries(geoms, index=index, crs=crs))
    return Conformed(frame, missing, invalid, unusable, missing_required, uncast, outside_enum, keep)


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
    return conform_detail(spec, values, geometry, source, source_id, crs=4326).kept()


def concat(spec: LayerSpec, frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Conformed frames of one layer stacked into one (an empty conformed frame when none)."""
    if not frames:
        values: dict[str, pd.Series] = {}
        empty = gpd.GeoSeries([], crs=4326)
        return conform(spec, values, empty, "", pd.Series([], dtype=object))
    frame = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)
