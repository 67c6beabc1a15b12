"""Benchmark data: the demo city's buildings replicated to N footprints over a grid of copies.

The copies are laid side by side east and north of the demo area (about 2° x 0.4° each), so the
layer covers a large area with the real density and shapes of the demo footprints.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cim.store import LayerData


def replicate(buildings: LayerData, total: int) -> LayerData:
    """``buildings`` copied on a grid until there are ``total`` features (fids 1..total)."""
    frame = buildings.frame
    minx, miny, maxx, maxy = frame.total_bounds
    width, height = (maxx - minx) * 1.05, (maxy - miny) * 1.05
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
    return LayerData(buildings.spec, gpd.GeoDataFrame(big, geometry="geometry", crs=frame.crs))
