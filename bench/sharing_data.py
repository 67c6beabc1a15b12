"""Benchmark data for data sharing (issue 14): build sources, a build config, and two releases 1 % apart.

    .venv/bin/python -m bench.sharing_data                                 # 1,000,000 buildings
    .venv/bin/python -m bench.sharing_data --features 20000 --work /tmp/s20k \\
        --db cim_s_small --feed-db cim_s_small_feed                          # a small trial

Everything is made only when missing (``--force`` remakes it) and kept for re-runs under ``--work``
(default /work/benchdata/sharing-<features>):

- **Build sources** (for ``cim build``, the incremental-build benchmark): ``buildings.gpkg`` — the
  features benchmark's city (bench/data.py: the demo's densest district copied until there are
  ``--features`` footprints), in Web Mercator with a verifying layer, as bench/build.py writes it —
  and two versions of a POI file, ``pois_a.gpkg`` and ``pois_b.gpkg`` (one POI at every 20th
  building: 50,000 for the 1M city; B moves 1 % of A's points by ~10 m, renames 1 % and has 0.5 %
  more), one of which is copied to ``pois.gpkg``, the file the config names (bench/sharing.py
  alternates them so that every incremental build has a change to take in). ``city.yml`` is the
  build config (docs/build-config.md); the store is given on the command line (``cim build city.yml
  --store URL``): PostGIS ``--db`` (default cim_s_bench) and DuckDB ``--duckdb`` (default
  /work/benchdata/s.duckdb). This script writes no release there; the benchmark's first build does.
- **Change feed**: two releases published with ``store.publish(ReleaseDraft(...))`` into
  ``--feed-db`` (PostGIS, default cim_s_feed) and ``--feed-duckdb`` (default
  /work/benchdata/feed.duckdb): release A = the city's buildings (bench/data.py ``replicate``, in
  EPSG:4326) and POIs; release B = A with 1 % of the buildings differing: 0.4 % attributes changed
  (height + 3 m, one floor more, a name), 0.3 % geometry moved (~5 m east), 0.15 % removed, 0.15 %
  added (source ``bench-new``). Changed features keep their identity (source, source_id).
  ``--feed-db ''`` / ``--feed-duckdb ''`` skip a store.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import shapely

from bench.build import ADMIN, write_sources
from bench.data import replicate
from cim.store import LayerData, ReleaseDraft, open_store

BENCHDATA = Path("/work/benchdata")
DB, DUCKDB = "cim_s_bench", BENCHDATA / "s.duckdb"
FEED_DB, FEED_DUCKDB = "cim_s_feed", BENCHDATA / "feed.duckdb"
SEED = 14
#: one POI at every POI_EVERY-th building
POI_EVERY = 20
#: POI file B against A: moved, renamed, added (shares of A's POIs)
POI_MOVED, POI_RENAMED, POI_ADDED = 0.01, 0.01, 0.005
#: release B against A (shares of A's buildings)
ATTRIBUTES, MOVED, REMOVED, ADDED = 0.004, 0.003, 0.0015, 0.0015
MARK = "bench.sharing_data"
KEEP = 3
POI_CATEGORIES = (("amenity", "cafe"), ("shop", "supermarket"), ("office", "company"), ("leisure", "park"), ("tourism", "hotel"))

CONFIG = """\
# bench/sharing_data.py: the 1,000,000-building city's build config for the data-sharing benchmarks
city: Sharing benchmark city
storage_crs: EPSG:4326
keep: {keep}
layers:
  buildings:
    sources:
      - path: buildings.gpkg
        name: survey
        layer: buildings
        id: bid
        fields: {{name: name, use: use, height_m: height, floors: floors}}
      - path: buildings.gpkg
        name: check
        layer: buildings_check
        id: bid
        fields: {{height_m: height}}
    crosscheck:
      min_iou: 0.5
      tolerances: {{height_m: 3}}
  pois:
    sources:
      - path: pois.gpkg
        name: poi-register
        layer: pois
        id: pid
        fields: {{name: name, category: category, subcategory: subcategory, address: address}}
"""


# -- build sources ---------------------------------------------------------------------------


def poi_versions(buildings_gpkg: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(A, B): one POI at every POI_EVERY-th building of the GeoPackage (its CRS, EPSG:3857); B
    differs from A in POI_MOVED moved, POI_RENAMED renamed and POI_ADDED added POIs (seeded)."""
    picked = pyogrio.read_dataframe(buildings_gpkg, layer="buildings", columns=["bid"])
    picked = picked.iloc[::POI_EVERY]
    n = len(picked)
    k = np.arange(n) % len(POI_CATEGORIES)
    a = gpd.GeoDataFrame(
        {"pid": np.arange(1, n + 1), "name": [f"poi {i}" for i in range(1, n + 1)],
         "category": [POI_CATEGORIES[c][0] for c in k], "subcategory": [POI_CATEGORIES[c][1] for c in k],
         "address": [f"Bench street {bid}" for bid in picked["bid"]]},
        geometry=shapely.point_on_surface(picked.geometry.to_numpy()), crs=picked.crs,
    )  # fmt: skip
    rng = np.random.default_rng(SEED)
    order = rng.permutation(n)
    moved, renamed = order[: round(POI_MOVED * n)], order[round(POI_MOVED * n): round((POI_MOVED + POI_RENAMED) * n)]
    b = a.copy()
    b.loc[b.index[moved], "geometry"] = shapely.transform(b.geometry.to_numpy()[moved], lambda xy: xy + np.array([10.0, 0.0]))
    b.loc[b.index[renamed], "name"] = b["name"].iloc[renamed] + " (renamed)"
    added = round(POI_ADDED * n)
    extra = a.iloc[rng.choice(n, added, replace=False)].copy()
    extra["pid"] = np.arange(n + 1, n + added + 1)
    extra["name"] = [f"new poi {i}" for i in range(1, added + 1)]
    extra["geometry"] = shapely.transform(extra.geometry.to_numpy(), lambda xy: xy + np.array([0.0, 15.0]))
    b = gpd.GeoDataFrame(pd.concat([b, extra], ignore_index=True), geometry="geometry", crs=a.crs)
    return a, b


def build_sources(work: Path, features: int, force: bool) -> Path:
    """The GeoPackages and ``city.yml`` in ``work`` (made when missing); returns the config's path."""
    work.mkdir(parents=True, exist_ok=True)
    gpkg = work / "buildings.gpkg"
    if force or not gpkg.exists():
        started = time.monotonic()
        partial = work / "buildings.partial.gpkg"
        partial.unlink(missing_ok=True)
        write_sources(features, partial)
        partial.rename(gpkg)
        print(f"{gpkg}: {features:,} buildings in {time.monotonic() - started:.0f} s", file=sys.stderr)
    pois_a, pois_b = work / "pois_a.gpkg", work / "pois_b.gpkg"
    if force or not (pois_a.exists() and pois_b.exists()):
        a, b = poi_versions(gpkg)
        for frame, path in ((a, pois_a), (b, pois_b)):
            path.unlink(missing_ok=True)
            pyogrio.write_dataframe(frame, path, layer="pois", driver="GPKG")
        print(f"{pois_a}: {len(a):,} POIs; {pois_b}: {len(b):,}", file=sys.stderr)
    if force or not (work / "pois.gpkg").exists():
        shutil.copyfile(pois_a, work / "pois.gpkg")
    config = work / "city.yml"
    config.write_text(CONFIG.format(keep=KEEP))
    return config


# -- the change feed's two releases ----------------------------------------------------------


def _pois_layer(buildings: gpd.GeoDataFrame) -> LayerData:
    from layers.catalog import CATALOG

    picked = buildings.iloc[::POI_EVERY]
    k = np.arange(len(picked)) % len(POI_CATEGORIES)
    frame = gpd.GeoDataFrame(
        {"name": [f"poi {i}" for i in range(len(picked))], "category": [POI_CATEGORIES[c][0] for c in k],
         "subcategory": [POI_CATEGORIES[c][1] for c in k], "address": None,
         "source": "bench-pois", "source_id": picked["source_id"].to_numpy()},
        geometry=shapely.point_on_surface(picked.geometry.to_numpy()), crs=buildings.crs,
    )  # fmt: skip
    return LayerData(CATALOG["pois"], frame)


def release_a(features: int) -> list[LayerData]:
    from layers.osm_demo import load_demo_layers

    demo = next(layer for layer in load_demo_layers() if layer.spec.name == "buildings")
    buildings = replicate(demo, features)
    return [buildings, _pois_layer(buildings.frame)]


def release_b(layers: list[LayerData]) -> tuple[list[LayerData], dict[str, int]]:
    """Release A with ATTRIBUTES/MOVED/REMOVED/ADDED of its buildings changed; the counts of each."""
    old = next(layer for layer in layers if layer.spec.name == "buildings")
    frame = old.frame.copy()
    rng = np.random.default_rng(SEED + 1)
    n = len(frame)
    cuts = np.cumsum([round(share * n) for share in (ATTRIBUTES, MOVED, REMOVED)])
    picked = rng.permutation(n)
    attributes, moved, removed = picked[: cuts[0]], picked[cuts[0]: cuts[1]], picked[cuts[1]: cuts[2]]
    rows = frame.index[attributes]
    frame.loc[rows, "height_m"] = frame["height_m"].iloc[attributes].fillna(6.0) + 3.0
    frame.loc[rows, "floors"] = (frame["floors"].iloc[attributes].fillna(2) + 1).astype(frame["floors"].dtype)
    frame.loc[rows, "name"] = [f"renamed {i}" for i in range(len(attributes))]
    minx, miny, maxx, maxy = frame.total_bounds
    dx = 5 / (111_320 * math.cos(math.radians((miny + maxy) / 2)))  # ~5 m east
    frame.loc[frame.index[moved], "geometry"] = shapely.transform(frame.geometry.to_numpy()[moved], lambda xy: xy + np.array([dx, 0.0]))
    frame = frame.drop(index=frame.index[removed])
    added = round(ADDED * n)
    cx, cy = rng.uniform(minx, maxx, added), rng.uniform(miny, maxy, added)
    hx, hy = 6 / (111_320 * math.cos(math.radians((miny + maxy) / 2))), 6 / 110_570
    new = gpd.GeoDataFrame(
        {column: None for column in frame.columns if column != "geometry"}
        | {"use": "residential", "height_m": 6.0, "floors": pd.array([2] * added, dtype="Int64"),
           "source": "bench-new", "source_id": [f"new{k}" for k in range(added)]},
        geometry=shapely.multipolygons(shapely.box(cx - hx, cy - hy, cx + hx, cy + hy)[:, None]), crs=frame.crs,
    )  # fmt: skip
    frame = gpd.GeoDataFrame(pd.concat([frame, new[frame.columns]], ignore_index=True), geometry="geometry", crs=frame.crs)
    if "fid" in frame.columns:
        frame["fid"] = np.arange(1, len(frame) + 1)
    counts = {"attributes_changed": len(attributes), "geometry_moved": len(moved), "removed": len(removed), "added": added}
    return [LayerData(old.spec, frame) if layer.spec.name == "buildings" else layer for layer in layers], counts


def ensure_database(url: str) -> None:
    db = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
            conn.execute(f'CREATE DATABASE "{db}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def feed_ready(url: str, features: int) -> tuple[int, int] | None:
    """(A, B) when the store's last two releases are this data's at this size."""
    with open_store(url) as store:
        releases = store.releases()
    if len(releases) < 2:
        return None
    a, b = releases[-2], releases[-1]
    if all(r.config.get("made_by") == MARK and r.config.get("features") == features for r in (a, b)):
        return a.number, b.number
    return None


def feed_store(url: str, features: int, made: list, force: bool) -> dict:
    """Make ``url`` hold releases A and B unless it does (``made`` caches the layers between stores)."""
    if url.startswith("postgresql://"):
        ensure_database(url)
    else:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
    numbers = None if force else feed_ready(url, features)
    if numbers is None:
        if not made:
            started = time.monotonic()
            first = release_a(features)
            second, counts = release_b(first)
            made.extend([first, second, counts])
            print(f"made the feed's layers in {time.monotonic() - started:.0f} s", file=sys.stderr)
        numbers_made = []
        with open_store(url) as store:
            for name, layers in (("A", made[0]), ("B", made[1])):
                started = time.monotonic()
                config = {"made_by": MARK, "features": features, "release": name}
                info = store.publish(ReleaseDraft(layers=layers, srid=4326, config=config))
                numbers_made.append(info.number)
                print(f"{url}: release {name} = {info.number} loaded in {time.monotonic() - started:.0f} s", file=sys.stderr)
        numbers = (numbers_made[0], numbers_made[1])
    else:
        print(f"{url}: releases {numbers} ready", file=sys.stderr)
    with open_store(url) as store:
        counts = {name: store.layer(name).count for name in store.layer_names()}
    return {"store": url, "from": numbers[0], "to": numbers[1], "current_counts": counts}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None, help="where the sources go (default /work/benchdata/sharing-N)")
    parser.add_argument("--db", default=DB, help="PostGIS database the build benchmark builds into (created here)")
    parser.add_argument("--duckdb", type=Path, default=DUCKDB)
    parser.add_argument("--feed-db", default=FEED_DB)
    parser.add_argument("--feed-duckdb", default=str(FEED_DUCKDB))
    parser.add_argument("--force", action="store_true", help="remake what exists")
    args = parser.parse_args(argv)
    work = args.work or BENCHDATA / f"sharing-{args.features}"
    config = build_sources(work, args.features, args.force)
    ensure_database(f"postgresql://postgres@127.0.0.1:5432/{args.db}")
    args.duckdb.parent.mkdir(parents=True, exist_ok=True)
    made: list = []
    feeds = {}
    if args.feed_db:
        feeds["postgis"] = feed_store(f"postgresql://postgres@127.0.0.1:5432/{args.feed_db}", args.features, made, args.force)
    if args.feed_duckdb:
        feeds["duckdb"] = feed_store(args.feed_duckdb, args.features, made, args.force)
    manifest = {
        "made_by": MARK, "features": args.features, "config": str(config),
        "build_stores": {"postgis": f"postgresql://postgres@127.0.0.1:5432/{args.db}", "duckdb": str(args.duckdb)},
        "pois": [str(work / "pois_a.gpkg"), str(work / "pois_b.gpkg")], "feeds": feeds,
        "release_b_changes": made[2] if made else None,
    }  # fmt: skip
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
