"""A small Gauss-Krüger city with a DEM for the 3D Tiles tests (tests/test_3d_tiles.py).

Buildings: a grid of :data:`ROWS` × :data:`COLS` footprints around the Drum Tower of Tianjin, stored
in EPSG:4548 (CGCS2000 3-degree GK, CM 117°E): rectangles, L-shapes, one with a courtyard (a hole)
and a two-part MultiPolygon; heights from ``height_m``, else ``floors``, else none (the rule's default).
A release's ``variant`` moves nothing but changes heights and adds buildings, so releases differ.

DEM: a tilted plane in EPSG:3857 (the CRS a release stores rasters in), h = :data:`DEM_BASE` +
:data:`DEM_SLOPE_X`·(X − X0) + :data:`DEM_SLOPE_Y`·(Y − Y0) in Web Mercator metres. Bilinear
interpolation reproduces a plane exactly, so a footprint's ground height has a closed form
(:func:`expected_base`) that does not go through the code under test.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG

SRID = 4548
ROWS, COLS = 9, 12
#: the grid's south-west corner (lon/lat) and spacing (GK metres)
ORIGIN = (117.172, 39.135)
STEP_M = 40.0
#: the DEM: Web Mercator extent (west, north), pixel size, size, plane coefficients
DEM_PIXEL = 10.0
DEM_SIZE = 200
DEM_BASE = 12.0
DEM_SLOPE_X = 0.01
DEM_SLOPE_Y = -0.02

_TO_GK = Transformer.from_crs("EPSG:4490", f"EPSG:{SRID}", always_xy=True)
_GK_TO_LL = Transformer.from_crs(f"EPSG:{SRID}", "EPSG:4490", always_xy=True)
_LL_TO_MERC = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def _dem_origin() -> tuple[float, float]:
    """The DEM's upper-left corner (Web Mercator): the grid's centre minus half the DEM."""
    cx, cy = _LL_TO_MERC.transform(ORIGIN[0] + 0.002, ORIGIN[1] + 0.0015)
    return round(cx) - DEM_SIZE * DEM_PIXEL / 2, round(cy) + DEM_SIZE * DEM_PIXEL / 2


def dem_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The plane at Web Mercator (x, y)."""
    west, north = _dem_origin()
    return DEM_BASE + DEM_SLOPE_X * (np.asarray(x) - west) + DEM_SLOPE_Y * (np.asarray(y) - north)


def write_dem(path: Path) -> Path:
    west, north = _dem_origin()
    xs = west + (np.arange(DEM_SIZE) + 0.5) * DEM_PIXEL
    ys = north - (np.arange(DEM_SIZE) + 0.5) * DEM_PIXEL
    gx, gy = np.meshgrid(xs, ys)
    profile = {
        "driver": "GTiff", "width": DEM_SIZE, "height": DEM_SIZE, "count": 1, "dtype": "float32",
        "transform": from_origin(west, north, DEM_PIXEL, DEM_PIXEL), "crs": "EPSG:3857", "nodata": -32768.0,
        "tiled": True, "blockxsize": 256, "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dem_height(gx, gy).astype("float32"), 1)
    return path


def expected_base(footprint: shapely.Geometry) -> float:
    """The DEM rule in closed form: the lowest plane height over the bbox corners and the centroid."""
    x0, y0, x1, y1 = footprint.bounds
    c = footprint.centroid
    xs = np.array([x0, x1, x1, x0, c.x])
    ys = np.array([y0, y0, y1, y1, c.y])
    lon, lat = _GK_TO_LL.transform(xs, ys)
    mx, my = _LL_TO_MERC.transform(lon, lat)
    return float(dem_height(mx, my).min())


def _footprint(i: int, x: float, y: float) -> shapely.Geometry:
    kind = i % 5
    if kind == 0:
        return shapely.box(x, y, x + 20, y + 12)
    if kind == 1:  # an L
        return shapely.Polygon([(x, y), (x + 24, y), (x + 24, y + 8), (x + 9, y + 8), (x + 9, y + 22), (x, y + 22)])
    if kind == 2:  # a courtyard
        return shapely.Polygon(shapely.box(x, y, x + 26, y + 26).exterior, [shapely.box(x + 8, y + 8, x + 18, y + 18).exterior.coords[::-1]])
    if kind == 3:  # two parts
        return shapely.MultiPolygon([shapely.box(x, y, x + 10, y + 10), shapely.box(x + 14, y, x + 24, y + 16)])
    return shapely.affinity.rotate(shapely.box(x, y, x + 18, y + 10), 30, origin=(x, y))


def building_frame(variant: int = 0) -> gpd.GeoDataFrame:
    """The city's buildings (EPSG:4548); ``variant`` > 0 changes heights and adds a row."""
    x0, y0 = _TO_GK.transform(*ORIGIN)
    rows = ROWS + (1 if variant else 0)
    geoms, heights, floors, ids = [], [], [], []
    for r in range(rows):
        for c in range(COLS):
            i = r * COLS + c
            geom = _footprint(i, x0 + c * STEP_M, y0 + r * STEP_M)
            geoms.append(geom if geom.geom_type == "MultiPolygon" else shapely.MultiPolygon([geom]))
            which = i % 3
            heights.append(6.0 + (i % 17) * 2.5 + 3 * variant if which == 0 else None)
            floors.append(1 + i % 11 if which == 1 else None)
            ids.append(f"g{i}")
    return gpd.GeoDataFrame(
        {
            "name": [f"Building {i}" if i % 4 else None for i in range(len(ids))],
            "use": ["residential" if i % 2 else "office" for i in range(len(ids))],
            "height_m": heights,
            "floors": pd.array(floors, dtype="Int64"),
            "structure": [None] * len(ids), "year_built": pd.array([None] * len(ids), dtype="Int64"),
            "address": [None] * len(ids),
            "source": ["survey"] * len(ids), "source_id": ids,
        },
        geometry=geoms, crs=SRID,
    )


def publish_scene_city(url: str, directory: Path, variant: int = 0, dem: bool = True, keep: int | None = None) -> int:
    """Publish the city as a new release of the store at ``url``; its number."""
    layers = [LayerData(CATALOG["buildings"], building_frame(variant))]
    if dem:
        empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:3857"))
        layers.append(LayerData(CATALOG["dem"], empty, raster_path=str(write_dem(directory / f"dem{variant}.tif"))))
    with open_store(url) as store:
        return store.publish(ReleaseDraft(layers=layers, srid=SRID), keep=keep).number
