"""What the housing and planning analyses share: the layers they need, the features covering a point,
the finest administrative division holding points, the zone holding points, areas in metres, and
frames as GeoJSON. Reads go through :meth:`cim.store.Store.read_frame` only (both back-ends)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

import geopandas as gpd
from geopandas.array import GeometryArray
import numpy as np
import orjson
import pandas as pd
import shapely
from pyproj import CRS

from cim.analysis.inputs import in_storage
from cim.crs import parse_crs, transformer
from cim.errors import LayerNotFound
from cim.impact import DIVISION_LEVELS
from cim.impact_area import metric_crs
from cim.store import LayerInfo, Store

#: the fields of a zone (layer ``landuse``) the planning analyses read
ZONE_FIELDS = ("use", "zoning_code", "height_limit_m", "far_limit")


def vector_layer(store: Store, name: str) -> LayerInfo | None:
    """The current release's vector layer ``name`` (None: the city has none)."""
    for info in store.layers():
        if info.name == name and info.spec.kind == "vector" and not info.spec.live:
            return info
    return None


def require(store: Store, name: str, purpose: str) -> LayerInfo:
    """Layer ``name``, or LayerNotFound (404) saying what needs it."""
    info = vector_layer(store, name)
    if info is None:
        raise LayerNotFound(f"the city has no {name!r} layer: {purpose} needs it (layers: {', '.join(store.layer_names()) or 'none'})")
    return info


def covering(store: Store, info: LayerInfo, lonlat: shapely.Point, columns: Sequence[str] | None) -> gpd.GeoDataFrame:
    """Features of layer ``info`` whose geometry covers the lon/lat point (boundary included), storage CRS."""
    point = in_storage(lonlat, info)
    frame = store.read_frame(info.name, bbox=bounds_of(np.array([point])), columns=columns)
    return frame[shapely.covers(frame.geometry.to_numpy(), point)]


def bounds_of(geoms: np.ndarray) -> tuple[float, float, float, float] | None:
    """The bounds of ``geoms`` widened by a billionth of their coordinates (None: no geometry): a
    point's box has no area, and PostGIS's ``ST_Intersects`` with such an envelope can miss the
    polygons around it. The exact test follows the read."""
    if not len(geoms):
        return None
    x0, y0, x1, y1 = (float(v) for v in shapely.total_bounds(geoms))
    pad = 1e-9 * max(1.0, abs(x0), abs(y0), abs(x1), abs(y1))
    return (x0 - pad, y0 - pad, x1 + pad, y1 + pad)


def pool() -> ThreadPoolExecutor:
    """Threads for reads run at once (each waits on the database): the lookups at a point read three
    layers. One per process (a forked child would inherit a pool whose threads it does not have)."""
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS[pid] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cim-analysis")
    return _POOLS[pid]


_POOLS: dict[int, ThreadPoolExecutor] = {}


def lonlat_frame(frame: gpd.GeoDataFrame, srid: int, columns: dict[str, Any] | None = None) -> gpd.GeoDataFrame:
    """``frame`` (stored in EPSG ``srid``) with ``columns`` added, in lon/lat (EPSG:4326, x/y), same index
    (a cached transformer: GeoDataFrame.to_crs makes one per call)."""
    name = frame.geometry.name
    data = {column: frame[column].array for column in frame.columns if column != name}  # dtypes kept
    data.update(columns or {})
    geometry = GeometryArray(to_srid(frame.geometry.to_numpy(), srid, 4326), crs=parse_crs(4326))
    return gpd.GeoDataFrame(data, index=frame.index, geometry=geometry)


def to_srid(geoms: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Geometries from EPSG ``src`` to EPSG ``dst`` (x/y)."""
    if src == dst:
        return geoms
    t = transformer(parse_crs(src), parse_crs(dst))
    return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def areas_m2(geoms: np.ndarray, srid: int, metric: CRS) -> np.ndarray:
    """Areas (m²) of geometries stored in ``srid``, measured in ``metric`` (:func:`metric_for`)."""
    if not len(geoms):
        return np.zeros(0)
    if parse_crs(srid).equals(metric):
        return shapely.area(geoms)
    t = transformer(parse_crs(srid), metric)
    return shapely.area(shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))))


def small_areas_m2(geoms: np.ndarray, srid: int, metric: CRS, centroids: np.ndarray | None = None) -> np.ndarray:
    """Areas (m²) of small geometries (buildings, parcels: up to a few km across): as :func:`areas_m2`,
    but in a geographic CRS each area in degrees² times the ellipsoid's area element at the
    geometry's centroid latitude, M(φ)·N(φ)·cos φ·(π/180)² — exact to the second order of the extent
    (a 1 km parcel to 1e-8), and it needs no reprojection of every vertex (6 s for 1,000,000 footprints)."""
    crs = parse_crs(srid)
    if not len(geoms) or not crs.is_geographic:
        return areas_m2(geoms, srid, metric)
    ellipsoid = crs.ellipsoid
    a = ellipsoid.semi_major_metre
    e2 = 1.0 - (ellipsoid.semi_minor_metre / a) ** 2
    lat = np.radians(shapely.get_y(shapely.centroid(geoms) if centroids is None else centroids))
    w = 1.0 - e2 * np.sin(lat) ** 2
    element = a * (1.0 - e2) / w**1.5 * a / np.sqrt(w) * np.cos(lat) * (np.pi / 180.0) ** 2
    return shapely.area(geoms) * element


def metric_for(info: LayerInfo, bounds: Sequence[float]) -> CRS:
    """The metric CRS areas of layer ``info`` are measured in (cim.impact_area.metric_crs): the
    storage CRS when it is projected in metres, else an equal-area projection centred near ``bounds``
    (storage CRS) — one per 0.25° of the centre, as metric_crs rounds it, made once."""
    centre = shapely.box(*bounds).centroid if all(np.isfinite(bounds)) else shapely.Point(0, 0)
    lonlat = to_srid(np.array([centre]), info.srid, 4326)[0]
    return _metric(info.srid, round(lonlat.x * 4) / 4, round(lonlat.y * 4) / 4)


@lru_cache(maxsize=256)
def _metric(srid: int, lon: float, lat: float) -> CRS:
    return metric_crs(parse_crs(srid), (lon, lat))


def valid(geoms: np.ndarray) -> np.ndarray:
    """``geoms`` with the invalid ones made valid (shapely.make_valid), for overlays: GEOS refuses to
    intersect a self-intersecting polygon, which a layer edited through the API or an old release may hold."""
    bad = ~shapely.is_valid(geoms)
    if not bad.any():
        return geoms
    geoms = geoms.copy()
    geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


def first_match(points: np.ndarray, polygons: np.ndarray, rank: np.ndarray | None = None) -> np.ndarray:
    """For each point, the index of a polygon covering it (-1: none); where several do, the one of the
    lowest ``rank`` (then the lowest index)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if not len(points) or not len(polygons):
        return out
    point_idx, poly_idx = shapely.STRtree(polygons).query(points, predicate="intersects")
    if not len(point_idx):
        return out
    keys = rank[poly_idx] if rank is not None else np.zeros(len(poly_idx))
    order = np.lexsort((poly_idx, keys, point_idx))
    point_idx, poly_idx = point_idx[order], poly_idx[order]
    first = np.ones(len(point_idx), dtype=bool)
    first[1:] = point_idx[1:] != point_idx[:-1]
    out[point_idx[first]] = poly_idx[first]
    return out


def read_layer(store: Store, info: LayerInfo, bounds: Sequence[float] | None, columns: Sequence[str], srid: int) -> gpd.GeoDataFrame:
    """Layer ``info`` within ``bounds`` (EPSG ``srid``; None: all of it) in ``srid``, only ``columns``."""
    box = None
    if bounds is not None:
        box = tuple(float(v) for v in bounds)
        if info.srid != srid:
            box = tuple(shapely.bounds(to_srid(np.array([shapely.box(*box)]), srid, info.srid)[0]))
    frame = store.read_frame(info.name, bbox=box, columns=tuple(columns))  # type: ignore[arg-type]
    return frame.to_crs(epsg=srid) if info.srid != srid else frame


def read_divisions(store: Store, bounds: Sequence[float] | None, srid: int) -> gpd.GeoDataFrame | None:
    """Administrative divisions (code, name, level) within ``bounds`` (EPSG ``srid``), in ``srid``; None
    when the city has no such layer."""
    info = vector_layer(store, "admin_divisions")
    return None if info is None else read_layer(store, info, bounds, ("code", "name", "level"), srid)


def finest_division(divisions: gpd.GeoDataFrame | None, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The code and name of the finest-level division (street before district before city ...)
    holding each point (None where none does)."""
    codes = np.full(len(points), None, dtype=object)
    names = np.full(len(points), None, dtype=object)
    if divisions is None or not len(divisions):
        return codes, names
    levels = {level: i for i, level in enumerate(DIVISION_LEVELS)}
    rank = -np.array([levels.get(level, len(levels)) for level in divisions["level"]], dtype=float)  # finer first
    match = first_match(points, divisions.geometry.to_numpy(), rank)
    found = match >= 0
    codes[found] = divisions["code"].to_numpy()[match[found]]
    names[found] = divisions["name"].to_numpy()[match[found]]
    return codes, names


def zone_rank(zones: gpd.GeoDataFrame) -> np.ndarray:
    """Zones ranked most specific first: the smallest holding a point governs it (a zone drawn inside
    another refines it)."""
    return shapely.area(zones.geometry.to_numpy())


def feature_collection(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (lon/lat) of ``frame``, the index as each feature's ``id`` (GEOS
    writes the geometries: geopandas' ``to_json`` took 6 s for 20,000 features)."""
    out = frame.to_crs(4326) if frame.crs is not None and not CRS.from_user_input(frame.crs).equals(parse_crs(4326)) else frame
    geoms = out.geometry.to_numpy()
    written = shapely.to_geojson(geoms)
    props = records(pd.DataFrame(out.drop(columns=out.geometry.name)))
    features = [
        {"type": "Feature", "id": plain(fid), "properties": p, "geometry": None if g is None else orjson.loads(g)}
        for fid, p, g in zip(out.index, props, written)
    ]
    return {"type": "FeatureCollection", "features": features}


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN/NA → null, numpy scalars → Python, times → ISO 8601), written by
    pandas' JSON writer (four times faster than converting value by value)."""
    if not len(frame):
        return []
    text = frame.reset_index(drop=True).to_json(orient="records", date_format="iso", force_ascii=False, double_precision=15)
    return orjson.loads(text)


def plain(value: Any) -> Any:
    """A value as plain JSON-ready Python (NaN/NA/NaT → None, numpy scalars and arrays → Python, times → ISO 8601)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (date, datetime, time)):  # (pd.Timestamp is a datetime)
        return value.isoformat()
    if isinstance(value, np.generic):
        return plain(value.item())
    return value
