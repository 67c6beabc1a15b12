"""Speed of the CIM+ processes (issue 13) over the 1,000,000-building city, through the Python API and HTTP.

    .venv/bin/python -m bench.processes                  # PostGIS and DuckDB -> bench/results/processes.json
    .venv/bin/python -m bench.processes --backends postgis --points 50 --no-http

The city is bench/processes_data.py's (made there when missing: run it first, it takes minutes):
buildings, 500 m zones, 100 m parcels, roads, POIs, districts/streets, in two releases.

- building-at-point, parcel-at-point: ``--points`` points (seeded), each on a building of the city (so
  both lookups find something), p50/p95 after 5 warm-up lookups; target p50 < 20 ms on PostGIS;
- buildings-in-area: ``--areas`` 1 km² 16-gons at random points of the interior (bench/impact.py), p50/p95;
- measure: the same 16-gons, geodesic area, p50/p95;
- district-statistics (target < 1 s) and landuse-by-district: 3 runs each, city-wide (over HTTP
  synchronously, and district-statistics once more as a job: a synchronous request has a time budget);
- zoning-compliance city-wide (target < 30 s as an async job) and release-diff of the store's last two
  releases (1 -> 2, target < 30 s): once each.

Python API: ``cim.open(url).<name>(...)`` (cim/city.py), the store opened once. HTTP: ``cim serve``
(bench/servers.py) with a JWT key configured and an ``analyst`` token; point lookups are synchronous
POSTs to ``/processes/{id}/execution``; zoning-compliance and release-diff are submitted with
``Prefer: respond-async`` and timed from the POST until ``GET /jobs/{id}`` says ``successful`` (polled
every 0.1 s), then their results are fetched (timed apart). Inputs are built from each process's
description (``GET /processes/{id}``) and example. A process not there yet (written in parallel) is
reported as missing, not skipped silently.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import shapely
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import cim
from bench.impact import polygons
from bench.processes_data import DB, DUCKDB
from bench.servers import cim_server

OUT = Path(__file__).resolve().parent / "results" / "processes.json"
WARMUP = 5
POLL_S = 0.1
JOB_TIMEOUT_S = 600
TARGETS = {
    "building-at-point": "p50 < 20 ms on PostGIS",
    "parcel-at-point": "p50 < 20 ms on PostGIS",
    "district-statistics": "< 1 s",
    "zoning-compliance": "< 30 s as an async job, city-wide",
    "release-diff": "< 30 s, release 1 -> 2 of 1M buildings",
}


def summary(times_ms: list[float], **extra: Any) -> dict[str, Any]:
    if not times_ms:
        return {"runs": 0, **extra}
    ordered = sorted(times_ms)
    return {
        "runs": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
        **extra,
    }


def building_points(city: cim.City, count: int, seed: int = 13) -> list[tuple[float, float]]:
    """``count`` lon/lat points, each inside a different building, from random 300 m boxes of the interior."""
    minx, miny, maxx, maxy = city.info("buildings").bbox
    rng = np.random.default_rng(seed)
    out: list[tuple[float, float]] = []
    while len(out) < count:
        cx = rng.uniform(minx + 0.1 * (maxx - minx), maxx - 0.1 * (maxx - minx))
        cy = rng.uniform(miny + 0.1 * (maxy - miny), maxy - 0.1 * (maxy - miny))
        dx, dy = 150 / (111_320 * math.cos(math.radians(cy))), 150 / 110_570
        found = city.read("buildings", bbox=(cx - dx, cy - dy, cx + dx, cy + dy), limit=3)
        for geom in found.geometry:
            point = shapely.point_on_surface(geom)
            out.append((round(point.x, 7), round(point.y, 7)))
    return out[:count]


#: CPU milliseconds of this process (all its threads) per timed call, since the last reset: what load on
#: the shared machine does not inflate (the database server's own CPU is not in it)
CPU_MS: list[float] = []


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    CPU_MS.append((time.process_time() - cpu) * 1000)
    return (time.perf_counter() - started) * 1000, value


def _cpu_p50() -> float | None:
    """The median of CPU_MS, which is emptied."""
    value = round(statistics.median(CPU_MS), 1) if CPU_MS else None
    CPU_MS.clear()
    return value


def _guarded(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()``'s figures, or what kept it from running (a process not written yet, an error)."""
    try:
        return fn()
    except (ImportError, AttributeError, LookupError) as exc:
        return {"missing": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what failed and goes on
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _size(value: Any) -> int:
    """Rows in a result (a (Geo)DataFrame, a FeatureCollection, a report of them), for the report."""
    if hasattr(value, "columns") and hasattr(value, "__len__"):
        return len(value)
    if isinstance(value, dict):
        if value.get("type") == "FeatureCollection":
            return len(value.get("features", []))
        return sum(_size(v) for v in value.values())
    for attr in ("violations", "features", "buildings", "frame", "layers"):
        if hasattr(value, attr):
            return _size(getattr(value, attr))
    return 0


def _summary_of(value: Any) -> Any:
    """A result's own summary (``summary`` / ``totals``), when small, for the report."""
    for attr in ("summary", "totals"):
        found = getattr(value, attr, None)
        if isinstance(found, dict):
            text = json.dumps(found, default=str)
            return found if len(text) <= 3000 else text[:3000] + "..."
    return None


# -- Python API ---------------------------------------------------------------------------------------
def python_api(url: str, points: list[tuple[float, float]], areas: list[shapely.Polygon], releases: tuple[int, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with cim.open(url) as city:

        def lookups(method: str) -> dict[str, Any]:
            fn = getattr(city, method)
            for x, y in points[:WARMUP]:
                _guarded_call(fn, shapely.Point(x, y))
            times, misses = [], 0
            CPU_MS.clear()
            for x, y in points:
                ms, value = _timed(lambda x=x, y=y: _guarded_call(fn, shapely.Point(x, y)))
                times.append(ms)
                misses += value is None or _size(value) == 0
            return summary(times, client_cpu_p50_ms=_cpu_p50(), empty_results=misses)

        def per_area(method: str, **kw: Any) -> dict[str, Any]:
            fn = getattr(city, method)
            fn(areas[0], **kw)
            CPU_MS.clear()
            times = [_timed(lambda a=a: fn(a, **kw))[0] for a in areas]
            return summary(times, client_cpu_p50_ms=_cpu_p50())

        def repeated(call: Callable[[], Any], runs: int) -> dict[str, Any]:
            times, value = [], None
            CPU_MS.clear()
            for _ in range(runs):
                ms, value = _timed(call)
                times.append(ms)
            return summary(times, client_cpu_p50_ms=_cpu_p50(), result_rows=_size(value), result_summary=_summary_of(value))

        out["building-at-point"] = _guarded("building-at-point", lambda: lookups("building_at_point"))
        out["parcel-at-point"] = _guarded("parcel-at-point", lambda: lookups("parcel_at_point"))
        out["buildings-in-area"] = _guarded("buildings-in-area", lambda: per_area("buildings_in_area"))
        out["measure"] = _guarded("measure", lambda: per_area("measure"))
        out["district-statistics"] = _guarded("district-statistics", lambda: repeated(city.district_statistics, 3))
        out["landuse-by-district"] = _guarded("landuse-by-district", lambda: repeated(city.landuse_by_district, 3))
        out["zoning-compliance"] = _guarded("zoning-compliance", lambda: repeated(lambda: city.zoning_compliance(None), 1))
        out["release-diff"] = _guarded("release-diff", lambda: repeated(lambda: city.release_diff(*releases), 1))
    return out


def _guarded_call(fn: Callable[..., Any], *args: Any) -> Any:
    """A lookup's result; None when it says nothing is there (a 404-kind error) — still timed."""
    from cim.errors import NotFound

    try:
        return fn(*args)
    except NotFound:
        return None


# -- HTTP ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _token(key: rsa.RSAPrivateKey) -> str:
    claims = {"sub": "bench-processes", "roles": ["analyst", "editor", "reader"], "exp": int(time.time()) + 24 * 3600}
    return jwt.encode(claims, key, algorithm="RS256")


def point_json(xy: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": list(xy)}


def inputs_for(description: dict[str, Any], example: dict[str, Any], *, point: tuple[float, float] | None = None,
               area: shapely.Polygon | None = None, releases: tuple[int, int] | None = None) -> dict[str, Any]:
    """Execute inputs from the process's description and example: geometry inputs replaced by ours, an
    optional area dropped when none is given (city-wide), release inputs set to ``releases``."""
    declared = description.get("inputs", {})
    inputs = {k: v for k, v in example.items() if k in declared}
    for name, spec in declared.items():
        lowered = name.lower()
        optional = spec.get("minOccurs", 1) == 0
        if point is not None and "point" in lowered:
            inputs[name] = point_json(point)
        elif lowered in ("area", "geometry", "polygon"):
            if area is not None:
                inputs[name] = shapely.geometry.mapping(area)
            elif optional:
                inputs.pop(name, None)
        elif releases is not None and "from" in lowered:
            inputs[name] = releases[0]
        elif releases is not None and "to" in lowered:
            inputs[name] = releases[1]
    return inputs


class Client:
    """The server's processes, executed synchronously or as jobs."""

    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=JOB_TIMEOUT_S)
        listed = self.http.get("/processes", params={"f": "json"})
        if listed.status_code == 404:
            raise LookupError("the server has no /processes route")
        listed.raise_for_status()
        self.ids = [p["id"] for p in listed.json().get("processes", [])]
        self.descriptions: dict[str, dict[str, Any]] = {}

    def description(self, pid: str) -> dict[str, Any]:
        if pid not in self.descriptions:
            response = self.http.get(f"/processes/{pid}", params={"f": "json"})
            response.raise_for_status()
            self.descriptions[pid] = response.json()
        return self.descriptions[pid]

    def inputs(self, pid: str, **values: Any) -> dict[str, Any]:
        from cim.processes import get_process

        return inputs_for(self.description(pid), dict(get_process(pid).example), **values)

    def execute(self, pid: str, inputs: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"/processes/{pid}/execution", json={"inputs": inputs})

    def job(self, pid: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Submit with ``Prefer: respond-async``; seconds until successful, then the results' fetch."""
        started = time.perf_counter()
        response = self.http.post(f"/processes/{pid}/execution", json={"inputs": inputs}, headers={"Prefer": "respond-async"})
        if response.status_code != 201:
            return {"error": f"submit: HTTP {response.status_code}: {response.text[:300]}"}
        location = response.headers.get("location") or f"/jobs/{response.json()['jobID']}"
        status = response.json().get("status")
        while status not in ("successful", "failed", "dismissed"):
            if time.perf_counter() - started > JOB_TIMEOUT_S:
                return {"error": f"job still {status} after {JOB_TIMEOUT_S} s", "job": location}
            time.sleep(POLL_S)
            polled = self.http.get(location, params={"f": "json"})
            polled.raise_for_status()
            status = polled.json().get("status")
        seconds = time.perf_counter() - started
        if status != "successful":
            return {"error": f"job {status}: {polled.json().get('message', '')[:300]}", "seconds": round(seconds, 2)}
        fetched, results = _timed(lambda: self.http.get(f"{location}/results", params={"f": "json"}))
        return {"seconds_to_successful": round(seconds, 2), "results_fetch_ms": round(fetched, 1),
                "results_bytes": len(results.content), "results_status": results.status_code}


def http_api(url: str, points: list[tuple[float, float]], areas: list[shapely.Polygon], releases: tuple[int, int],
             workers: int) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    server = cim_server(url, _free_port(), workers, env={"CIM_JWT_PUBLIC_KEY": public.decode()})
    server.start(Path(tempfile.mkdtemp(prefix="cim-bench-processes-")))
    out: dict[str, Any] = {}
    try:
        client = Client(server.url, _token(key))
        out["processes_listed"] = client.ids

        def sync_many(pid: str, values: list[dict[str, Any]]) -> dict[str, Any]:
            if pid not in client.ids:
                return {"missing": f"the server lists no process {pid!r}"}
            bodies = [client.inputs(pid, **v) for v in values]
            for body in bodies[:WARMUP]:
                client.execute(pid, body)
            times, statuses = [], {}
            for body in bodies:
                ms, response = _timed(lambda body=body: client.execute(pid, body))
                times.append(ms)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            return summary(times, http_statuses=statuses)

        def once_each(pid: str, runs: int, **values: Any) -> dict[str, Any]:
            if pid not in client.ids:
                return {"missing": f"the server lists no process {pid!r}"}
            body = client.inputs(pid, **values)
            times, statuses, size = [], {}, 0
            for _ in range(runs):
                ms, response = _timed(lambda: client.execute(pid, body))
                times.append(ms)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                size = len(response.content)
            return summary(times, http_statuses=statuses, response_bytes=size)

        def as_job(pid: str, **values: Any) -> dict[str, Any]:
            if pid not in client.ids:
                return {"missing": f"the server lists no process {pid!r}"}
            return client.job(pid, client.inputs(pid, **values))

        out["building-at-point"] = _guarded("building-at-point", lambda: sync_many("building-at-point", [{"point": p} for p in points]))
        out["parcel-at-point"] = _guarded("parcel-at-point", lambda: sync_many("parcel-at-point", [{"point": p} for p in points]))
        out["buildings-in-area"] = _guarded("buildings-in-area", lambda: sync_many("buildings-in-area", [{"area": a} for a in areas]))
        out["measure"] = _guarded("measure", lambda: sync_many("measure", [{"area": a} for a in areas]))
        out["district-statistics"] = _guarded("district-statistics", lambda: once_each("district-statistics", 3))
        out["landuse-by-district"] = _guarded("landuse-by-district", lambda: once_each("landuse-by-district", 3))
        out["district-statistics (async job)"] = _guarded("district-statistics", lambda: as_job("district-statistics"))
        out["zoning-compliance (async job)"] = _guarded("zoning-compliance", lambda: as_job("zoning-compliance"))
        out["release-diff (async job)"] = _guarded("release-diff", lambda: as_job("release-diff", releases=releases))
    finally:
        server.stop()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=DB)
    parser.add_argument("--duckdb", type=Path, default=DUCKDB)
    parser.add_argument("--backends", default="postgis,duckdb")
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--areas", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-python", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--update", action="store_true", help="keep what --out holds for the parts not run now")
    args = parser.parse_args(argv)
    urls = {"postgis": f"postgresql://postgres@127.0.0.1:5432/{args.db}", "duckdb": str(args.duckdb)}
    report: dict[str, Any] = {
        "what": "CIM+ processes (issue 13) on the bench/processes_data.py city, through cim.open(url) and over HTTP (cim serve)",
        "targets": TARGETS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
        "results": {},
    }
    for backend in args.backends.split(","):
        url = urls[backend]
        with cim.open(url) as city:
            numbers = [r.number for r in city.store.releases()]
            counts = {name: city.info(name).count for name in city.layers}
            points = building_points(city, args.points)
        releases = (numbers[-2], numbers[-1])
        areas = polygons(url, 1.0, args.areas)
        entry: dict[str, Any] = {"store": url, "releases": numbers, "diffed": list(releases), "layers": counts,
                                 "load_average_at_start": os.getloadavg()}
        if not args.no_python:
            entry["python"] = python_api(url, points, areas, releases)
            print(backend, "python", json.dumps(entry["python"]), file=sys.stderr)
        if not args.no_http:
            entry["http"] = _guarded("http", lambda: http_api(url, points, areas, releases, args.workers))
            print(backend, "http", json.dumps(entry["http"]), file=sys.stderr)
        if args.update and args.out.is_file():
            before = json.loads(args.out.read_text()).get("results", {}).get(backend, {})
            entry = {**before, **entry}
        report["results"][backend] = entry
    report["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
