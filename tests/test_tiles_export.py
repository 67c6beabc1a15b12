"""``cim tiles seed`` and ``cim export pmtiles|mbtiles``, run as users run them, read back with standard readers."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from morecantile import Tile
from pmtiles.convert import mbtiles_to_pmtiles
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType

from cim.store import shared_store
from cim.tms import tile_matrix_sets
from tiles.cache import DiskCache, TileCache
from tiles.engine import ENGINE_VERSION, TileEngine
from tiles.tilesets import tileset
from support.tiles import counts, decode, tile_at

pytestmark = pytest.mark.slow  # runs `cim tiles seed` / `cim export` as subprocesses (~25 s)


CIM = Path(sys.executable).parent / "cim"
#: central Helsinki: a few tiles per zoom keep the runs short
BBOX = "24.930,60.160,24.955,60.175"


def cim(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CIM_STORE", "CIM_TILE_CACHE")}
    return subprocess.run([str(CIM), *args], capture_output=True, text=True, env=env, timeout=300)


def server_tile(store_url: str, z: int) -> tuple[tuple[int, int, int], bytes]:
    tile = tile_at("WebMercatorQuad", z)
    result = TileEngine(shared_store(store_url), TileCache()).tile("basemap", tile_matrix_sets()["WebMercatorQuad"], tile)
    return (tile.z, tile.x, tile.y), result.data


def test_seed_fills_the_disk_cache_the_server_reads(demo_store_url: str, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    run = cim("tiles", "seed", "--store", demo_store_url, "--minzoom", "13", "--maxzoom", "14",
              "--bbox", BBOX, "--cache", str(cache_dir))
    assert run.returncode == 0, run.stderr
    assert "release 1" in run.stdout and "z14:" in run.stdout
    (z, x, y), expected = server_tile(demo_store_url, 14)
    seeded = list(cache_dir.glob(f"r0001-*/basemap/WebMercatorQuad/{z}/{y}/{x}.mvt"))
    assert len(seeded) == 1 and seeded[0].read_bytes() == expected
    # a server with a cold memory cache and this directory serves the seeded bytes
    store = shared_store(demo_store_url)
    engine = TileEngine(store, TileCache(disk=DiskCache(cache_dir)))
    key = engine.key(engine.release_tag(1), tileset(store, "basemap"), tile_matrix_sets()["WebMercatorQuad"], Tile(x, y, z),
                     prepared=store.tile_geometry_version())  # fmt: skip
    assert key[0].startswith(f"{engine.release_tag(1)}.v{ENGINE_VERSION}")
    assert engine.cache.get(key) == expected


def test_seed_needs_a_disk_cache_on_postgis(demo_store_url: str) -> None:
    if not demo_store_url.startswith("postgresql"):
        return
    run = cim("tiles", "seed", "--store", demo_store_url, "--maxzoom", "10")
    assert run.returncode == 1 and run.stderr.startswith("error: seeding needs a disk cache")


def test_export_pmtiles_round_trip(demo_store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "city.pmtiles"
    run = cim("export", "pmtiles", str(out), "--store", demo_store_url, "--maxzoom", "15", "--bbox", BBOX)
    assert run.returncode == 0, run.stderr
    with open(out, "rb") as f:
        reader = Reader(MmapSource(f))
        header = reader.header()
        assert header["tile_type"] == TileType.MVT and header["tile_compression"] == Compression.GZIP
        # the demo's divisions (from zoom 4) are the first drawn: from 5, where their largest area is visible
        assert header["clustered"] and (header["min_zoom"], header["max_zoom"]) == (5, 15)
        meta = reader.metadata()
        assert {layer["id"] for layer in meta["vector_layers"]} >= {"buildings", "roads", "pois"}
        tiles = {zxy: gzip.decompress(data) for zxy, data in all_tiles(reader.get_bytes)}
        (z, x, y), expected = server_tile(demo_store_url, 15)
        assert tiles[(z, x, y)] == expected and gzip.decompress(reader.get(z, x, y)) == expected
        assert all(decode(data) for data in tiles.values())
        assert "buildings" in decode(tiles[(z, x, y)])


def test_export_mbtiles_round_trip(demo_store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "city.mbtiles"
    run = cim("export", "mbtiles", str(out), "--store", demo_store_url, "--maxzoom", "14", "--bbox", BBOX)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(out) as db:
        meta = dict(db.execute("SELECT name, value FROM metadata"))
        assert meta["format"] == "pbf" and meta["maxzoom"] == "14"
        assert {layer["id"] for layer in json.loads(meta["json"])["vector_layers"]} >= {"buildings", "roads"}
        (z, x, y), expected = server_tile(demo_store_url, 14)
        (blob,) = db.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (1 << z) - 1 - y),  # TMS row order
        ).fetchone()
        assert gzip.decompress(blob) == expected
        total = db.execute("SELECT count(*) FROM tiles").fetchone()[0]
    # the PMTiles tool's own MBTiles importer reads it
    converted = tmp_path / "converted.pmtiles"
    mbtiles_to_pmtiles(str(out), str(converted), 14)
    with open(converted, "rb") as f:
        reader = Reader(MmapSource(f))
        assert sum(1 for _ in all_tiles(reader.get_bytes)) == total
        assert counts(decode(gzip.decompress(reader.get(z, x, y)))) == counts(decode(expected))


def test_export_refuses_empty_ranges_and_bad_bboxes(demo_store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "none.pmtiles"
    run = cim("export", "pmtiles", str(out), "--store", demo_store_url, "--maxzoom", "4")
    assert run.returncode == 1 and "nothing to export" in run.stderr and not out.exists()
    run = cim("export", "mbtiles", str(tmp_path / "x.mbtiles"), "--store", demo_store_url, "--maxzoom", "4", "--bbox", "1,2,3")
    assert run.returncode == 1 and run.stderr.startswith("error: --bbox")
