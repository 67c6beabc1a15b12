"""Impact analysis speed (cim/impact.py): ~5 km² polygons over the 1,000,000-building city.

    .venv/bin/python -m bench.impact                      # PostGIS and DuckDB -> bench/results/impact.json
    .venv/bin/python -m bench.impact --backends postgis --runs 50

The city is the features benchmark's (bench/data.py: the demo's densest district copied on a grid
until there are 1,000,000 footprints, ~450 buildings per km²) plus a synthetic division grid the demo
lacks (admin_divisions: 10 km districts, 2 km streets), so the by-division breakdown is measured
too. It goes into the PostGIS database ``--db`` (default cim_h3_bench; the shared cim_bench holds
buildings only) and an embedded copy (``--duckdb``), each made only when missing.

Each run analyses a new polygon: a regular 16-gon of ``--km2`` km² centred at a random point of the
grid's interior (seeded), through ``cim.impact.impact`` on a store opened once, after 3 warm-up runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import shapely

from bench.data import replicate
from cim.impact import impact
from cim.store import LayerData, ReleaseDraft, open_store

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
OUT = Path(__file__).resolve().parent / "results" / "impact.json"


def divisions(bounds: tuple[float, float, float, float]) -> LayerData:
    """A grid of districts (~10 km) split into streets (~2 km) over ``bounds`` (lon/lat)."""
    from layers.catalog import CATALOG

    minx, miny, maxx, maxy = bounds
    dx, dy = 2000 / (111_320 * math.cos(math.radians((miny + maxy) / 2))), 2000 / 110_570
    rows, geoms = [], []
    nx, ny = math.ceil((maxx - minx) / dx), math.ceil((maxy - miny) / dy)
    for i in range(nx):
        for j in range(ny):
            district = f"12{i // 5:02d}{j // 5:02d}"
            rows.append({"code": f"{district}{i % 5}{j % 5:02d}", "name": f"street {i},{j}", "level": "street", "parent_code": district})
            geoms.append(shapely.MultiPolygon([shapely.box(minx + i * dx, miny + j * dy, minx + (i + 1) * dx, miny + (j + 1) * dy)]))
    for i in range(0, nx, 5):
        for j in range(0, ny, 5):
            rows.append({"code": f"12{i // 5:02d}{j // 5:02d}", "name": f"district {i // 5},{j // 5}", "level": "district", "parent_code": None})
            geoms.append(shapely.MultiPolygon([shapely.box(minx + i * dx, miny + j * dy, minx + min(i + 5, nx) * dx, miny + min(j + 5, ny) * dy)]))
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)
    frame["source"], frame["source_id"] = "bench", frame["code"]
    return LayerData(CATALOG["admin_divisions"], frame)


def city(features: int) -> list[LayerData]:
    from layers.osm_demo import load_demo_layers

    layers = [replicate(layer, features) if layer.spec.name == "buildings" else layer for layer in load_demo_layers()]
    buildings = next(layer for layer in layers if layer.spec.name == "buildings")
    return [*layers, divisions(tuple(buildings.frame.total_bounds))]


def prepare(url: str, features: int, layers: list[LayerData] | None) -> list[LayerData] | None:
    """Make ``url`` hold the bench city unless it does; the layers (loaded only when needed)."""
    if url.startswith("postgresql://"):
        db = url.rsplit("/", 1)[1]
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                conn.execute(f'CREATE DATABASE "{db}"')
    else:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
    with open_store(url) as store:
        ready = store.current_release() is not None and "admin_divisions" in store.layer_names() and store.layer("buildings").count == features
        if not ready:
            layers = layers or city(features)
            started = time.monotonic()
            store.publish(ReleaseDraft(layers=layers, srid=4326), keep=1)
            print(f"{url}: loaded the city ({features} buildings) in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return layers


def polygons(url: str, km2: float, count: int, seed: int = 7) -> list[shapely.Polygon]:
    """``count`` regular 16-gons of ``km2`` km² at random points of the buildings' interior (lon/lat)."""
    with open_store(url) as store:
        minx, miny, maxx, maxy = store.layer("buildings").bbox
    rng = np.random.default_rng(seed)
    radius_m = math.sqrt(km2 * 1e6 / (8 * math.sin(2 * math.pi / 16)))  # area of a regular n-gon: n/2 r² sin(2π/n)
    out = []
    for _ in range(count):
        cx = rng.uniform(minx + 0.1 * (maxx - minx), maxx - 0.1 * (maxx - minx))
        cy = rng.uniform(miny + 0.1 * (maxy - miny), maxy - 0.1 * (maxy - miny))
        kx, ky = 111_320 * math.cos(math.radians(cy)), 110_570
        ring = [(cx + radius_m * math.cos(a) / kx, cy + radius_m * math.sin(a) / ky) for a in np.linspace(0, 2 * math.pi, 17)[:-1]]
        out.append(shapely.Polygon(ring))
    return out


def measure(url: str, areas: list[shapely.Polygon], warmup: int = 3) -> dict:
    times, cpu, buildings, people, km2 = [], [], [], [], []
    with open_store(url) as store:
        for area in areas[:warmup]:
            impact(store, area)
        for area in areas[warmup:]:
            started, cpu_started = time.perf_counter(), time.process_time()
            result = impact(store, area)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
            buildings.append(result.totals["buildings"])
            people.append(result.totals["people"])
            km2.append(result.area_m2 / 1e6)
    times.sort()
    return {
        "runs": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, math.ceil(0.95 * len(times)) - 1)], 1),
        "min_ms": round(times[0], 1),
        "max_ms": round(times[-1], 1),
        # CPU time of this process (all its threads) per analysis: what load on the machine does not inflate
        "client_cpu_p50_ms": round(statistics.median(cpu), 1),
        "area_km2": round(statistics.mean(km2), 3),
        "buildings_mean": round(statistics.mean(buildings)),
        "people_mean": round(statistics.mean(people)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--db", default="cim_h3_bench")
    parser.add_argument("--duckdb", type=Path, default=Path("/tmp/cim-h3-bench/city.duckdb"))
    parser.add_argument("--backends", default="postgis,duckdb")
    parser.add_argument("--km2", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    urls = {"postgis": f"postgresql://postgres@127.0.0.1:5432/{args.db}", "duckdb": str(args.duckdb)}
    layers = None
    report: dict = {
        "what": f"cim.impact.impact of a {args.km2:g} km² 16-gon at a random point of the {args.features:,}-building city",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
        "results": {},
    }
    for backend in args.backends.split(","):
        layers = prepare(urls[backend], args.features, layers)
        areas = polygons(urls[backend], args.km2, args.runs + 3)
        report["results"][backend] = measure(urls[backend], areas)
        print(backend, report["results"][backend], file=sys.stderr)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
