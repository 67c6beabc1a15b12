"""Speed of the 3D Tiles service (issue 15) on the 1,000,000-building city: plan, export, tile requests, 3D viewer.

    .venv/bin/python -m bench.threed all                    # every part, both stores -> bench/results/threed.json
    .venv/bin/python -m bench.threed plan --backends duckdb
    .venv/bin/python -m bench.threed serve --sample 500
    .venv/bin/python -m bench.threed all --features 20000 --db cim_h6_small --duckdb /tmp/t.duckdb   # a trial

The data is bench/threed_data.py's (made by it when a store lacks it, with the same ``--features``/
store flags): the CIM+ processes' city (1M buildings with heights, zoning, parcels, roads, POIs) on a
synthetic DEM, one release per store. Each part writes its entry of ``--out`` and keeps the others.
Run it on a quiet machine: no tests, no other benchmark.

- **plan**: ``SceneEngine(store).plan("buildings")`` in-process, on a fresh store object and engine
  each time with no tile cache (``CIM_TILE_CACHE=off``): ``--repeat`` cold runs, median; then once
  with a fresh cache directory (the plan written to it) and once more by a new engine reading it back
  (what a second server worker or a restarted server pays), and the plan's shape (tiles, leaves, levels,
  buildings per leaf).
- **export**: ``cim export 3dtiles DIR --layer buildings --store URL`` under GNU time (exit time, peak
  memory; ``CIM_TILE_CACHE=off``, so everything is made): files, bytes, bytes per building, the
  largest GLB, GLB size percentiles. DIR is ``--export-root/<store>/collections/buildings/3dtiles``, so
  that nginx serves it under the same paths as ``cim serve``.
- **serve**: a real ``cim serve`` (bench/servers.py, ``--workers``, a fresh ``CIM_TILE_CACHE``
  directory: as deployed, starting cold). ``GET /collections/buildings/3dtiles`` (tileset.json; the
  first request makes the plan) twice, then the GLB contents of ``--sample`` leaves (seeded, all when
  there are fewer) one after the other with one httpx client: *cold* (each request renders the leaf),
  then *warm* (the same leaves again: the server's cache), then with ``If-None-Match`` (304s);
  p50/p95/max latency from sending the request to the last byte. Then wrk (16 connections, 2
  threads, ``--seconds``) over the same paths, warm. The peer: nginx (``--workers`` workers,
  sendfile) serving the export directory of the same store under the same paths, the same sequential
  pass and wrk run. Ratios: our p50 ÷ nginx's p50 (latency; lower is better) and our req/s ÷ nginx's.
- **viewer**: ``/viewer/3d`` (the camera at the city centre) in headless Chromium (tests/support/browser.py:
  SwiftShader WebGL, 1200 x 800) on a fresh ``cim serve`` (fresh tile cache): the page's ``readyMs``
  (``performance.now()`` when the tilesets report all tiles loaded and the globe its tiles) — first
  on the cold server, then ``--viewer-runs`` more, each in a fresh browser profile (the server warm);
  the median of those is the figure. A screenshot of the last run goes to ``--shots``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import threed_data, wrk
from bench.build import timed
from bench.servers import ROOT, Server, cim_server
from bench.sharing import _free_port, _guarded, _machine
from bench.tiles import nginx_server

OUT = Path("bench/results/threed.json")
LAYER = "buildings"
EXPORT_ROOT = threed_data.BENCHDATA / "threed-export"
SHOTS = threed_data.BENCHDATA / "threed-shots"
TARGETS = {
    "preparation": "reported: `cim export 3dtiles` time and size for 1M buildings",
    "tile_p50": "a GLB tile request p50 < 50 ms once prepared",
    "viewer": "/viewer/3d shows the city centre in < 3 s (headless Chromium on this machine)",
}
TIMEOUT_S = 600
STATUS = (
    "(function () { var e = document.getElementById('status'); if (!e) return null;"
    " var s = e.getAttribute('data-state'); var t = e.textContent;"
    " try { var j = JSON.parse(t); if (j.state && j.state !== 'loading') return t; } catch (x) {}"
    " return s && s !== 'loading' ? JSON.stringify({state: s, text: t}) : null; })()"
)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def percentiles(values: list[float], digits: int = 1) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(statistics.median(ordered), digits),
            "p95": round(ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))], digits),
            "max": round(ordered[-1], digits)}  # fmt: skip


# -- plan ------------------------------------------------------------------------------------


def plan_shape(plan: Any) -> dict[str, Any]:
    tiles = plan.tiles()
    leaves = [t for t in tiles if t.has_content]
    per_leaf = [len(t.fids) for t in leaves]
    return {"buildings": plan.count, "tiles": len(tiles), "leaves": len(leaves),
            "deepest_level": max(t.level for t in tiles), "buildings_per_leaf": percentiles(per_leaf, 0),
            "in_leaves": sum(per_leaf), "dem": plan.dem, "bbox3d": [round(v, 5) for v in plan.bbox3d]}  # fmt: skip


def timed_plan(url: str) -> tuple[float, Any]:
    """Seconds of one ``plan()`` on a fresh store object and engine (the store opened before)."""
    from cim.store import open_store
    from tiles.threed.engine import SceneEngine

    with open_store(url) as store:
        engine = SceneEngine(store)
        started = time.perf_counter()
        plan = engine.plan(LAYER)
        return time.perf_counter() - started, plan


def plan(url: str, repeat: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"store": url, "start": _machine()}
    cold = []
    with environment(CIM_TILE_CACHE="off"):
        for _ in range(repeat):
            seconds, made = timed_plan(url)
            cold.append(round(seconds, 2))
            print(f"{url}: plan cold {seconds:.2f} s", file=sys.stderr)
    entry["cold_s"] = cold
    entry["cold_median_s"] = round(statistics.median(cold), 2)
    entry["shape"] = plan_shape(made)
    with tempfile.TemporaryDirectory(prefix="cim-bench-3d-plan-") as cache, environment(CIM_TILE_CACHE=cache):
        written, _ = timed_plan(url)
        read, again = timed_plan(url)
        entry["with_disk_cache_s"] = {"made_and_written": round(written, 2), "read_back_by_a_new_engine": round(read, 2)}
        entry["read_back_same_shape"] = plan_shape(again) == entry["shape"]
    print(f"{url}: plan {json.dumps({k: entry[k] for k in ('cold_s', 'with_disk_cache_s')})}", file=sys.stderr)
    entry["end"] = _machine()
    return entry


# -- export ----------------------------------------------------------------------------------


def export_dir(root: Path, backend: str) -> Path:
    return root / backend / "collections" / LAYER / "3dtiles"


def export(url: str, backend: str, root: Path) -> dict[str, Any]:
    out = export_dir(root, backend)
    shutil.rmtree(root / backend, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cim = str(Path(sys.executable).parent / "cim")
    entry: dict[str, Any] = {"store": url, "dir": str(out), "start": _machine()}
    with environment(CIM_TILE_CACHE="off"):
        seconds, peak, _ = timed([cim, "export", "3dtiles", str(out), "--layer", LAYER, "--store", url])
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)  # nginx's workers read it
    files = [p for p in out.rglob("*") if p.is_file()]
    glbs = sorted(p.stat().st_size for p in files if p.suffix == ".glb")
    total = sum(p.stat().st_size for p in files)
    tileset = json.loads((out / "tileset.json").read_text())
    count = (tileset.get("root", {}).get("extras") or tileset.get("extras") or {}).get("count")
    if count is None:
        from cim.store import open_store

        with open_store(url) as store:
            count = store.layer(LAYER).count
    largest = max((p for p in files if p.suffix == ".glb"), key=lambda p: p.stat().st_size, default=None)
    entry.update({
        "seconds": round(seconds, 1), "peak_mib": peak, "files": len(files), "glb_files": len(glbs),
        "bytes": total, "glb_bytes": sum(glbs), "tileset_json_bytes": (out / "tileset.json").stat().st_size,
        "buildings": count, "bytes_per_building": round(total / count, 1) if count else None,
        "buildings_per_s": round(count / seconds) if count else None,
        "glb_bytes_percentiles": percentiles([float(b) for b in glbs], 0),
        "largest_glb": {"path": str(largest.relative_to(out)), "bytes": largest.stat().st_size} if largest else None,
    })  # fmt: skip
    print(f"{url}: export {json.dumps({k: entry[k] for k in ('seconds', 'files', 'bytes', 'bytes_per_building')})}", file=sys.stderr)
    entry["end"] = _machine()
    return entry


# -- serve -----------------------------------------------------------------------------------


def fresh_server(url: str, workers: int, work: Path) -> Server:
    """``cim serve`` started with an empty tile cache in ``work``; ready when /conformance answers
    (/collections would make the 3D plan: the collections' 3D extent comes from it)."""
    server = cim_server(url, _free_port(), workers, env={"CIM_TILE_CACHE": str(work / "tile-cache")})
    server.ready_path = "/conformance"
    server.start(work)
    return server


def leaf_paths(tileset: dict[str, Any]) -> list[str]:
    """Path and query of every content URI of the tileset (absolute URIs made relative to the server)."""
    out = []
    stack = [tileset["root"]]
    while stack:
        tile = stack.pop()
        for content in ([tile["content"]] if "content" in tile else []) + tile.get("contents", []):
            parts = urlsplit(content["uri"])
            out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        stack.extend(tile.get("children", []))
    return sorted(out)


def get(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    response = client.get(path, headers=headers)
    body = response.content
    return {"ms": (time.perf_counter() - started) * 1000, "status": response.status_code, "bytes": len(body),
            "etag": response.headers.get("etag"), "type": response.headers.get("content-type")}  # fmt: skip


def sequential(client: httpx.Client, paths: list[str], conditional: dict[str, str] | None = None) -> dict[str, Any]:
    """Each path once, one after the other; latency percentiles of the 200s (or 304s when ``conditional``
    gives an ETag per path), the other statuses counted."""
    runs = []
    for path in paths:
        headers = {"If-None-Match": conditional[path]} if conditional and conditional.get(path) else None
        runs.append(get(client, path, headers))
    expected = 304 if conditional else 200
    good = [r for r in runs if r["status"] == expected]
    statuses: dict[str, int] = {}
    for r in runs:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    result = {"ms": percentiles([r["ms"] for r in good]), "statuses": statuses,
              "bytes": percentiles([float(r["bytes"]) for r in good], 0), "content_type": good[0]["type"] if good else None}  # fmt: skip
    result["etags"] = {path: r["etag"] for path, r in zip(paths, runs)}
    return result


def load(url: str, paths: list[str], seconds: int, work: Path, name: str) -> dict[str, Any]:
    listed = work / f"{name}.paths"
    listed.write_text("".join(p + "\n" for p in paths))
    wrk.run(url, seconds=2, connections=4, paths=listed)  # every worker warmed
    return wrk.run(url, seconds=seconds, connections=16, threads=2, paths=listed).as_dict()


def serve(url: str, backend: str, root: Path, sample: int, seconds: int, workers: int, seed: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"store": url, "workers": workers, "start": _machine()}
    work = Path(tempfile.mkdtemp(prefix="cim-bench-3d-"))
    work.chmod(0o755)
    try:
        server = fresh_server(url, workers, work)
        try:
            with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
                first = get(client, f"/collections/{LAYER}/3dtiles")
                second = get(client, f"/collections/{LAYER}/3dtiles")
                entry["tileset_json"] = {"cold_ms": round(first["ms"], 1), "warm_ms": round(second["ms"], 1),
                                         "status": first["status"], "bytes": first["bytes"]}  # fmt: skip
                tileset = client.get(f"/collections/{LAYER}/3dtiles").json()
                leaves = leaf_paths(tileset)
                paths = random.Random(seed).sample(leaves, min(sample, len(leaves)))
                entry["leaves"], entry["sampled"] = len(leaves), len(paths)
                cold = sequential(client, paths)
                warm = sequential(client, paths)
                not_modified = sequential(client, paths, conditional=warm.pop("etags"))
                cold.pop("etags")
                not_modified.pop("etags")
                entry.update({"cold": cold, "warm": warm, "not_modified": not_modified})
                print(f"{url}: tileset {entry['tileset_json']}; GLB cold {cold['ms']} warm {warm['ms']} 304 {not_modified['ms']}",
                      file=sys.stderr)  # fmt: skip
            entry["wrk_warm"] = load(server.url, paths, seconds, work, "cim")
            print(f"{url}: wrk warm {entry['wrk_warm']}", file=sys.stderr)
        finally:
            server.stop()
        static = root / backend
        if (export_dir(root, backend) / "tileset.json").exists():
            nginx = nginx_server(static, _free_port(), workers, work, media_type="model/gltf-binary", suffix="glb")
            nginx.start(work)
            try:
                plain = [p.split("?", 1)[0] for p in paths]
                with httpx.Client(base_url=nginx.url, timeout=TIMEOUT_S) as client:
                    sequential(client, plain)  # the page cache warmed, as the server's cache was
                    peer = sequential(client, plain)
                peer.pop("etags")
                peer["wrk"] = load(nginx.url, plain, seconds, work, "nginx")
                entry["nginx"] = peer
            finally:
                nginx.stop()
            ours, theirs = entry["warm"]["ms"]["p50"], peer["ms"]["p50"]
            entry["ratios"] = {
                "p50_ours_over_nginx": round(ours / theirs, 2) if ours and theirs else None,
                "rps_ours_over_nginx": round(entry["wrk_warm"]["rps"] / peer["wrk"]["rps"], 3) if peer["wrk"]["rps"] else None,
            }  # fmt: skip
            print(f"{url}: nginx {peer['ms']} wrk {peer['wrk']}; ratios {entry['ratios']}", file=sys.stderr)
        else:
            entry["nginx"] = {"error": f"no export in {static}: run the export part first"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    entry["end"] = _machine()
    return entry


# -- viewer ----------------------------------------------------------------------------------


def ensure_cesium() -> None:
    subprocess.run(["bash", "-c", "source scripts/lib.sh && ensure_cesium"], cwd=ROOT, check=True, stdin=subprocess.DEVNULL)


def open_viewer(base: str, shot: Path | None) -> dict[str, Any]:
    """One visit of /viewer/3d in a fresh Chromium profile: the page's status once it left "loading"."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.browser import BrowserError, Chromium, find_chromium

    executable = find_chromium()
    if executable is None:
        raise RuntimeError("no Chromium: apt-get install chromium")
    with Chromium(executable, width=1200, height=800) as browser:
        started = time.perf_counter()
        browser.navigate(f"{base}/viewer/3d")
        try:
            text = browser.wait_for(STATUS, timeout=300, interval=0.1)
        except BrowserError as exc:
            return {"error": str(exc)[:500], "page_errors": browser.page_errors()[:5]}
        wall = time.perf_counter() - started
        status = json.loads(text)
        if shot is not None:
            browser.screenshot(shot)
        return {"ready_ms": status.get("readyMs"), "state": status.get("state"), "wall_s": round(wall, 2),
                "status": status, "page_errors": browser.page_errors()[:5]}  # fmt: skip


def viewer(url: str, backend: str, runs: int, workers: int, shots: Path) -> dict[str, Any]:
    ensure_cesium()
    entry: dict[str, Any] = {"store": url, "workers": workers, "start": _machine()}
    work = Path(tempfile.mkdtemp(prefix="cim-bench-3d-viewer-"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        server = fresh_server(url, workers, work)
        try:
            entry["cold_server"] = open_viewer(server.url, shots / f"{backend}-cold.png")
            print(f"{url}: viewer, cold server: {entry['cold_server'].get('ready_ms')} ms", file=sys.stderr)
            entry["runs"] = []
            for k in range(runs):
                entry["runs"].append(open_viewer(server.url, shots / f"{backend}-{k + 1}.png"))
                print(f"{url}: viewer run {k + 1}: {entry['runs'][-1].get('ready_ms')} ms", file=sys.stderr)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ready = [r["ready_ms"] for r in entry["runs"] if isinstance(r.get("ready_ms"), (int, float))]
    entry["ready_ms_median"] = round(statistics.median(ready)) if ready else None
    entry["end"] = _machine()
    return entry


# -- the command -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("plan", "export", "serve", "viewer", "all"))
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--db", default=threed_data.DB)
    parser.add_argument("--duckdb", default=str(threed_data.DUCKDB))
    parser.add_argument("--backends", default="postgis,duckdb")
    parser.add_argument("--repeat", type=int, default=3, help="plan: cold runs")
    parser.add_argument("--sample", type=int, default=500, help="serve: leaves requested")
    parser.add_argument("--seconds", type=int, default=10, help="serve: wrk seconds")
    parser.add_argument("--workers", type=int, default=2, help="serve/viewer: server worker processes (and nginx's)")
    parser.add_argument("--viewer-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--export-root", type=Path, default=EXPORT_ROOT)
    parser.add_argument("--shots", type=Path, default=SHOTS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    flags = ["--features", str(args.features), "--db", args.db if "postgis" in args.backends else "",
             "--duckdb", args.duckdb if "duckdb" in args.backends else ""]  # fmt: skip
    data = threed_data.main(flags)  # made only when missing
    stores = {b: data["stores"][b]["store"] for b in args.backends.split(",") if b in data["stores"]}
    report: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report.update({"what": "3D Tiles (issue 15) on bench/threed_data.py's city", "targets": TARGETS, "features": args.features})
    report.setdefault("data", {}).update(data["stores"])
    report.setdefault("parts", {})
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    parts = ("plan", "export", "serve", "viewer") if args.part == "all" else (args.part,)
    for part in parts:
        results = report["parts"].setdefault(part, {"result": {}})
        results.update({"features": args.features, "machine": machine})
        for backend, url in stores.items():
            if part == "plan":
                run = lambda url=url: plan(url, args.repeat)  # noqa: E731
            elif part == "export":
                run = lambda url=url, backend=backend: export(url, backend, args.export_root)  # noqa: E731
            elif part == "serve":
                run = lambda url=url, backend=backend: serve(url, backend, args.export_root, args.sample, args.seconds,  # noqa: E731
                                                             args.workers, args.seed)  # fmt: skip
            else:
                run = lambda url=url, backend=backend: viewer(url, backend, args.viewer_runs, args.workers, args.shots)  # noqa: E731
            results["result"][backend] = _guarded(f"{part} {backend}", run)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(json.dumps({p: report["parts"][p] for p in parts}, indent=1, default=str))


if __name__ == "__main__":
    main()
