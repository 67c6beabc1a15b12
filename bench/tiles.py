"""Tile scenarios: uncached MVT at z14 and z10 (cim-basemap vs tipg), cached (cim-basemap vs nginx).

Uncached means every request asks for a tile nobody asked for before: each server gets the same
shuffled list of distinct tiles that hold buildings (from the building centroids), longer than the
requests a run makes (the report says when a run came round to the start of its list). Cached means
a small set of tiles rendered once, then asked for over and over; nginx serves the very same bytes,
fetched from cim-basemap, as static files — the practical limit for a tile server.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from bench import wrk
from bench.servers import Server

#: WebMercatorQuad column/row of a lon/lat point at zoom :z, in SQL
_TILE_OF_CENTROID = """
SELECT DISTINCT
  floor((ST_X(c) + 180) / 360 * 2 ^ %(z)s)::int AS col,
  floor((1 - ln(tan(radians(ST_Y(c))) + 1 / cos(radians(ST_Y(c)))) / pi()) / 2 * 2 ^ %(z)s)::int AS row
FROM (SELECT ST_Centroid(geom) AS c FROM {table}) AS centroids
"""


def tiles_with_buildings(db_url: str, schema: str, z: int, seed: int = 14) -> list[tuple[int, int, int]]:
    """(z, row, col) of every WebMercatorQuad tile at ``z`` holding a building centroid, shuffled."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(_TILE_OF_CENTROID.format(table=f'"{schema}".buildings'), {"z": z}).fetchall()
    tiles = sorted((z, row, col) for col, row in rows)
    random.Random(seed).shuffle(tiles)
    return tiles


def write_paths(tiles: list[tuple[int, int, int]], template: str, out: Path) -> Path:
    """One request path per tile; ``template`` has {z}, {row} and {col}."""
    out.write_text("".join(template.format(z=z, row=row, col=col) + "\n" for z, row, col in tiles))
    return out


def cim_tile_path(server: Server) -> str:
    return server.buildings + "/tiles/WebMercatorQuad/{z}/{row}/{col}"


def tipg_tile_path(server: Server) -> str:
    # tipg 1.x: /collections/{id}/tiles/{tileMatrixSetId}/{z}/{x}/{y} (column before row)
    return server.buildings + "/tiles/WebMercatorQuad/{z}/{col}/{row}"


def uncached(server: Server, template: str, tiles: list[tuple[int, int, int]], seconds: int, work: Path) -> dict:
    """Tiles of the list but the last 200 (the warm-up's), 16 connections at a time, for as long as
    three quarters of the list last at the server's rate (at most ``seconds``): no tile is asked
    for twice, so no server gains from a tile it (or PostgreSQL's buffers) saw before. The rate
    comes from a 1-s probe at 16 connections on the warm-up tiles (whole seconds: wrk's unit)."""
    measured, warm = tiles[:-200], tiles[-200:]
    paths = write_paths(measured, template, work / f"{server.name}-{tiles[0][0]}.paths")
    warm_paths = write_paths(warm, template, work / "warm.paths")
    wrk.run(server.url, seconds=2, connections=4, paths=warm_paths)
    probe = wrk.run(server.url, seconds=1, connections=16, threads=2, paths=warm_paths)
    duration = max(1, min(seconds, int(0.75 * len(measured) / max(probe.requests_per_s, 1.0))))
    load = wrk.run(server.url, seconds=duration, connections=16, threads=2, paths=paths)
    result = load.as_dict()
    result["seconds"] = duration
    result["distinct_tiles"] = len(measured)
    result["wrapped"] = load.requests > len(measured)
    return result


def single_pass(server: Server, template: str, tiles: list[tuple[int, int, int]], connections: int = 16) -> dict:
    """Every tile of ``tiles`` asked for once, ``connections`` at a time: for zooms with fewer distinct
    tiles than a timed run would ask for (a repeated tile would be a cached one)."""
    from concurrent.futures import ThreadPoolExecutor

    def get(tile: tuple[int, int, int]) -> float:
        z, row, col = tile
        started = time.perf_counter()
        with urllib.request.urlopen(server.url + template.format(z=z, row=row, col=col), timeout=300) as r:
            r.read()
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        millis = sorted(pool.map(get, tiles))
    seconds = time.perf_counter() - started
    return {"rps": round(len(tiles) / seconds, 1), "p50_ms": round(millis[len(millis) // 2], 2),
            "p99_ms": round(millis[-1], 2), "requests": len(tiles), "errors": 0, "distinct_tiles": len(tiles),
            "wrapped": False, "single_pass": True}


def fetch_tiles(server: Server, template: str, tiles: list[tuple[int, int, int]], root: Path) -> int:
    """GET each tile once (rendering and caching it) and store its bytes under ``root`` at the same path."""
    total = 0
    for z, row, col in tiles:
        path = template.format(z=z, row=row, col=col)
        with urllib.request.urlopen(server.url + path, timeout=60) as response:
            data = response.read()
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        total += len(data)
    return total


def cached(server: Server, template: str, tiles: list[tuple[int, int, int]], seconds: int, work: Path) -> dict:
    """The server's rate on tiles it has rendered before (its cache), with every worker warmed."""
    paths = write_paths(tiles, template, work / f"{server.name}-cached.paths")
    wrk.run(server.url, seconds=3, connections=4, paths=paths)  # every worker process warms its memory
    return wrk.run(server.url, seconds=seconds, connections=16, threads=2, paths=paths).as_dict()


NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types {{ {media_type} {suffix}; }}
  default_type {media_type};
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    etag on;
  }}
}}
"""


def nginx_server(
    root: Path, port: int, workers: int, work: Path,
    media_type: str = "application/vnd.mapbox-vector-tile", suffix: str = "tile",
) -> Server:
    """nginx serving the files under ``root`` (as ``media_type``, the type of files named ``*.suffix``
    and of every other file) on ``port``; its configuration and logs in ``work``."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx missing: run `bash bench/setup-peers.sh`")
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, work=work, port=port, root=root, media_type=media_type, suffix=suffix))
    # ready when a file it serves answers
    probe = next(p for p in root.rglob("*") if p.is_file())
    return Server("nginx", port, [nginx, "-c", str(conf)], {}, "", ready_path="/" + str(probe.relative_to(root)))


def measure_tiles(
    cim: Server, cim_rendering: Server, tipg: Server, db_url: str, schema: str, seconds: int, workers: int
) -> dict:
    """All tile scenarios; the servers are started and stopped here, one at a time. The uncached
    scenarios run on ``cim_rendering``, a cim-basemap server that keeps no tile (no disk cache, no
    memory): every request renders, as every tipg request does, even when a fast run comes round to
    the start of its list of distinct tiles. The cached scenario runs on ``cim``, configured as
    deployed (memory and disk cache)."""
    work = Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    work.chmod(0o755)  # nginx's workers (www-data) read the static tiles under it
    logs = work / "logs"
    logs.mkdir()
    z14 = tiles_with_buildings(db_url, schema, 14)
    z10 = tiles_with_buildings(db_url, schema, 10)
    hot = z14[:500]
    print(f"tiles: {len(z14)} z14 and {len(z10)} z10 tiles hold buildings", file=sys.stderr)
    results: dict[str, dict] = {}
    for server, template in ((cim_rendering, cim_tile_path(cim)), (tipg, tipg_tile_path(tipg)), (cim, cim_tile_path(cim))):
        server.start(logs)
        try:
            row = results.setdefault(server.name, {})
            before = set(row)
            if server is cim:
                root = work / "static"
                size = fetch_tiles(server, template, hot, root)
                row["mvt_z14_cached"] = cached(server, template, hot, seconds, work)
                row["mvt_z14_cached"]["mean_tile_bytes"] = size // len(hot)
            else:
                row["mvt_z14_uncached"] = uncached(server, template, z14, seconds, work)
                # z10: too few distinct tiles for a timed run over a city: each once, 16 at a time
                row["mvt_z10_uncached"] = single_pass(server, template, z10)
            if server is cim_rendering:
                row["sizes"] = size_distribution(server, db_url, schema, range(4, 17, 2))
            for name, scenario in row.items():
                if "rps" in scenario and name not in before:
                    print(f"  {server.name:12s} {name:18s} {scenario['rps']:8.1f} req/s  p50 {scenario['p50_ms']:8.2f} ms"
                          f"  errors {scenario['errors']}", file=sys.stderr)
        finally:
            server.stop()
    nginx = nginx_server(work / "static", cim.port + 50, workers, work)
    nginx.start(logs)
    try:
        results["nginx"] = {"mvt_z14_cached": cached(nginx, cim_tile_path(cim), hot, seconds, work)}
        print(f"  nginx        mvt_z14_cached     {results['nginx']['mvt_z14_cached']['rps']:8.1f} req/s", file=sys.stderr)
    finally:
        nginx.stop()
    return results


def size_distribution(server: Server, db_url: str, schema: str, zooms: range, sample: int = 150) -> dict:
    """Tile sizes (bytes) at each zoom of the buildings tileset and the composite base map, over up to
    ``sample`` tiles holding buildings per zoom (all of them where there are fewer), and the time the
    server took for each (uncached: the server runs with a fresh cache)."""
    sizes: dict[str, dict] = {}
    for name, template in (("buildings", cim_tile_path(server)), ("basemap", "/tiles/WebMercatorQuad/{z}/{row}/{col}")):
        for z in zooms:
            tiles = tiles_with_buildings(db_url, schema, z)[:sample]
            lengths, millis = [], []
            for zz, row, col in tiles:
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(server.url + template.format(z=zz, row=row, col=col), timeout=120) as r:
                        lengths.append(len(r.read()))
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:  # 404: below the tileset's lowest zoom (the composite starts at z10)
                        raise
                    continue
                millis.append((time.perf_counter() - started) * 1000)
            if not lengths:
                continue
            values = sorted(lengths)
            sizes.setdefault(name, {})[str(z)] = {
                "tiles": len(values), "max_bytes": values[-1], "p95_bytes": values[int(0.95 * (len(values) - 1))],
                "p50_bytes": values[len(values) // 2], "p50_ms": round(sorted(millis)[len(millis) // 2], 1),
                "max_ms": round(max(millis), 1),
            }
            row = sizes[name][str(z)]
            print(f"  sizes {name:9s} z{z:<2d} {row['tiles']:4d} tiles  max {row['max_bytes']:7d} B  "
                  f"p95 {row['p95_bytes']:7d}  p50 {row['p50_bytes']:7d}  p50 {row['p50_ms']} ms", file=sys.stderr)
    return sizes
