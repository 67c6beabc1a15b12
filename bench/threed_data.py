"""Benchmark data for 3D Tiles (issue 15): the 1,000,000-building city with heights, on a DEM, in both stores.

    .venv/bin/python -m bench.threed_data                      # both stores, each made only when missing
    .venv/bin/python -m bench.threed_data --features 20000 --db cim_h6_small --duckdb /tmp/t.duckdb   # a trial
    .venv/bin/python -m bench.threed_data --force              # publish it again (e.g. after the code changed)

One release per store, published with ``store.publish(ReleaseDraft(...))`` and then
``store.prepare_tiles()`` (what ``cim build`` does after publishing):

- the CIM+ processes benchmark's city (bench/processes_data.py ``release_1``): bench/data.py's
  1,000,000 buildings (the demo's densest district copied on a grid, ~48 km x 46 km) with floors drawn
  where OSM has none (1–8, most 1–3) and ``height_m`` = floors x 3 m, so that the blocks have a
  realistic spread of heights; zoning, parcels, roads, POIs, districts and the demo's water as the base
  map the 3D viewer drapes;
- a DEM (``dem``, unless ``--no-dem``): a synthetic terrain over the city and 2 km around it — a
  gentle slope, two ranges of hills (``terrain_height``: 5–~135 m) — written as a Cloud-Optimised GeoTIFF
  in EPSG:3857 like a build writes one (cim/build/raster.py: float32, 256-pixel blocks, DEFLATE,
  overviews), :data:`DEM_PIXEL_M` Web-Mercator metres a pixel; the blocks stand on it (tiles/terrain/sample.py).

Stores: PostGIS ``--db`` (default cim_h6_bench, created with PostGIS) and DuckDB ``--duckdb`` (default
/work/benchdata/threed.duckdb). A store is ready when its current release is this script's at this size
(``config.made_by``/``features``/``dem``); ``--force`` publishes again (older releases pruned: ``keep`` 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.shutil
from pyproj import Transformer
from rasterio.transform import from_origin

from bench.processes_data import release_1
from bench.sharing_data import BENCHDATA, ensure_database
from cim.build.raster import COG_OPTIONS
from cim.store import RASTER_SRID, LayerData, ReleaseDraft, open_store

DB = "cim_h6_bench"
DUCKDB = BENCHDATA / "threed.duckdb"
MARK = "bench.threed_data"
#: Web-Mercator metres of a DEM pixel (~20 m on the ground at 60° N)
DEM_PIXEL_M = 40.0
#: metres of terrain around the buildings' box
DEM_MARGIN_M = 2000.0
DEM_NODATA = -32768.0


def terrain_height(x: np.ndarray, y: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """Heights (m) at Web-Mercator (x, y), relative to the box's south-west corner (x0, y0): a slope
    of ~0.3 ‰ plus two ranges of hills (~8 km and ~3 km across), 5 m at the lowest."""
    dx, dy = (x - x0) / 1000.0, (y - y0) / 1000.0  # km
    slope = 0.03 * dx + 0.02 * dy
    hills = 40 * (1 + np.sin(dx / 8.0 * np.pi) * np.cos(dy / 9.0 * np.pi)) + 12 * (1 + np.sin(dx / 3.1 + 1.3) * np.sin(dy / 2.7))
    return (5.0 + slope + hills).astype(np.float32)


def write_dem(bounds_4326: tuple[float, float, float, float], out: Path) -> dict:
    """A COG of :func:`terrain_height` over ``bounds_4326`` (lon/lat) and DEM_MARGIN_M around it."""
    to_mercator = Transformer.from_crs("EPSG:4326", f"EPSG:{RASTER_SRID}", always_xy=True)
    west, south = to_mercator.transform(bounds_4326[0], bounds_4326[1])
    east, north = to_mercator.transform(bounds_4326[2], bounds_4326[3])
    # the margin in Web-Mercator metres (a ground metre is 1/cos(lat) of them)
    scale = 1 / np.cos(np.radians((bounds_4326[1] + bounds_4326[3]) / 2))
    margin = DEM_MARGIN_M * scale
    west, south, east, north = west - margin, south - margin, east + margin, north + margin
    width = int(np.ceil((east - west) / DEM_PIXEL_M))
    height = int(np.ceil((north - south) / DEM_PIXEL_M))
    xs = west + (np.arange(width) + 0.5) * DEM_PIXEL_M
    ys = north - (np.arange(height) + 0.5) * DEM_PIXEL_M
    gx, gy = np.meshgrid(xs, ys)
    heights = terrain_height(gx, gy, west, south)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cim-bench-dem-") as tmp:
        plain = Path(tmp) / "dem.tif"
        profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
                   "crs": f"EPSG:{RASTER_SRID}", "transform": from_origin(west, north, DEM_PIXEL_M, DEM_PIXEL_M),
                   "nodata": DEM_NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}  # fmt: skip
        with rasterio.open(plain, "w", **profile) as dst:
            dst.write(heights, 1)
        partial = out.with_suffix(".partial.tif")
        options = dict(COG_OPTIONS, PREDICTOR="3", RESAMPLING="BILINEAR", OVERVIEW_RESAMPLING="AVERAGE")
        rasterio.shutil.copy(plain, partial, driver="COG", **options)
        partial.rename(out)
    return {"path": str(out), "width": width, "height": height, "pixel_m": DEM_PIXEL_M,
            "min_m": round(float(heights.min()), 1), "max_m": round(float(heights.max()), 1), "bytes": out.stat().st_size}  # fmt: skip


def dem_layer(path: Path) -> LayerData:
    """The DEM as a build hands it to the store (cim/build/raster.py ``build_raster_layer``)."""
    from layers.catalog import CATALOG

    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=f"EPSG:{RASTER_SRID}"))
    return LayerData(CATALOG["dem"], empty, raster_path=str(path))


def ready(url: str, features: int, dem: bool) -> int | None:
    """The current release's number when it is this data's at this size (and DEM choice)."""
    with open_store(url) as store:
        info = store.current_release()
    if info is None:
        return None
    config = info.config
    if config.get("made_by") == MARK and config.get("features") == features and config.get("dem") == dem:
        return info.number
    return None


def make_layers(features: int, dem: bool, work: Path) -> tuple[list[LayerData], dict | None]:
    started = time.monotonic()
    layers = release_1(features)
    dem_info = None
    if dem:
        buildings = next(layer for layer in layers if layer.spec.name == "buildings")
        dem_info = write_dem(tuple(buildings.frame.total_bounds), work / f"threed-dem-{features}.tif")
        layers.append(dem_layer(Path(dem_info["path"])))
    print(f"made the layers in {time.monotonic() - started:.0f} s (DEM: {dem_info})", file=sys.stderr)
    return layers, dem_info


def prepare(url: str, features: int, dem: bool, made: list, force: bool, work: Path) -> dict:
    """Make ``url``'s current release this data (``made`` caches the layers between stores)."""
    if url.startswith("postgresql://"):
        ensure_database(url)
    else:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
    number = None if force else ready(url, features, dem)
    entry: dict = {"store": url}
    if number is None:
        if not made:
            made.extend(make_layers(features, dem, work))
        layers, dem_info = made
        with open_store(url) as store:
            started = time.monotonic()
            config = {"made_by": MARK, "features": features, "dem": dem, "dem_info": dem_info}
            info = store.publish(ReleaseDraft(layers=layers, srid=4326, config=config), keep=1)
            entry["publish_s"] = round(time.monotonic() - started, 1)
            started = time.monotonic()
            store.prepare_tiles()
            entry["prepare_tiles_s"] = round(time.monotonic() - started, 1)
            number = info.number
        print(f"{url}: release {number} published in {entry['publish_s']} s, tile geometry in {entry['prepare_tiles_s']} s",
              file=sys.stderr)  # fmt: skip
    else:
        print(f"{url}: release {number} ready", file=sys.stderr)
    with open_store(url) as store:
        entry["release"] = number
        entry["counts"] = {name: store.layer(name).count for name in store.layer_names()}
        entry["layers"] = store.layer_names()
    return entry


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--db", default=DB, help="PostGIS database (created with PostGIS when missing); '' skips it")
    parser.add_argument("--duckdb", default=str(DUCKDB), help="embedded store file; '' skips it")
    parser.add_argument("--no-dem", dest="dem", action="store_false", help="a city without DEM (blocks on height 0)")
    parser.add_argument("--work", type=Path, default=BENCHDATA, help="where the DEM's COG is staged")
    parser.add_argument("--force", action="store_true", help="publish again even when the store holds this data")
    args = parser.parse_args(argv)
    made: list = []
    stores = {}
    if args.db:
        stores["postgis"] = prepare(f"postgresql://postgres@127.0.0.1:5432/{args.db}", args.features, args.dem, made, args.force, args.work)
    if args.duckdb:
        stores["duckdb"] = prepare(args.duckdb, args.features, args.dem, made, args.force, args.work)
    manifest = {"made_by": MARK, "features": args.features, "dem": args.dem, "stores": stores}
    print(json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    main()
