"""Side-by-side benchmark: cim-basemap vs tipg vs pygeoapi (PostgreSQL provider) on one PostGIS table.

    bash bench/setup-peers.sh                       # once: the peers' own venv, and wrk
    .venv/bin/python -m bench.run --suite features --features 1000000   # -> bench/results/features.json
    .venv/bin/python -m bench.run --suite tiles --features 1000000      # -> bench/results/tiles.json

Each server runs alone (the others stopped) with the same worker count, and wrk loads it from the
same machine. Every scenario is checked for errors; a run with non-2xx answers is reported as such.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from bench import wrk
from bench.data import replicate
from bench.tiles import measure_tiles
from bench.servers import Server, cim_server, peers_installed, pygeoapi_server, tipg_server
from cim.store import FeatureQuery, ReleaseDraft, open_store

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def prepare(db: str, features: int, rebuild: bool) -> tuple[str, str]:
    """(store URL, release schema) of a PostGIS store holding the demo city with ``features`` buildings."""
    url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
        if exists and rebuild:
            conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{db}"')
    with open_store(url) as store:
        current = store.current_release()
        if current is None or store.layer("buildings").count != features:
            from layers.osm_demo import load_demo_layers

            layers = load_demo_layers()
            layers = [replicate(l, features) if l.spec.name == "buildings" else l for l in layers]
            started = time.monotonic()
            store.publish(ReleaseDraft(layers=layers, srid=4326), keep=1)
            print(f"loaded {features} buildings in {time.monotonic() - started:.0f} s", file=sys.stderr)
        started = time.monotonic()
        if store.prepare_tiles():  # as `cim build` does after publishing (skips what is prepared)
            print(f"prepared the tile geometry in {time.monotonic() - started:.0f} s", file=sys.stderr)
        return url, f"cim_r{store.current_number():04d}"


def bbox_with(store_url: str, target: int) -> tuple[float, float, float, float]:
    """A square bbox in the original demo's densest part holding about ``target`` buildings."""
    cx, cy = 26.935, 60.525  # Karhula, Kotka: the densest demo footprints
    lo, hi = 0.0005, 0.2
    with open_store(store_url) as store:
        for _ in range(30):
            half = (lo + hi) / 2
            box = (cx - half * 2, cy - half, cx + half * 2, cy + half)
            n = store.query(FeatureQuery("buildings", limit=0, bbox=box)).number_matched or 0
            if abs(n - target) <= target * 0.03:
                break
            lo, hi = (half, hi) if n < target else (lo, half)
    return box


def next_link_at(items_url: str, position: int, limit: int) -> str | None:
    """The ``next`` link a client following links from the first page holds at ``position``
    (pages of 10 000, the maximum, then one of ``limit``); None when the server gives none."""
    url = f"{items_url}?limit={min(10_000, position)}"
    reached = 0
    while reached < position:
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                page = json.load(response)
        except urllib.error.HTTPError as exc:  # (pygeoapi's PostgreSQL provider answers 500 on some pages)
            print(f"  no next link to position {position}: {exc.code} at {url}", file=sys.stderr)
            return None
        reached += page["numberReturned"]
        url = next((link["href"] for link in page.get("links", []) if link["rel"] == "next"), None)
        if url is None:
            return None
    return url.replace("limit=10000", f"limit={limit}")


def scenarios(server: Server, bbox: tuple[float, ...]) -> dict[str, str]:
    items = f"{server.url}{server.buildings}/items"
    box = ",".join(f"{v:.6f}" for v in bbox)
    urls = {
        "items_limit100": f"{items}?limit=100",
        "bbox_1000": f"{items}?bbox={box}&limit=1000",
        "first_page": f"{items}?limit=100",
        "offset_50000": f"{items}?limit=100&offset=50000",
    }
    # the deep page as a client reaches it: by next links (keyset cursors for cim-basemap,
    # offsets for the peers, whose next links are offsets)
    if (deep := next_link_at(items, 50_000, 100)) is not None:
        urls["next_link_50000"] = deep
    return urls


def measure(server: Server, bbox: tuple[float, ...], seconds: int) -> dict[str, dict[str, float]]:
    urls = scenarios(server, bbox)
    results = {}
    for name, url in urls.items():
        wrk.run(url, seconds=2, connections=4)  # warm-up: caches, JIT plans, pools
        single = name in ("first_page", "offset_50000", "next_link_50000")  # latency, one request at a time
        load = wrk.run(url, seconds=seconds, connections=1 if single else 16, threads=1 if single else 2)
        results[name] = load.as_dict()
        print(f"  {server.name:12s} {name:16s} {load.requests_per_s:8.1f} req/s  p50 {load.p50_ms:8.2f} ms"
              f"  errors {load.errors}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--db", default="cim_bench")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--suite", choices=("features", "tiles"), default="features")
    parser.add_argument("--out", type=Path, default=None, help="[default: bench/results/SUITE.json]")
    args = parser.parse_args(argv)
    out: Path = args.out or Path(f"bench/results/{args.suite}.json")
    if not peers_installed():
        sys.exit("peers missing: run `bash bench/setup-peers.sh` first")
    store_url, schema = prepare(args.db, args.features, args.rebuild)
    report = {"suite": args.suite, "features": args.features, "workers": args.workers, "seconds": args.seconds,
              "machine": platform.platform()}
    if args.suite == "tiles":
        cache = tempfile.mkdtemp(prefix="bench-tile-cache-")  # fresh: no tile of an earlier run is cached
        report["results"] = measure_tiles(
            cim_server(store_url, 5101, args.workers, {"CIM_TILE_CACHE": cache}),
            cim_server(store_url, 5101, args.workers, {"CIM_TILE_CACHE": "off", "CIM_TILE_MEMORY_MB": "0"}),
            tipg_server(store_url, schema, 5102, args.workers),
            store_url, schema, args.seconds, args.workers,
        )
        write(report, out)
        return
    bbox = bbox_with(store_url, 1000)
    db = {"host": "127.0.0.1", "port": "5432", "dbname": args.db, "user": "postgres", "password": ""}
    servers = [
        cim_server(store_url, 5101, args.workers),
        tipg_server(f"postgresql://postgres@127.0.0.1:5432/{args.db}", schema, 5102, args.workers),
        pygeoapi_server(db, schema, 5103, args.workers),
    ]
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    report["bbox"] = bbox
    report["results"] = {}
    for server in servers:
        server.start(logs)
        try:
            report["results"][server.name] = measure(server, bbox, args.seconds)
        finally:
            server.stop()
    write(report, out)


def write(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["results"], indent=1))


if __name__ == "__main__":
    main()
