"""Small hand-made city data for store and API tests: three buildings and a POI in Tianjin (CGCS2000)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

# Tianjin, around the Drum Tower (鼓楼): real-world CGCS2000 coordinates
TIANJIN = [(117.1755, 39.1425), (117.1790, 39.1440), (117.1820, 39.1410)]


def building_frame(srid: int) -> gpd.GeoDataFrame:
    geoms = [shapely.MultiPolygon([shapely.box(x, y, x + 0.0005, y + 0.0004)]) for x, y in TIANJIN]
    frame = gpd.GeoDataFrame(
        {
            "name": ["鼓楼", None, "Tower C"],
            "use": ["culture", "residential", "office"],
            "height_m": [27.0, None, 99.5],
            "floors": pd.array([3, None, 30], dtype="Int64"),
            "structure": [None, "brick", "concrete"],
            "year_built": pd.array([1921, None, 2010], dtype="Int64"),
            "address": ["鼓楼东街", None, None],
            "source": ["survey"] * 3,
            "source_id": ["b1", "b2", "b3"],
        },
        geometry=geoms,
        crs=4490,
    )
    return frame.to_crs(epsg=srid) if srid != 4490 else frame


def pois_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["鼓楼"], "category": ["tourism"], "subcategory": ["attraction"], "address": [None],
         "source": ["survey"], "source_id": ["p1"]},
        geometry=[shapely.Point(117.1757, 39.1427)],
        crs=4490,
    )
