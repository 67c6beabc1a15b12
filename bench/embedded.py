"""Reads on the embedded store: `cim serve` (1 worker) over the demo city in DuckDB, loaded by wrk.

    .venv/bin/python -m bench.embedded                    # -> bench/results/embedded.json
    .venv/bin/python -m bench.embedded --cim /other/checkout/.venv/bin/cim --out before.json

The scenarios of docs/benchmarks.md, "Hardening's cost on the embedded store": items, a bbox,
one tile and one feature, each with ``wrk -t1 -c8`` for ``--seconds`` after a 2-s warm-up, on a
server with one worker over the demo store (`cim demo --build-only`, built once into ``--store``
and kept; the demo holds some 8,000 features). A regression check of the request path (guard,
access check, time budget, routing), not a comparison with other servers: ``--cim`` runs another
checkout's server over the same store, for a before/after pair on the same machine state.

``tile_doc_url`` is the tile of that section's table, /tiles/WebMercatorQuad/15/9477/18510: it lies
outside the composite tileset's limits, so the server answers 404 (counted as errors by wrk) —
the figure measures the route's limit check, kept for comparison with the recorded one;
``tile_z15`` is a tile in Kotka's densest part that holds buildings (200).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import wrk
from bench.servers import Server

#: path under the server root of each scenario
SCENARIOS = {
    "items_limit100": "/collections/buildings/items?limit=100",
    "bbox_limit100": "/collections/buildings/items?bbox=24.93,60.16,24.96,60.18&limit=100",  # central Helsinki: ~480
    "tile_doc_url": "/tiles/WebMercatorQuad/15/9477/18510",
    "tile_z15": "/tiles/WebMercatorQuad/15/9419/18835",
    "feature": "/collections/buildings/items/5",
}


def demo_store(path: Path, cim: str) -> Path:
    """The demo city in an embedded store at ``path``, built once (kept for later runs)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        subprocess.run([cim, "demo", "--build-only", "--store", str(path)], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)  # fmt: skip
        print(f"built the demo store {path} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return path


def status_of(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def measure(server: Server, seconds: int) -> dict[str, dict]:
    results = {}
    for name, path in SCENARIOS.items():
        url = server.url + path
        status = status_of(url)
        wrk.run(url, seconds=2, connections=8, threads=1)  # warm-up
        load = wrk.run(url, seconds=seconds, connections=8, threads=1)
        results[name] = {**load.as_dict(), "status": status}
        print(f"  {name:16s} {load.requests_per_s:9.1f} req/s  p50 {load.p50_ms:7.2f} ms  status {status}"
              f"  non-2xx/errors {load.errors}", file=sys.stderr)  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=5111)
    parser.add_argument("--store", type=Path, default=Path(tempfile.gettempdir()) / "cim-bench-embedded" / "demo.duckdb",
                        help="the demo store (built if missing, then kept)")  # fmt: skip
    parser.add_argument("--cim", default=str(Path(sys.executable).parent / "cim"), help="the `cim` executable to serve with")
    parser.add_argument("--out", type=Path, default=Path("bench/results/embedded.json"))
    args = parser.parse_args(argv)
    store = demo_store(args.store, args.cim)
    command = [args.cim, "serve", "--store", str(store), "--port", str(args.port), "--workers", "1"]
    server = Server("cim-basemap", args.port, command, {}, "/collections/buildings")
    logs = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    server.start(logs)
    try:
        results = measure(server, args.seconds)
    finally:
        server.stop()
    report = {"suite": "embedded", "date": time.strftime("%Y-%m-%d"), "machine": platform.platform(),
              "cim": args.cim, "store": str(store), "workers": 1, "seconds": args.seconds,
              "wrk": "-t1 -c8", "load_average": round(os.getloadavg()[0], 1), "results": {"cim-basemap": results}}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["results"], indent=1))


if __name__ == "__main__":
    main()
