"""Edits benchmark: N edits through the store on a demo-sized embedded store.

    .venv/bin/python -m bench.edits --edits 500          # -> bench/results/edits.json

Publishes the demo city (OSM extract, some 8,000 features; ``landuse`` is editable) into a fresh
DuckDB store in a temporary directory, then applies N edits through ``Store.edit`` as the API does
(updates of landuse features, one in ten a delete, one in twenty a create: fewer than 500 distinct
features end up in the overlay), timing each call, and
reports p50/p95/max per edit (wall and CPU time: note the machine's load average) and the bytes the overlay keeps on disk afterwards (every file under
``<store>.d/live``). ``--profile`` prints where the time of the edits after the first goes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from cim.store import Edit, FeatureQuery, ReleaseDraft, open_store

SQUARE = [[24.95, 60.17], [24.951, 60.17], [24.951, 60.171], [24.95, 60.171], [24.95, 60.17]]


def edit_for(n: int, fids: list[int]) -> Edit:
    """Updates cycle over the first half of the features, deletes walk the second half."""
    half = len(fids) // 2
    fid = fids[n % half]
    if n % 20 == 19:
        body = {"type": "Feature", "properties": {"use": "park"}, "geometry": {"type": "Polygon", "coordinates": [SQUARE]}}
        return Edit("landuse", "create", "bench", None, body)
    if n % 10 == 9:
        return Edit("landuse", "delete", "bench", fids[half + (n // 10) % (len(fids) - half)])
    return Edit("landuse", "update", "bench", fid, {"properties": {"zoning_code": f"Z{n}"}})


def run(edits: int, profile: bool) -> dict[str, object]:
    from layers.osm_demo import load_demo_layers

    layers = load_demo_layers()
    with tempfile.TemporaryDirectory(prefix="cim-bench-edits-") as tmp:
        url = str(Path(tmp) / "city.duckdb")
        with open_store(url) as store:
            store.publish(ReleaseDraft(layers=layers, srid=4326))
            fids = [f["id"] for f in store.query(FeatureQuery("landuse", limit=10_000)).features]
            times: list[float] = []
            cpu_times: list[float] = []
            profiler = cProfile.Profile() if profile else None
            for n in range(edits):
                if profiler is not None and n == 1:
                    profiler.enable()
                started, cpu = time.perf_counter(), time.process_time()
                store.edit(edit_for(n, fids))
                times.append(time.perf_counter() - started)
                cpu_times.append(time.process_time() - cpu)
            if profiler is not None:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            live = Path(tmp) / "city.duckdb.d" / "live"
            files = [p for p in live.iterdir() if not p.is_symlink()]
            on_disk = sum(p.stat().st_size for p in files)
        times_ms = sorted(t * 1000 for t in times)
        cpu_ms = sorted(t * 1000 for t in cpu_times)
        return {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "edits": edits,
            "features": sum(len(layer.frame) for layer in layers),
            "p50_ms": round(statistics.median(times_ms), 1),
            "p95_ms": round(times_ms[int(0.95 * (len(times_ms) - 1))], 1),
            "max_ms": round(times_ms[-1], 1),
            # CPU time of this process per edit (DuckDB's threads included): what the wall time
            # comes to on an idle machine, as long as the disk keeps up with the fsyncs
            "cpu_p50_ms": round(statistics.median(cpu_ms), 1),
            "cpu_p95_ms": round(cpu_ms[int(0.95 * (len(cpu_ms) - 1))], 1),
            "load_average": round(os.getloadavg()[0], 1),
            "cores": os.cpu_count(),
            "overlay_files": len(files),
            "overlay_bytes": on_disk,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the edits")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "edits.json")
    args = parser.parse_args()
    result = run(args.edits, args.profile)
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
