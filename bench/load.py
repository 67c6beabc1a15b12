"""Load run: many clients against a real ``cim serve`` while releases switch and edits land.

    .venv/bin/python -m bench.load --store duckdb                 # the full run: 64 clients, 60 s, 2 workers
    .venv/bin/python -m bench.load --store postgis                # the same on PostGIS (database cim_load)
    .venv/bin/python -m bench.load --store duckdb --seconds 10    # shorter

The store gets the demo city twice (releases 1 and 2); ``cim serve --workers 2`` serves it. Each
client is one keep-alive HTTP connection asking, one request after the other, for a random mix of
items pages (plain, bbox, offset), CQL2 filters, vector tiles (repeated ones answered from the tile
cache, others rendered) and single features. Beside them, for the whole run:

- release switches alternating over the store's releases: ``Store.set_current`` every
  ``--switch-every`` seconds from the load process, and ``cim releases rollback N`` in a loop (a new
  process each time, as an operator runs it); every ``--publish-every`` seconds a new release of the
  demo city published by another process (``python -m bench.load --publish-only URL``);
- edits: a writer with a bearer token creates, updates and deletes land-use features
  (OGC API - Features Part 4).

Every request counts; a failure is a connection error (refused, reset, closed without a response,
timed out) or an unexpected status (any 5xx, and 4xx where the mix expects 200). Printed at the
end, and returned by :func:`run` (tests/test_serve_load.py runs a short variant in CI): requests,
requests/s, failures by kind, p50/p99 per request kind, switches, publishes and edits done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cim.store.live import live_specs

from bench.servers import Server, cim_server

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parent.parent
#: a land-use square in the demo city (Tianjin) the writer creates, edits and deletes again
SQUARE = [[117.200, 39.120], [117.201, 39.120], [117.201, 39.121], [117.200, 39.121], [117.200, 39.120]]


# -- the store ------------------------------------------------------------------------------------
def publish_demo(url: str) -> int:
    """Publish the demo city as a new release of ``url`` (tile geometry prepared as `cim demo` does)."""
    from cim.store import ReleaseDraft, open_store
    from layers.osm_demo import load_demo_layers

    with open_store(url) as store:
        number = store.publish(ReleaseDraft(layers=load_demo_layers(), srid=4326)).number
        store.prepare_tiles()
    return number


def postgis_database(name: str) -> str:
    """A fresh PostGIS database ``name`` on the local server (dropped first if it exists)."""
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the request mix ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    kind: str
    path: str
    params: dict[str, str] = field(default_factory=dict)


def tile_xy(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    """The WebMercatorQuad column and row of the tile holding ``lon``/``lat``."""
    n = 2**zoom
    col = int((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(lat)
    row = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
    return min(max(col, 0), n - 1), min(max(row, 0), n - 1)


def request_mix(base: str, rng: random.Random) -> list[Request]:
    """Requests over what the server holds (extents and feature ids read from it once)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        collections = http.get("/collections", params={"f": "json"}).json()["collections"]
        # the release's layers: a live layer's extent follows its content (an empty one spans the world)
        live = {spec.name for spec in live_specs()}
        vector = {c["id"]: c["extent"]["spatial"]["bbox"][0] for c in collections
                  if c.get("itemType") == "feature" and c["id"] not in live}  # fmt: skip
        ids = {name: [f["id"] for f in http.get(f"/collections/{name}/items", params={"limit": 200}).json()["features"]]
               for name in vector}  # fmt: skip
    mix: list[Request] = []
    for name, (x0, y0, x1, y1) in vector.items():
        items = f"/collections/{name}/items"
        mix += [Request("items", items, {"limit": "10"}), Request("items", items, {"limit": "20", "offset": "40"})]
        for _ in range(4):
            w, h = (x1 - x0) / 8, (y1 - y0) / 8
            bx, by = rng.uniform(x0, x1 - w), rng.uniform(y0, y1 - h)
            mix.append(Request("items", items, {"limit": "50", "bbox": f"{bx:.5f},{by:.5f},{bx + w:.5f},{by + h:.5f}"}))
        mix += [Request("feature", f"{items}/{fid}") for fid in rng.sample(ids[name], min(10, len(ids[name])))]
    if "buildings" in vector:
        items = "/collections/buildings/items"
        for text in ("floors >= 3", "use = 'residential'", "height_m BETWEEN 10 AND 50", "name LIKE '%大%' OR floors > 5"):
            mix.append(Request("filter", items, {"filter": text, "limit": "20"}))
    x0 = min(b[0] for b in vector.values())
    y0 = min(b[1] for b in vector.values())
    x1 = max(b[2] for b in vector.values())
    y1 = max(b[3] for b in vector.values())
    for zoom in (12, 13, 14, 15, 16):
        c0, r1 = tile_xy(x0, y0, zoom)
        c1, r0 = tile_xy(x1, y1, zoom)
        count = (r1 - r0 + 1) * (c1 - c0 + 1)
        # sampled without listing every tile of the extent (a wide one has billions at z16)
        picks = {(r0 + n // (c1 - c0 + 1), c0 + n % (c1 - c0 + 1)) for n in rng.sample(range(count), min(12, count))}
        for row, col in sorted(picks):
            mix.append(Request("tile", f"/tiles/WebMercatorQuad/{zoom}/{row}/{col}"))
    return mix


# -- the run --------------------------------------------------------------------------------------
@dataclass
class Report:
    store: str
    clients: int
    seconds: float
    requests: int = 0
    #: "<kind>: <what went wrong>" -> count
    failures: Counter[str] = field(default_factory=Counter)
    #: a few failed requests, for finding the cause
    examples: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    switches: int = 0
    publishes: int = 0
    #: server worker processes seen during the run beyond the first ones (a worker died or was replaced)
    worker_restarts: int = 0
    edits: int = 0
    side_errors: list[str] = field(default_factory=list)

    def record(self, kind: str, seconds: float, failure: str | None, what: str) -> None:
        self.requests += 1
        self.latencies.setdefault(kind, []).append(seconds)
        if failure is not None:
            self.failures[f"{kind}: {failure}"] += 1
            if len(self.examples) < 20:
                self.examples.append(f"{what}: {failure}")

    def percentile(self, q: float, kind: str | None = None) -> float:
        values = sorted(self.latencies.get(kind, []) if kind else [v for vs in self.latencies.values() for v in vs])
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]

    def summary(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0,
            "failed": sum(self.failures.values()),
            "failures": dict(self.failures),
            "examples": self.examples,
            "p50_ms": round(self.percentile(0.5) * 1000, 1),
            "p99_ms": round(self.percentile(0.99) * 1000, 1),
            "by_kind": {
                kind: {"requests": len(v), "p50_ms": round(self.percentile(0.5, kind) * 1000, 1),
                       "p99_ms": round(self.percentile(0.99, kind) * 1000, 1)}
                for kind, v in sorted(self.latencies.items())
            },  # fmt: skip
            "worker_restarts": self.worker_restarts,
            "release_switches": self.switches,
            "publishes": self.publishes,
            "edits": self.edits,
            "side_errors": self.side_errors,
        }


def _failure(response: httpx.Response | None, exc: BaseException | None, expected: tuple[int, ...]) -> str | None:
    if exc is not None:
        text = str(exc).strip().splitlines()[0][:80] if str(exc).strip() else ""
        return f"{type(exc).__name__}" + (f" ({text})" if text else "")
    assert response is not None
    return None if response.status_code in expected else f"HTTP {response.status_code}"


async def _client(base: str, mix: list[Request], report: Report, stop: float, seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=1)) as http:
        while time.monotonic() < stop:
            req = rng.choice(mix)
            started = time.monotonic()
            response, error = None, None
            try:
                response = await http.get(req.path, params=req.params)
                await response.aread()
            except httpx.HTTPError as exc:
                error = exc
            expected = (200, 204) if req.kind == "tile" else (200,)  # 204: a tile with no features
            report.record(req.kind, time.monotonic() - started, _failure(response, error, expected),
                          f"GET {req.path}?{httpx.QueryParams(req.params)}")  # fmt: skip


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    cim = str(Path(sys.executable).parent / "cim")
    return subprocess.run([cim, *args], capture_output=True, text=True, timeout=timeout)


def _releases(url: str) -> list[int]:
    from cim.store import open_store

    with open_store(url) as store:
        return [r.number for r in store.releases()]


def _switcher(url: str, report: Report, stop: threading.Event, every: float, use_cli: bool) -> None:
    """Release switches, alternating over the store's releases: ``cim releases rollback N`` (a new
    process each time, as an operator runs it: seconds apart) or ``Store.set_current`` from this
    process every ``every`` seconds."""
    store = None
    if not use_cli:
        from cim.store import open_store

        store = open_store(url)
    try:
        turn = 0
        while not stop.wait(every):
            numbers = [r.number for r in store.releases()] if store is not None else _releases(url)
            number = numbers[turn % len(numbers)]
            turn += 1
            if store is not None:
                try:
                    store.set_current(number)
                except Exception as exc:  # reported, the run goes on
                    report.side_errors.append(f"set_current {number}: {type(exc).__name__}: {exc}")
                    continue
            else:
                done = _cli("releases", "--store", url, "rollback", str(number))
                if done.returncode != 0:
                    report.side_errors.append(f"rollback {number}: {done.stderr.strip()[-300:]}")
                    continue
            report.switches += 1
    finally:
        if store is not None:
            store.close()


def _publisher(url: str, report: Report, stop: threading.Event, every: float) -> None:
    """Every ``every`` seconds a new release of the demo city, published by another process."""
    while every and not stop.wait(every):
        done = subprocess.run([sys.executable, "-m", "bench.load", "--publish-only", url],
                              capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
        if done.returncode != 0:
            report.side_errors.append(f"publish: {done.stderr.strip()[-300:]}")
        else:
            report.publishes += 1


def _editor(base: str, key: rsa.RSAPrivateKey, report: Report, stop: threading.Event, every: float) -> None:
    """Create, update and delete land-use features with a bearer token, one edit after the other."""
    claims = {"sub": "load-run", "roles": ["editor"], "exp": int(time.time()) + 24 * 3600}
    headers = {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm='RS256')}"}
    items = "/collections/landuse/items"
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
               "properties": {"use": "green", "zoning_code": "G1"}}  # fmt: skip
    with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
        while not stop.wait(every):
            steps = [("POST", items, feature, (201,))]
            for method, path, body, expected in steps:
                started = time.monotonic()
                response, error = None, None
                try:
                    response = http.request(method, path, json=body)
                except httpx.HTTPError as exc:
                    error = exc
                report.record("edit", time.monotonic() - started, _failure(response, error, expected), f"{method} {path}")
                if response is None or response.status_code not in expected:
                    break
                report.edits += 1
                if method == "POST":
                    location = httpx.URL(response.headers["Location"]).path
                    steps += [
                        ("PATCH", location, {"properties": {"far_limit": 1.5}}, (204,)),
                        ("DELETE", location, None, (204,)),
                    ]


def _children(pid: int) -> set[int]:
    """The worker processes of server ``pid``: its children started by multiprocessing's spawn (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.add(child)
            except OSError:
                continue
    return found


def _watch_workers(pid: int, workers: int, report: Report, stop: threading.Event) -> None:
    """Counts worker processes that appear after the first ``workers`` (uvicorn replaces a dead or
    unresponsive worker: every connection it held is dropped)."""
    seen = _children(pid)
    while not stop.wait(0.2):
        seen |= _children(pid)
        report.worker_restarts = max(0, len(seen) - workers)


def run(
    url: str,
    clients: int = 64,
    seconds: float = 60.0,
    workers: int = 2,
    switch_every: float = 1.0,
    publish_every: float = 20.0,
    edit_every: float = 0.5,
    port: int | None = None,
    log_dir: Path | None = None,
    seed: int = 10,
) -> Report:
    """Serve ``url`` (a store holding at least releases 1 and 2) with ``cim serve`` and load it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    port = port or _free_port()
    server: Server = cim_server(url, port, workers, env={"CIM_JWT_PUBLIC_KEY": public.decode()})
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cim-load-"))
    report = Report("postgis" if url.startswith("postgresql") else "duckdb", clients, seconds)
    server.start(log_dir)
    try:
        mix = request_mix(server.url, random.Random(seed))
        stop = threading.Event()
        side = [
            threading.Thread(target=_switcher, args=(url, report, stop, switch_every, False), daemon=True),
            threading.Thread(target=_switcher, args=(url, report, stop, switch_every, True), daemon=True),
            threading.Thread(target=_publisher, args=(url, report, stop, publish_every), daemon=True),
            threading.Thread(target=_editor, args=(server.url, key, report, stop, edit_every), daemon=True),
        ]
        if server.process is not None and workers > 1:
            side.append(threading.Thread(target=_watch_workers, args=(server.process.pid, workers, report, stop), daemon=True))
        for thread in side:
            thread.start()
        started = time.monotonic()

        async def load() -> None:
            end = time.monotonic() + seconds
            await asyncio.gather(*(_client(server.url, mix, report, end, seed + i) for i in range(clients)))

        asyncio.run(load())
        report.seconds = time.monotonic() - started
        stop.set()
        for thread in side:
            thread.join(timeout=600)
    finally:
        server.stop()
    if server.process is not None and server.process.returncode not in (0, None):
        report.side_errors.append(f"cim serve exited {server.process.returncode}: see {log_dir}")
    return report


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--store", default="duckdb", help="duckdb, postgis, or a store URL holding releases 1 and 2")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--switch-every", type=float, default=1.0, help="seconds between release switches")
    parser.add_argument("--publish-every", type=float, default=20.0, help="seconds between new releases (0: none)")
    parser.add_argument("--edit-every", type=float, default=0.5, help="seconds between edits")
    parser.add_argument("--database", default="cim_load", help="PostGIS database made for --store postgis")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--publish-only", metavar="URL", help=argparse.SUPPRESS)  # the switcher's publishing process
    args = parser.parse_args(argv)
    if args.publish_only:
        print(publish_demo(args.publish_only))
        return
    workdir = Path(tempfile.mkdtemp(prefix="cim-load-"))
    if args.store == "duckdb":
        url = str(workdir / "load.duckdb")
    elif args.store == "postgis":
        url = postgis_database(args.database)
    else:
        url = args.store
    if args.store in ("duckdb", "postgis"):
        publish_demo(url)
        publish_demo(url)
    try:
        report = run(url, args.clients, args.seconds, args.workers, args.switch_every, args.publish_every,
                     args.edit_every, log_dir=workdir)  # fmt: skip
    finally:
        if args.store == "postgis":
            drop_database(args.database)
    summary = report.summary()
    summary["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    summary["workers"] = args.workers
    text = json.dumps(summary, indent=1, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text)
    sys.exit(1 if summary["failed"] or report.side_errors else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
