"""Benchmark data for the CIM+ processes (issue 13): the 1,000,000-building city with a plan, in two releases.

    .venv/bin/python -m bench.processes_data            # both stores, each made only when missing
    .venv/bin/python -m bench.processes_data --features 20000 --db cim_p_small --duckdb /tmp/p.duckdb

Release 1 is the features/impact benchmarks' city (bench/data.py ``replicate``: the demo's densest
district copied on a grid until there are ``--features`` footprints, ~450 per km²; bench/impact.py
``divisions``: 10 km districts split into 2 km streets) with what the processes read, laid out on one
grid that nests in the divisions' (100 m parcels, 500 m zones, 2 km streets, 10 km districts):

- buildings: the OSM footprints have almost no heights, so a missing ``floors`` is drawn (seeded) from
  1–8 floors (most 1–3) and a missing ``height_m`` is floors x 3 m;
- landuse (zoning): 500 m zones, each residential R1 (12 m, FAR 1.2) / R2 (24 m, FAR 2.0), commercial
  B1 (45 m, FAR 4.0) or industrial M1 (15 m, FAR 1.5), seeded — so buildings of 5+ floors in R1 and
  industrial-zone houses exceed a limit or the zone's use;
- parcels: the 100 m blocks of the grid (parcel_id ``P<col>-<row>``, land_use = the zone's code, area_m2
  measured in the local UTM zone, ~10,090 m²); they tile the city without overlapping;
- roads: the grid lines, 500 m segments: primary every 2 km, secondary every 500 m, residential every 100 m;
- pois: one at every 50th building (category cycles over amenity/shop/office/leisure/tourism);
- admin_divisions and the demo's water as bench/impact.py has them.

Release 2 = release 1 with 1 % of the buildings changed (one floor more, height + 3 m), 0.5 % removed
and 0.5 % added (new 12 m x 12 m, 2-floor buildings at seeded points; source ``bench-new``).
Identity across releases is (source, source_id), as everywhere in the store.

Stores: PostGIS database ``--db`` (default cim_p_bench, created with PostGIS) and the embedded
``--duckdb`` (default /work/benchdata/p.duckdb); when both hold the two releases, ``--ready`` (default
/work/helpers/bench-ready.txt) is written with their URLs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from bench.data import replicate
from bench.impact import ADMIN, divisions
from cim.store import LayerData, ReleaseDraft, open_store

DB = "cim_p_bench"
DUCKDB = Path("/work/benchdata/p.duckdb")
READY = Path("/work/helpers/bench-ready.txt")
SEED = 13
#: metres of one parcel side; zones are ZONE parcels wide, streets STREET parcels (bench/impact.py: 2 km)
PARCEL_M, ZONE, STREET = 100.0, 5, 20
#: zoning class -> (use, height limit m, FAR limit), and the chance a zone gets it
ZONING = {"R1": ("residential", 12.0, 1.2), "R2": ("residential", 24.0, 2.0), "B1": ("commercial", 45.0, 4.0), "M1": ("industrial", 15.0, 1.5)}
ZONING_P = (0.35, 0.35, 0.15, 0.15)
FLOORS_P = {1: 0.35, 2: 0.3, 3: 0.15, 4: 0.08, 5: 0.05, 6: 0.04, 8: 0.03}
POI_CATEGORIES = (("amenity", "cafe"), ("shop", "supermarket"), ("office", "company"), ("leisure", "park"), ("tourism", "hotel"))
CHANGED, REMOVED, ADDED = 0.01, 0.005, 0.005
MARK = "bench.processes_data"


class Grid:
    """The 100 m grid over ``bounds`` (lon/lat), aligned with bench/impact.py's 2 km streets."""

    def __init__(self, bounds: tuple[float, float, float, float]) -> None:
        self.minx, self.miny, maxx, maxy = bounds
        # the same degrees-per-2 km as divisions(), split into 20 parcels, so parcels nest in streets
        self.dx = 2000 / (111_320 * math.cos(math.radians((self.miny + maxy) / 2))) / STREET
        self.dy = 2000 / 110_570 / STREET
        self.nx = math.ceil((maxx - self.minx) / (self.dx * STREET)) * STREET
        self.ny = math.ceil((maxy - self.miny) / (self.dy * STREET)) * STREET

    def x(self, i: np.ndarray | int) -> np.ndarray:
        return self.minx + np.asarray(i) * self.dx

    def y(self, j: np.ndarray | int) -> np.ndarray:
        return self.miny + np.asarray(j) * self.dy


def _frame(layer: str, rows: dict, geoms: np.ndarray, source: str, ids: np.ndarray) -> LayerData:
    from layers.catalog import CATALOG

    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)
    frame["source"], frame["source_id"] = source, ids
    return LayerData(CATALOG[layer], frame)


def zone_codes(grid: Grid) -> np.ndarray:
    """The zoning class of every 500 m zone, [zone column, zone row], seeded."""
    rng = np.random.default_rng(SEED)
    return rng.choice(list(ZONING), size=(grid.nx // ZONE, grid.ny // ZONE), p=ZONING_P)


def zoning(grid: Grid, codes: np.ndarray) -> LayerData:
    zi, zj = np.meshgrid(np.arange(codes.shape[0]), np.arange(codes.shape[1]), indexing="ij")
    zi, zj, flat = zi.ravel(), zj.ravel(), codes.ravel()
    boxes = shapely.box(grid.x(zi * ZONE), grid.y(zj * ZONE), grid.x((zi + 1) * ZONE), grid.y((zj + 1) * ZONE))
    rows = {
        "use": [ZONING[c][0] for c in flat],
        "zoning_code": flat,
        "height_limit_m": [ZONING[c][1] for c in flat],
        "far_limit": [ZONING[c][2] for c in flat],
    }
    return _frame("landuse", rows, shapely.multipolygons(boxes[:, None]), "bench-plan", np.char.add(np.char.add(zi.astype(str), "-"), zj.astype(str)))


def parcels(grid: Grid, codes: np.ndarray) -> LayerData:
    i, j = np.meshgrid(np.arange(grid.nx), np.arange(grid.ny), indexing="ij")
    i, j = i.ravel(), j.ravel()
    boxes = shapely.box(grid.x(i), grid.y(j), grid.x(i + 1), grid.y(j + 1))
    ids = np.char.add(np.char.add(np.char.add("P", i.astype(str)), "-"), j.astype(str))
    area = gpd.GeoSeries(boxes, crs=4326).to_crs(gpd.GeoSeries(boxes[:1], crs=4326).estimate_utm_crs()).area.round(1)
    rows = {"parcel_id": ids, "land_use": codes[i // ZONE, j // ZONE], "area_m2": area.to_numpy(), "plot_ratio": np.nan}
    return _frame("parcels", rows, shapely.multipolygons(boxes[:, None]), "bench-cadastre", ids)


def roads(grid: Grid) -> LayerData:
    """Every grid line cut into 500 m segments; the class by the line's spacing."""
    lines, classes, names = [], [], []
    for axis, count, length in (("x", grid.nx, grid.ny), ("y", grid.ny, grid.nx)):
        for k in range(count + 1):
            road_class = "primary" if k % STREET == 0 else "secondary" if k % ZONE == 0 else "residential"
            for s in range(0, length, ZONE):
                if axis == "x":
                    coords = [(grid.x(k), grid.y(s)), (grid.x(k), grid.y(s + ZONE))]
                else:
                    coords = [(grid.x(s), grid.y(k)), (grid.x(s + ZONE), grid.y(k))]
                lines.append(shapely.MultiLineString([coords]))
                classes.append(road_class)
                names.append(f"{'North' if axis == 'x' else 'East'} road {k}")
    n = len(lines)
    rows = {"name": names, "road_class": classes, "lanes": pd.array([4 if c == "primary" else 2 for c in classes], dtype="Int64"),
            "oneway": False, "surface": "asphalt"}
    return _frame("roads", rows, np.array(lines, dtype=object), "bench-roads", np.arange(1, n + 1).astype(str))


def pois(buildings: gpd.GeoDataFrame) -> LayerData:
    picked = buildings.iloc[::50]
    k = np.arange(len(picked)) % len(POI_CATEGORIES)
    rows = {"name": [f"poi {n}" for n in range(len(picked))], "category": [POI_CATEGORIES[c][0] for c in k],
            "subcategory": [POI_CATEGORIES[c][1] for c in k], "address": None}
    return _frame("pois", rows, shapely.point_on_surface(picked.geometry.to_numpy()), "bench-pois", picked["source_id"].to_numpy())


def with_heights(layer: LayerData) -> LayerData:
    """Missing floors drawn from FLOORS_P (seeded), missing heights = floors x 3 m."""
    frame = layer.frame.copy()
    rng = np.random.default_rng(SEED)
    drawn = rng.choice(list(FLOORS_P), size=len(frame), p=list(FLOORS_P.values()))
    frame["floors"] = frame["floors"].fillna(pd.Series(drawn, index=frame.index)).astype("Int64")
    frame["height_m"] = frame["height_m"].fillna(frame["floors"].astype(float) * 3.0)
    return LayerData(layer.spec, frame)


def release_1(features: int) -> list[LayerData]:
    from layers.osm_demo import load_demo_layers

    demo = {layer.spec.name: layer for layer in load_demo_layers()}
    buildings = with_heights(replicate(demo["buildings"], features))
    grid = Grid(tuple(buildings.frame.total_bounds))
    codes = zone_codes(grid)
    return [zoning(grid, codes), demo["water"], roads(grid), parcels(grid, codes), buildings, pois(buildings.frame),
            divisions(tuple(buildings.frame.total_bounds))]


def release_2(layers: list[LayerData]) -> list[LayerData]:
    """Release 1's layers with CHANGED/REMOVED/ADDED of the buildings changed, removed and added."""
    old = next(layer for layer in layers if layer.spec.name == "buildings")
    frame = old.frame.copy()
    rng = np.random.default_rng(SEED + 1)
    n = len(frame)
    picked = rng.permutation(n)
    changed, removed = picked[: round(CHANGED * n)], picked[round(CHANGED * n): round((CHANGED + REMOVED) * n)]
    frame.loc[frame.index[changed], "floors"] = frame["floors"].iloc[changed] + 1
    frame.loc[frame.index[changed], "height_m"] = frame["height_m"].iloc[changed] + 3.0
    frame = frame.drop(index=frame.index[removed])
    added = round(ADDED * n)
    minx, miny, maxx, maxy = old.frame.total_bounds
    cx, cy = rng.uniform(minx, maxx, added), rng.uniform(miny, maxy, added)
    hx, hy = 6 / (111_320 * math.cos(math.radians((miny + maxy) / 2))), 6 / 110_570
    new = gpd.GeoDataFrame(
        {"name": None, "use": "residential", "height_m": 6.0, "floors": pd.array([2] * added, dtype="Int64"),
         "structure": "concrete", "year_built": pd.array([2026] * added, dtype="Int64"), "address": None,
         "source": "bench-new", "source_id": [f"new{k}" for k in range(added)]},
        geometry=shapely.multipolygons(shapely.box(cx - hx, cy - hy, cx + hx, cy + hy)[:, None]), crs=frame.crs,
    )
    frame = gpd.GeoDataFrame(pd.concat([frame, new[frame.columns]], ignore_index=True), geometry="geometry", crs=frame.crs)
    if "fid" in frame.columns:
        frame["fid"] = np.arange(1, len(frame) + 1)
    return [LayerData(old.spec, frame) if layer.spec.name == "buildings" else layer for layer in layers]


def ready(url: str, features: int) -> bool:
    with open_store(url) as store:
        releases = store.releases()
        return len(releases) >= 2 and releases[-1].config.get("made_by") == MARK and releases[-1].config.get("features") == features


def prepare(url: str, features: int, made: list[list[LayerData]]) -> None:
    """Make ``url`` hold the two releases unless it does (``made`` caches the layers between stores)."""
    if url.startswith("postgresql://"):
        db = url.rsplit("/", 1)[1]
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                conn.execute(f'CREATE DATABASE "{db}"')
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    else:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
    if ready(url, features):
        print(f"{url}: ready", file=sys.stderr)
        return
    if not made:
        started = time.monotonic()
        first = release_1(features)
        made.extend([first, release_2(first)])
        print(f"made the layers in {time.monotonic() - started:.0f} s", file=sys.stderr)
    with open_store(url) as store:
        for number, layers in enumerate(made, start=1):
            started = time.monotonic()
            config = {"made_by": MARK, "features": features, "release": number}
            store.publish(ReleaseDraft(layers=layers, srid=4326, config=config))
            print(f"{url}: release {number} loaded in {time.monotonic() - started:.0f} s", file=sys.stderr)


def describe(url: str) -> str:
    with open_store(url) as store:
        releases = [r.number for r in store.releases()]
        counts = ", ".join(f"{name} {store.layer(name).count:,}" for name in store.layer_names())
    return f"{url}\n  releases {releases} (current {releases[-1]}; the last two are this data's 1 and 2)\n  current: {counts}\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--db", default=DB)
    parser.add_argument("--duckdb", type=Path, default=DUCKDB)
    parser.add_argument("--ready", type=Path, default=READY)
    args = parser.parse_args(argv)
    urls = [f"postgresql://postgres@127.0.0.1:5432/{args.db}", str(args.duckdb)]
    made: list[list[LayerData]] = []
    for url in urls:
        prepare(url, args.features, made)
    n = args.features
    text = (
        "Processes bench data (bench/processes_data.py; its docstring says what the layers hold):\n"
        f"release 2 = release 1 with {round(CHANGED * n):,} buildings changed (floors + 1, height_m + 3), "
        f"{round(REMOVED * n):,} removed, {round(ADDED * n):,} added (source 'bench-new'); identity (source, source_id).\n"
        "Zones 500 m (R1 12 m/FAR 1.2, R2 24 m/2.0, B1 45 m/4.0, M1 15 m/1.5), parcels 100 m, districts 10 km, streets 2 km.\n\n"
        + "".join(describe(u) for u in urls)
    )
    args.ready.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
