"""Benchmark data: a city of N building footprints made of copies of the demo's densest district.

The demo's largest source (Karhula, Kotka: about 2,200 real OSM footprints in 2.2 km x 2.2 km, the
1st–99th percentile box of their centroids) is laid out again and again on a grid, side by side, until
there are N footprints: 1,000,000 make a city of some 48 km x 46 km at about 450 buildings per km²,
the density of a large city's built-up area (a z10 WebMercatorQuad tile there, about 20 km square,
holds ~175,000 footprints).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cim.store import LayerData

#: the share of outliers cut on each side of the core (by centroid)
CORE_QUANTILE = 0.01


def dense_core(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The footprints of the frame's largest source whose centroids lie in its central quantile box."""
    if "source" in frame.columns:
        frame = frame[frame["source"] == frame["source"].value_counts().index[0]]
    centroids = frame.geometry.centroid
    lo_x, hi_x = centroids.x.quantile([CORE_QUANTILE, 1 - CORE_QUANTILE])
    lo_y, hi_y = centroids.y.quantile([CORE_QUANTILE, 1 - CORE_QUANTILE])
    inside = centroids.x.between(lo_x, hi_x) & centroids.y.between(lo_y, hi_y)
    return frame[inside.to_numpy()].reset_index(drop=True)


def replicate(buildings: LayerData, total: int) -> LayerData:
    """``buildings``' dense core copied on a grid until there are ``total`` features (fids 1..total)."""
    frame = dense_core(buildings.frame)
    minx, miny, maxx, maxy = frame.total_bounds
    width, height = (maxx - minx) * 1.02, (maxy - miny) * 1.02
    copies = math.ceil(total / len(frame))
    columns = math.ceil(math.sqrt(copies))
    geoms = frame.geometry.to_numpy()
    parts = []
    for k in range(copies):
        dx, dy = (k % columns) * width, (k // columns) * height
        moved = shapely.transform(geoms, lambda xy, dx=dx, dy=dy: xy + np.array([dx, dy]))
        part = pd.DataFrame(frame.drop(columns="geometry"))
        part["source_id"] = part["source_id"] + f"#{k}"
        parts.append(gpd.GeoDataFrame(part, geometry=moved, crs=frame.crs))
    big = pd.concat(parts, ignore_index=True).iloc[:total].reset_index(drop=True)
    if "fid" in big.columns:
        big["fid"] = np.arange(1, len(big) + 1)
    return LayerData(buildings.spec, gpd.GeoDataFrame(big, geometry="geometry", crs=frame.crs))
