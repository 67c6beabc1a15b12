"""Spatial partitions of a source: runs of features along a Hilbert curve (a distributed build).

The Hilbert distance (dask-geopandas) of each feature's bounds midpoint over the source's extent
orders the features so that those near each other are near in the order; equal runs of that order
are the partitions. Identical geometries have the same distance, so they are neighbours (the build's
dedupe does not rely on it: it groups over the whole source).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

#: features per spatial partition; a source with no more is built in-process
DEFAULT_PARTITION_ROWS = 25_000
#: precision of the Hilbert curve (dask-geopandas' maximum: 2^16 cells a side)
HILBERT_LEVEL = 16


def partition_count(rows: int, rows_per_partition: int) -> int:
    return max(1, math.ceil(rows / rows_per_partition))


def hilbert_order(geoms: np.ndarray) -> np.ndarray:
    """Positions of ``geoms`` along a Hilbert curve over their extent (missing or empty ones first, ties
    in row order). Identical geometries have the same distance, so they are neighbours."""
    geoms = np.asarray(geoms, dtype=object)
    bounds = shapely.bounds(geoms)
    present = np.isfinite(bounds).all(axis=1)
    distance = np.full(len(geoms), -1, dtype=np.int64)
    if present.any():
        import dask_geopandas

        series = gpd.GeoSeries(geoms[present])
        extent = np.array([*bounds[present, :2].min(axis=0), *bounds[present, 2:].max(axis=0)])
        extent[2:] = np.maximum(extent[2:], extent[:2] + 1e-9)  # a curve over one point or a line
        hilbert = dask_geopandas.from_geopandas(series, npartitions=1).hilbert_distance(
            total_bounds=extent, level=HILBERT_LEVEL
        )
        distance[present] = hilbert.compute(scheduler="sync").to_numpy()
    return np.argsort(distance, kind="stable")


def spatial_partitions(geoms: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` runs of equal size along the Hilbert curve, each as ascending row positions."""
    return [np.sort(run) for run in np.array_split(hilbert_order(geoms), count) if len(run)]
