"""Speed of data sharing (issue 14): bulk downloads, change feeds, incremental builds, on the 1M-building city.

    .venv/bin/python -m bench.sharing all                 # every part, both stores -> bench/results/sharing.json
    .venv/bin/python -m bench.sharing download --formats parquet,gpkg
    .venv/bin/python -m bench.sharing changes --backends postgis
    .venv/bin/python -m bench.sharing build --repeat 3
    .venv/bin/python -m bench.sharing all --features 20000 --work /tmp/s20k ...   # a trial (same flags as bench.sharing_data)

The data is bench/sharing_data.py's (made by it, when its ``manifest.json`` is missing, with the
same ``--features``/``--work``/store flags). Each part writes its entry of ``--out`` and keeps the
others (a part run alone updates the file). Run it on a quiet machine: no tests, no other benchmark.

- **download**: ``GET /collections/buildings/downloads/{format}`` from ``cim serve`` (bench/servers.py,
  1 worker, a fresh ``CIM_DOWNLOAD_CACHE`` each repeat) on the PostGIS feed store's current release:
  seconds from the request to the last byte, the first request (*cold*: the server writes the file)
  and a second one (*cached*), features/s = the file's features ÷ seconds; the file opened afterwards
  (GDAL for GPKG/FlatGeobuf, pyarrow for GeoParquet) to count them. Against ``ogr2ogr -f <driver>
  <file> PG:... cim_rNNNN.buildings`` (the release's table, every column, GDAL's defaults), alternating.
  This machine's GDAL (Debian 3.6.2) has no Parquet driver: GeoParquet is then compared with
  ogr2ogr's fastest format (the stand-in, ``parquet_stand_in``). Target: rate ≥ 0.5 × ogr2ogr's.
- **changes**: the feed of buildings from release A to B (1 % of the features differ) over HTTP, every
  page by its ``rel=next`` link (``limit`` 1000 and 10000), total seconds, on a fresh server per limit
  (first run: cold, the diff made; ``_again``: the server's kept list of changes); and
  ``city.changes(...)`` (a GeoDataFrame of every change) in-process. Both feed stores. Target < 5 s.
- **build**: ``cim build city.yml --store URL --full`` against ``cim build city.yml`` after the POI
  file alone changed (the two versions alternate, so every build has a change to take in), exit
  times under GNU time (and peak memory), ``--repeat`` pairs alternating, both build stores; the new
  release's ``config.cim_build.layers.buildings.carried_from`` shows whether the buildings were
  carried over. Target: incremental < 0.1 × full.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import httpx

from bench import sharing_data
from bench.build import timed
from bench.servers import cim_server

OUT = Path("bench/results/sharing.json")
TARGETS = {
    "download": "GeoParquet download rate >= 0.5 x ogr2ogr's from the same PostGIS table to the same format",
    "changes": "all pages of the change feed between two releases 1 % apart (1M buildings) < 5 s",
    "build": "incremental build (only the POIs changed) < 0.1 x the full build",
}
OGR_DRIVERS = {"gpkg": "GPKG", "fgb": "FlatGeobuf", "parquet": "Parquet"}
LAYER = "buildings"
TIMEOUT_S = 1800


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _guarded(name: str, run: Callable[[], Any]) -> Any:
    """The part's result, or what went wrong (a missing feature is reported, not a crash)."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what failed and carries on
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}


def _machine() -> dict[str, Any]:
    return {"load_average": os.getloadavg(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


# -- download --------------------------------------------------------------------------------


def gdal_formats() -> set[str]:
    listed = subprocess.run(["ogrinfo", "--formats"], capture_output=True, text=True).stdout
    return {name for name, driver in OGR_DRIVERS.items() if f"  {driver} " in listed or f"\n{driver} " in listed}


def file_features(path: Path, fmt: str) -> int | None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    import pyogrio

    return pyogrio.read_info(path)["features"]


def fetch(client: httpx.Client, path: str, into: Path | None) -> dict[str, Any]:
    """Seconds from sending the request to the last byte (the body written to ``into`` or dropped)."""
    started = time.perf_counter()
    size = 0
    with client.stream("GET", path) as response:
        sink = into.open("wb") if into is not None else None
        try:
            for chunk in response.iter_raw(1 << 20):
                size += len(chunk)
                if sink is not None:
                    sink.write(chunk)
        finally:
            if sink is not None:
                sink.close()
        seconds = time.perf_counter() - started
        headers = response.headers
        return {"seconds": round(seconds, 2), "status": response.status_code, "bytes": size,
                "etag": headers.get("etag"), "content_disposition": headers.get("content-disposition"),
                "content_type": headers.get("content-type")}  # fmt: skip


def release_table(url: str) -> tuple[int, str, int]:
    """(current release, its PostGIS table of buildings, the layer's feature count)."""
    from cim.store import open_store

    with open_store(url) as store:
        number = store.current_number()
        count = store.layer(LAYER).count
    return number, f"cim_r{number:04d}.{LAYER}", count


def run_ogr2ogr(db: str, table: str, fmt: str, work: Path) -> dict[str, Any]:
    out = work / f"ogr2ogr.{fmt}"
    out.unlink(missing_ok=True)
    seconds, peak, _ = timed(["ogr2ogr", "-f", OGR_DRIVERS[fmt], str(out), f"PG:dbname={db} host=127.0.0.1 user=postgres",
                              table, "-nln", LAYER])  # fmt: skip
    features = file_features(out, fmt)
    result = {"seconds": round(seconds, 2), "features": features, "features_per_s": round(features / seconds) if features else None,
              "bytes": out.stat().st_size, "peak_mib": peak}  # fmt: skip
    out.unlink()
    return result


def download(url: str, formats: list[str], repeat: int) -> dict[str, Any]:
    number, table, count = release_table(url)
    db = url.rsplit("/", 1)[1]
    ogr_formats = gdal_formats()
    entry: dict[str, Any] = {"store": url, "release": number, "table": table, "features": count,
                             "gdal_formats": sorted(ogr_formats), "start": _machine(), "runs": []}  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="cim-bench-sharing-"))
    try:
        for _ in range(repeat):
            run: dict[str, Any] = {"cim": {}, "ogr2ogr": {}}
            cache = work / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir()
            server = cim_server(url, _free_port(), 1, env={"CIM_DOWNLOAD_CACHE": str(cache)})
            server.start(work)
            try:
                with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
                    for fmt in formats:
                        path = f"/collections/{LAYER}/downloads/{fmt}"
                        cold = fetch(client, path, None)
                        got = work / f"download.{fmt}"
                        cached = fetch(client, path, got)
                        features = _guarded("open", lambda fmt=fmt, got=got: file_features(got, fmt)) if cached["status"] == 200 else None
                        got.unlink(missing_ok=True)
                        n = features if isinstance(features, int) else None
                        for r in (cold, cached):
                            r["features_per_s"] = round(n / r["seconds"]) if n and r["seconds"] else None
                        run["cim"][fmt] = {"cold": cold, "cached": cached, "features_in_file": features}
                        print(fmt, "cim", json.dumps(run["cim"][fmt]), file=sys.stderr)
            finally:
                server.stop()
            for fmt in sorted({*formats, "gpkg", "fgb"} & ogr_formats):
                run["ogr2ogr"][fmt] = _guarded(f"ogr2ogr {fmt}", lambda fmt=fmt: run_ogr2ogr(db, table, fmt, work))
                print(fmt, "ogr2ogr", json.dumps(run["ogr2ogr"][fmt]), file=sys.stderr)
            entry["runs"].append(run)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    entry["summary"] = download_summary(entry["runs"], formats, ogr_formats)
    entry["end"] = _machine()
    return entry


def download_summary(runs: list[dict[str, Any]], formats: list[str], ogr_formats: set[str]) -> dict[str, Any]:
    """Median rates per format; ratios against ogr2ogr's same format, or (GeoParquet without a GDAL
    Parquet driver) against ogr2ogr's fastest format, said so in ``compared_with``."""

    def rates(who: str, fmt: str, key: str | None = None) -> list[float]:
        out = []
        for run in runs:
            r = run[who].get(fmt) or {}
            r = r.get(key) or {} if key else r
            if r.get("features_per_s"):
                out.append(r["features_per_s"])
        return out

    ogr = {fmt: _median(rates("ogr2ogr", fmt)) for fmt in ogr_formats if rates("ogr2ogr", fmt)}
    summary: dict[str, Any] = {"ogr2ogr_features_per_s": ogr}
    for fmt in formats:
        cold, cached = _median(rates("cim", fmt, "cold")), _median(rates("cim", fmt, "cached"))
        if fmt in ogr:
            against, base = fmt, ogr[fmt]
        elif ogr:
            against = max(ogr, key=lambda f: ogr[f])
            base = ogr[against]
            against = f"{against} (stand-in: GDAL has no {OGR_DRIVERS[fmt]} driver)"
        else:
            against, base = None, None
        summary[fmt] = {
            "cold_features_per_s": cold, "cached_features_per_s": cached, "compared_with": against,
            "ratio_cold": round(cold / base, 2) if cold and base else None,
            "ratio_cached": round(cached / base, 2) if cached and base else None,
        }  # fmt: skip
    return summary


# -- change feed -----------------------------------------------------------------------------


def _change_kind(feature: dict[str, Any]) -> str:
    props = feature.get("properties") or {}
    for holder in (feature, props):
        for key in ("change", "cim:change", "action", "changeType"):
            value = holder.get(key)
            if isinstance(value, dict):  # {"type": "changed", "fields": [...], "from": fid, "to": fid}
                value = value.get("type")
            if isinstance(value, str):
                return value
    return "?"


def feed_over_http(base: str, a: int, b: int, limit: int) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    pages, size = 0, 0
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        started = time.perf_counter()
        url: str | None = f"/collections/{LAYER}/changes?from={a}&to={b}&limit={limit}"
        while url:
            response = client.get(url, headers={"Accept": "application/geo+json"})
            if response.status_code != 200:
                return {"error": f"HTTP {response.status_code} on page {pages + 1}: {response.text[:300]}"}
            page = response.json()
            pages += 1
            size += len(response.content)
            kinds.update(_change_kind(f) for f in page.get("features", []))
            url = next((link["href"] for link in page.get("links", []) if link.get("rel") == "next"), None)
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "pages": pages, "features": sum(kinds.values()), "by_change": dict(kinds), "bytes": size}


def feed_in_process(url: str, a: int, b: int) -> dict[str, Any]:
    """``city.changes(...)`` consumed to the end, whatever it returns (a list, an iterator of
    changes, or pages with a next cursor)."""
    import cim

    with cim.open(url) as city:
        started = time.perf_counter()
        result = city.changes(LAYER, a, b)
        if hasattr(result, "iloc"):  # a (Geo)DataFrame: one row per change
            count = len(result)
        elif isinstance(result, dict) and "features" in result:
            count = len(result["features"])
        elif hasattr(result, "features"):
            count = len(result.features)
        else:
            count = sum(1 for _ in result)
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "returned": type(result).__name__, "items": count,
            "note": "one call, the store opened before; city.changes returns every change (all pages)"}  # fmt: skip


def changes(url: str, a: int, b: int, limits: list[int]) -> dict[str, Any]:
    entry: dict[str, Any] = {"store": url, "from": a, "to": b, "start": _machine()}
    entry["python"] = _guarded("city.changes", lambda: feed_in_process(url, a, b))
    work = Path(tempfile.mkdtemp(prefix="cim-bench-sharing-"))
    try:
        for limit in limits:
            # a fresh server per limit: the server keeps a feed's list of changes in memory, so the
            # first run is the cold one (the diff made), the second reads the list kept
            server = cim_server(url, _free_port(), 1)
            server.start(work)
            try:
                entry[f"http_limit_{limit}"] = _guarded("feed", lambda limit=limit: feed_over_http(server.url, a, b, limit))
                entry[f"http_limit_{limit}_again"] = _guarded("feed", lambda limit=limit: feed_over_http(server.url, a, b, limit))
            finally:
                server.stop()
            print(url, limit, json.dumps(entry[f"http_limit_{limit}"]), json.dumps(entry[f"http_limit_{limit}_again"]), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    entry["end"] = _machine()
    return entry


# -- incremental build -----------------------------------------------------------------------


def _newest(url: str) -> dict[str, Any]:
    from cim.store import open_store

    with open_store(url) as store:
        info = store.releases()[-1]
        counts = {name: store.layer(name).count for name in ("buildings", "pois") if name in store.layer_names()}
    layers = (info.config.get("cim_build") or {}).get("layers") or {}
    return {"release": info.number, "carried_from": {name: v.get("carried_from") for name, v in layers.items()}, "counts": counts}


def one_build(config: Path, url: str, pois: Path, full: bool, report: Path) -> dict[str, Any]:
    """Put ``pois`` in place of the config's POI file, then ``cim build``; its exit time."""
    shutil.copyfile(pois, config.parent / "pois.gpkg")
    cim = str(Path(sys.executable).parent / "cim")
    command = [cim, "build", str(config), "--store", url, "--report", str(report)] + (["--full"] if full else [])
    seconds, peak, _ = timed(command)
    return {"seconds": round(seconds, 1), "peak_mib": peak, "pois_file": pois.name, **_newest(url)}


def build(config: Path, url: str, pois: list[Path], repeat: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"store": url, "config": str(config), "start": _machine()}
    report = config.parent / f"qa-{'postgis' if url.startswith('postgresql') else 'duckdb'}"
    version = 0
    # a first full build, so that the first incremental one has a current release to carry from
    entry["initial_full"] = one_build(config, url, pois[version], True, report)
    runs = []
    for _ in range(repeat):
        version = 1 - version
        full = one_build(config, url, pois[version], True, report)
        version = 1 - version
        incremental = one_build(config, url, pois[version], False, report)
        runs.append({"full": full, "incremental": incremental, "ratio": round(incremental["seconds"] / full["seconds"], 3)})
        print(url, json.dumps(runs[-1]), file=sys.stderr)
    entry["runs"] = runs
    full_s = _median([r["full"]["seconds"] for r in runs])
    incremental_s = _median([r["incremental"]["seconds"] for r in runs])
    entry["summary"] = {
        "full_seconds": full_s, "incremental_seconds": incremental_s,
        "ratio_of_medians": round(incremental_s / full_s, 3) if full_s and incremental_s else None,
        "ratios_per_pair": [r["ratio"] for r in runs],
        "buildings_carried_every_incremental": all(r["incremental"]["carried_from"].get("buildings") for r in runs),
    }  # fmt: skip
    entry["end"] = _machine()
    return entry


# -- the command -----------------------------------------------------------------------------


def manifest(args: argparse.Namespace) -> dict[str, Any]:
    work = args.work or sharing_data.BENCHDATA / f"sharing-{args.features}"
    path = work / "manifest.json"
    if not path.exists():
        sharing_data.main(["--features", str(args.features), "--work", str(work), "--db", args.db, "--duckdb", str(args.duckdb),
                           "--feed-db", args.feed_db, "--feed-duckdb", args.feed_duckdb])  # fmt: skip
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("download", "changes", "build", "all"))
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--db", default=sharing_data.DB)
    parser.add_argument("--duckdb", type=Path, default=sharing_data.DUCKDB)
    parser.add_argument("--feed-db", default=sharing_data.FEED_DB)
    parser.add_argument("--feed-duckdb", default=str(sharing_data.FEED_DUCKDB))
    parser.add_argument("--backends", default="postgis,duckdb", help="changes and build: which stores")
    parser.add_argument("--formats", default="parquet,gpkg,fgb")
    parser.add_argument("--limits", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3, help="build: full/incremental pairs")
    parser.add_argument("--download-repeat", type=int, default=1, help="download: cold/cached/ogr2ogr rounds")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    data = manifest(args)
    backends = args.backends.split(",")
    report: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report.update({"what": "data sharing (issue 14) on bench/sharing_data.py's city", "targets": TARGETS, "features": data["features"]})
    report.setdefault("parts", {})
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    parts = ("download", "changes", "build") if args.part == "all" else (args.part,)
    for part in parts:
        if part == "download":
            url = data["feeds"]["postgis"]["store"]
            result: dict[str, Any] = _guarded("download", lambda: download(url, args.formats.split(","), args.download_repeat))
        elif part == "changes":
            result = {b: _guarded(f"changes {b}", lambda b=b: changes(data["feeds"][b]["store"], data["feeds"][b]["from"],
                                                                     data["feeds"][b]["to"], [int(x) for x in args.limits.split(",")]))
                      for b in backends if b in data["feeds"]}  # fmt: skip
        else:
            pois = [Path(p) for p in data["pois"]]
            result = {b: _guarded(f"build {b}", lambda b=b: build(Path(data["config"]), data["build_stores"][b], pois, args.repeat))
                      for b in backends}  # fmt: skip
        report["parts"][part] = {"features": data["features"], "machine": machine, "result": result}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(json.dumps({p: report["parts"][p] for p in parts}, indent=1, default=str))


if __name__ == "__main__":
    main()
