"""Incremental build benchmark: a city of N buildings and a few POIs built in full, then again with
only the POI source changed (the buildings carried over, cim/build/carry.py), on both stores.

    .venv/bin/python -m bench.incremental --features 100000            # -> bench/results/incremental.json
    .venv/bin/python -m bench.incremental --features 1000000 --carry-only   # DuckDB: the carried copy alone

Each build runs in-process (``cim.build.build``, as ``cim build`` calls it) and is timed until it
returns (PostGIS: tile geometry prepared). ``--carry-only`` publishes N buildings into an embedded
store (no build) and then times publishing a release whose buildings are carried: what an
incremental build pays on DuckDB for a layer it does not read (ATTACH, INSERT ... SELECT, R-tree).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd

from bench.build import city_config, fresh_database
from bench.data import replicate

POIS = """\
  pois:
    sources:
      - path: {csv}
        crs: EPSG:4326
        lon: lon
        lat: lat
        id: id
        fields: {{name: name, category: category}}
"""


def write_pois(path: Path, gpkg: Path, n: int) -> None:
    """``n`` POIs at the first buildings' centroids (a new version of the file for each ``n``)."""
    frame = gpd.read_file(gpkg, layer="buildings", rows=n).to_crs("EPSG:4326")
    points = frame.geometry.centroid
    pd.DataFrame({
        "id": [f"P{i}" for i in range(n)], "name": [f"POI {i}" for i in range(n)], "category": "amenity",
        "lon": points.x, "lat": points.y,
    }).to_csv(path, index=False)  # fmt: skip


def timed_build(config: Path, url: str, full: bool = False) -> tuple[float, dict]:
    from cim.build import build, load_config
    from cim.store import open_store

    with open_store(url) as store:
        started = time.monotonic()
        result = build(load_config(config), store, full=full)
        seconds = time.monotonic() - started
    return seconds, result.release.config["cim_build"]["layers"]


def run(features: int, work: Path) -> dict:
    config, gpkg = city_config(work, features)
    csv = work / "pois.csv"
    write_pois(csv, gpkg, 50)
    text = config.read_text()
    if "pois:" not in text:
        config.write_text(text + POIS.format(csv=csv))
    results = {}
    for backend in ("duckdb", "postgis"):
        url = str(work / f"inc_{features}.duckdb") if backend == "duckdb" else fresh_database("cim_bench_incremental")
        if backend == "duckdb":
            for old in work.glob(f"inc_{features}.duckdb*"):
                if old.is_dir():
                    import shutil

                    shutil.rmtree(old)
                else:
                    old.unlink()
        write_pois(csv, gpkg, 50)
        full_s, _ = timed_build(config, url, full=True)
        write_pois(csv, gpkg, 60)
        incremental_s, layers = timed_build(config, url)
        assert layers["buildings"]["carried_from"] is not None, layers
        results[backend] = {
            "full_seconds": round(full_s, 2), "incremental_seconds": round(incremental_s, 2),
            "ratio": round(incremental_s / full_s, 3),
        }  # fmt: skip
        print(backend, results[backend], flush=True)
    return results


def carry_only(features: int, work: Path) -> dict:
    """Seconds to publish a release whose N buildings are carried (DuckDB), after publishing them."""
    from layers.osm_demo import load_demo_layers

    from cim.store import LayerData, ReleaseDraft, open_store

    buildings = replicate(next(layer for layer in load_demo_layers() if layer.spec.name == "buildings"), features)
    url = str(work / f"carry_{features}.duckdb")
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[buildings], srid=4326))
        empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:4326"))
        started = time.monotonic()
        store.publish(ReleaseDraft(layers=[LayerData(buildings.spec, empty, carried_from=1)], srid=4326))
        seconds = time.monotonic() - started
        assert store.layer("buildings").count == features
    print("duckdb carry", features, round(seconds, 2), flush=True)
    return {"features": features, "duckdb_carry_publish_seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=int, default=100_000)
    parser.add_argument("--carry-only", action="store_true")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cim_bench_incremental")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    out = carry_only(args.features, args.work) if args.carry_only else {"features": args.features, **run(args.features, args.work)}
    target = Path(__file__).parent / "results" / "incremental.json"
    previous = json.loads(target.read_text()) if target.exists() else {}
    previous["carry_only" if args.carry_only else f"build_{args.features}"] = out
    target.write_text(json.dumps(previous, indent=1) + "\n")


if __name__ == "__main__":
    main()
