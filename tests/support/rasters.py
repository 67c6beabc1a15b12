"""Synthetic raster sources over Tianjin for the raster tests, written as GeoTIFFs by rasterio.

- ``dem.tif``: a Gaussian hill (peak :data:`PEAK_M` + :data:`BASE_M` m at :data:`HILL` lon/lat) in
  EPSG:4548 (CGCS2000 3-degree GK, CM 117E), 10 m pixels, 400 × 400, float32, nodata -9999 in a
  120 × 120 block (1.2 km, 9 % of the pixels) at the north-west corner;
- ``ortho.tif``: a 3-band RGB orthophoto in EPSG:4490 over the same area (red rises to the east,
  green to the south, blue constant 128), 8 bit, no nodata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

#: the top of the hill, CGCS2000 lon/lat (near the Drum Tower)
HILL = (117.1800, 39.1400)
BASE_M = 5.0
PEAK_M = 100.0
SIGMA_M = 800.0
PIXEL_M = 10.0
SIZE = 400
DEM_NODATA = -9999.0
NODATA_BLOCK = 120
#: the orthophoto's extent (lon/lat) and size
ORTHO_BOUNDS = (117.165, 39.125, 117.195, 39.155)
ORTHO_SIZE = 300
BLUE = 128

_TO_GK = Transformer.from_crs("EPSG:4490", "EPSG:4548", always_xy=True)


def hill_centre_gk() -> tuple[float, float]:
    return _TO_GK.transform(*HILL)


def dem_origin() -> tuple[float, float]:
    """Upper-left corner of the DEM in EPSG:4548 (x, y), on whole metres."""
    cx, cy = hill_centre_gk()
    return round(cx) - SIZE * PIXEL_M / 2, round(cy) + SIZE * PIXEL_M / 2


def elevation_at(lon: float, lat: float) -> float:
    """The true height of the hill at a CGCS2000 lon/lat."""
    x, y = _TO_GK.transform(lon, lat)
    cx, cy = hill_centre_gk()
    return BASE_M + PEAK_M * float(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * SIGMA_M**2)))


def dem_array() -> np.ndarray:
    west, north = dem_origin()
    cx, cy = hill_centre_gk()
    xs = west + (np.arange(SIZE) + 0.5) * PIXEL_M
    ys = north - (np.arange(SIZE) + 0.5) * PIXEL_M
    gx, gy = np.meshgrid(xs, ys)
    heights = BASE_M + PEAK_M * np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * SIGMA_M**2))
    heights[:NODATA_BLOCK, :NODATA_BLOCK] = DEM_NODATA
    return heights.astype("float32")


def write_dem(path: Path, crs: str | None = "EPSG:4548", nodata: float | None = DEM_NODATA, **extra) -> Path:
    west, north = dem_origin()
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "dtype": "float32",
        "transform": from_origin(west, north, PIXEL_M, PIXEL_M),
        "nodata": nodata,
        **extra,
    }
    if crs is not None:
        profile["crs"] = rasterio.crs.CRS.from_user_input(crs)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dem_array(), 1)
    return path


def ortho_array() -> np.ndarray:
    cols = np.linspace(0, 255, ORTHO_SIZE).astype("uint8")
    red = np.tile(cols, (ORTHO_SIZE, 1))
    green = red.T.copy()
    blue = np.full((ORTHO_SIZE, ORTHO_SIZE), BLUE, dtype="uint8")
    return np.stack([red, green, blue])


def write_ortho(path: Path, crs: str = "EPSG:4490") -> Path:
    west, south, east, north = ORTHO_BOUNDS
    transform = from_origin(west, north, (east - west) / ORTHO_SIZE, (north - south) / ORTHO_SIZE)
    with rasterio.open(
        path, "w", driver="GTiff", width=ORTHO_SIZE, height=ORTHO_SIZE, count=3, dtype="uint8",
        crs=rasterio.crs.CRS.from_user_input(crs), transform=transform, photometric="RGB",
    ) as dst:
        dst.write(ortho_array())
    return path


def raster_config(root: Path, dem: str | None = "data/dem.tif", ortho: str | None = "data/ortho.tif", extra: str = "") -> Path:
    """A build config with the raster layers (and the sources written, unless they exist)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    lines = ["city: Tianjin", "storage_crs: EPSG:4490", "layers:"]
    if dem is not None:
        if dem == "data/dem.tif" and not (root / dem).exists():
            write_dem(root / dem)
        lines += ["  dem:", "    sources:", f"      - path: {dem}"]
        lines += [f"        {line}" for line in extra.splitlines() if line]
    if ortho is not None:
        if ortho == "data/ortho.tif" and not (root / ortho).exists():
            write_ortho(root / ortho)
        lines += ["  imagery:", "    sources:", f"      - path: {ortho}"]
    config = root / "rasters.yml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def publish_raster_city(store_url: str, root: Path, dem_shift: float = 0.0) -> int:
    """The raster city (DEM with a hill, imagery) built, with three buildings, as the store's next
    release; ``dem_shift`` raises the hill (the same hill, higher)."""
    from support.citydata import building_frame

    from cim.build import load_config, prepare
    from cim.store import LayerData, open_store
    from layers.catalog import CATALOG

    config = raster_config(root)
    if dem_shift:
        with rasterio.open(root / "data" / "dem.tif", "r+") as dst:
            data = dst.read(1)
            dst.write(np.where(data == dst.nodata, data, data + dem_shift), 1)
    prepared = prepare(load_config(config))
    try:
        prepared.draft.layers.append(LayerData(CATALOG["buildings"], building_frame(4490)))
        with open_store(store_url) as store:
            return store.publish(prepared.draft).number
    finally:
        prepared.discard()
