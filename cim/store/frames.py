"""Turning a normalised GeoDataFrame into rows a store writes, and measuring it for the catalog."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geopandas.array import GeometryArray
from pyproj import CRS, Transformer

from cim.errors import StoreError
from cim.store.base import FID, LayerData, LayerInfo

_PANDAS_TYPES = {
    "string": "object",
    "integer": "Int64",
    "number": "float64",
    "boolean": "boolean",
}


def prepare(layer: LayerData, srid: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Attributes (fid first, then the layer's fields in schema order) and WKB geometries in ``srid``.

    Raises StoreError naming the layer when the frame lacks a schema column or a CRS.
    """
    frame = layer.frame
    info_fields = LayerInfo(layer.spec, srid, 0, None).fields
    missing = [f.name for f in info_fields if f.name not in frame.columns]
    if missing:
        raise StoreError(f"layer {layer.spec.name!r}: frame lacks columns {missing}")
    if frame.crs is None:
        raise StoreError(f"layer {layer.spec.name!r}: frame has no CRS")
    if CRS.from_user_input(frame.crs).to_epsg() != srid:
        frame = frame.to_crs(epsg=srid)
    attrs = pd.DataFrame(index=range(len(frame)))
    attrs[FID] = (
        frame[FID].to_numpy(dtype="int64") if FID in frame.columns else np.arange(1, len(frame) + 1, dtype="int64")
    )
    for f in info_fields:
        column = frame[f.name].reset_index(drop=True)
        if f.type in ("date", "datetime"):
            column = pd.to_datetime(column, utc=f.type == "datetime")
            attrs[f.name] = column.dt.date if f.type == "date" else column
        elif f.type == "string":
            attrs[f.name] = column.astype(object).where(column.notna(), None)
        else:
            attrs[f.name] = column.astype(_PANDAS_TYPES[f.type])
    wkb = shapely.to_wkb(frame.geometry.to_numpy(), output_dimension=2)
    return attrs, wkb


def measure(layer: LayerData, srid: int) -> LayerInfo:
    """The catalog entry of a layer: count and CRS84 extent computed from its features."""
    frame = layer.frame
    bbox: tuple[float, float, float, float] | None = None
    if len(frame) and not frame.geometry.is_empty.all():
        minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
        source = CRS.from_user_input(frame.crs) if frame.crs is not None else CRS.from_epsg(srid)
        to_lonlat = Transformer.from_crs(source, "OGC:CRS84", always_xy=True)
        bbox = tuple(float(v) for v in to_lonlat.transform_bounds(minx, miny, maxx, maxy))  # type: ignore[assignment]
    return LayerInfo(
        spec=layer.spec, srid=srid, count=len(frame), bbox=bbox, interval=_interval(layer),
        raster_path=layer.raster_path, max_size=_max_size(layer, srid),
    )


def _max_size(layer: LayerData, srid: int) -> float | None:
    """The largest area (polygons) or length (lines) in the storage CRS; None for points or no features."""
    kind = layer.spec.geometry_type or ""
    if "Point" in kind or not len(layer.frame):
        return None
    geoms = layer.frame.geometry
    if geoms.crs is not None and CRS.from_user_input(geoms.crs).to_epsg() != srid:
        geoms = geoms.to_crs(epsg=srid)
    sizes = shapely.area(geoms.to_numpy()) if "Polygon" in kind else shapely.length(geoms.to_numpy())
    return float(np.nanmax(sizes)) if np.isfinite(sizes).any() else None


def _interval(layer: LayerData) -> tuple[str | None, str | None] | None:
    """The temporal extent (ISO 8601, UTC for datetimes) of the layer's temporal field; None without time."""
    name = layer.spec.temporal_field
    if name is None or name not in layer.frame.columns:
        return None
    is_date = layer.spec.field_types[name] == "date"
    values = pd.to_datetime(layer.frame[name], utc=True).dropna()
    if values.empty:
        return None

    def iso(value: pd.Timestamp) -> str:
        return value.date().isoformat() if is_date else value.isoformat().replace("+00:00", "Z")

    return iso(values.min()), iso(values.max())


def to_frame(rows: pd.DataFrame | Sequence[tuple[Any, ...]], srid: int, names: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """The GeoDataFrame of ``Store.read_frame`` from the rows of
    :func:`cim.store.sql.features.select_frame` (a ``fid`` column, the properties, ``wkb``), indexed by
    fid: a DataFrame of them, or the fetched tuples with their column ``names`` (no row-wise DataFrame
    first: a point look-up reads a few rows, where building frames costs more than the query)."""
    if isinstance(rows, pd.DataFrame):
        wkb = rows.pop("wkb").to_numpy()
        index = rows.pop(FID).to_numpy()
        data: pd.DataFrame = rows
    else:
        if names is None:
            raise TypeError("to_frame needs the column names of fetched rows")
        columns = list(zip(*rows)) if rows else [()] * len(names)
        wkb, index = np.array(columns[-1], dtype=object), columns[0]
        data = pd.DataFrame(dict(zip(names[1:-1], columns[1:-1])), columns=list(names[1:-1]))
    data.index = pd.Index(index, name=FID)  # (set_index would copy every column)
    data["geometry"] = GeometryArray(shapely.from_wkb(np.array([None if v is None else bytes(v) for v in wkb], dtype=object)), crs=_crs(srid))
    return gpd.GeoDataFrame(data, geometry="geometry", copy=False)


@functools.lru_cache(maxsize=64)
def _crs(srid: int) -> CRS:
    """The CRS of EPSG ``srid``, made once (pyproj looks it up in its database: ~1 ms a time)."""
    return CRS.from_epsg(srid)
