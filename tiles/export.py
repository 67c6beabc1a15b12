"""Tile archives of the composite base map: PMTiles v3 and MBTiles 1.3, WebMercatorQuad.

Both hold the same gzip-compressed MVT tiles the server serves (the engine, so seeded tiles are
reused), for zooms ``minzoom..maxzoom`` over the data extent (or a given CRS84 bbox); empty tiles
are left out, as both formats expect. Every tile comes from one release: if the store switches
release during an export, the export fails rather than mix two releases.

- PMTiles: written with the ``pmtiles`` library, tiles in tile-id order (a clustered archive),
  metadata with ``vector_layers`` (TileJSON-like) for viewers.
- MBTiles: SQLite with the standard ``metadata`` and ``tiles`` tables (``tile_row`` in TMS order,
  i.e. flipped: ``2^z - 1 - y``), ``format=pbf`` and the ``json`` metadata row with ``vector_layers``.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from morecantile import Tile
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from cim.errors import ConfigError, NotFound, StoreError
from cim.store import Bounds
from cim.tms import WEB_MERCATOR, tile_matrix_sets
from tiles.documents import tilejson
from tiles.engine import TileEngine
from tiles.tilesets import COMPOSITE, Tileset, composite, tileset

Progress = Callable[[str], None]


@dataclass
class ExportStats:
    """What an export (or a seed) wrote."""

    release: int = 0
    tiles: int = 0
    empty: int = 0
    bytes: int = 0
    largest: int = 0
    per_zoom: dict[int, int] = field(default_factory=dict)


def tile_coords(ts: Tileset, minzoom: int, maxzoom: int, bbox: Bounds | None, tms_id: str = WEB_MERCATOR) -> Iterator[tuple[int, int, int]]:
    """(z, x, y) of every tile over ``bbox`` (default: the tileset's extent), zoom by zoom, each
    zoom in PMTiles tile-id order (so the whole sequence is in tile-id order)."""
    tms = tile_matrix_sets()[tms_id]
    area = bbox or ts.bbox
    if area is None:
        return
    zooms = ts.zooms(tms)
    for z in range(max(minzoom, zooms.start), min(maxzoom, zooms.stop - 1) + 1):
        coords = [(t.x, t.y) for t in tms.tiles(*area, zooms=[z])]
        if tms_id == WEB_MERCATOR:
            coords.sort(key=lambda xy: zxy_to_tileid(z, xy[0], xy[1]))
        for x, y in coords:
            yield z, x, y


def render_tiles(
    engine: TileEngine,
    minzoom: int,
    maxzoom: int,
    bbox: Bounds | None = None,
    tms_id: str = WEB_MERCATOR,
    tileset_id: str = COMPOSITE,
    stats: ExportStats | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[int, int, int, bytes]]:
    """(z, x, y, mvt) of every non-empty tile, through the engine's cache, all from one release."""
    if minzoom > maxzoom:
        raise ConfigError(f"--minzoom {minzoom} is above --maxzoom {maxzoom}")
    stats = stats if stats is not None else ExportStats()
    ts = tileset(engine.store, tileset_id)
    tms = tile_matrix_sets()[tms_id]
    stats.release = engine.store.current_number()
    last_zoom = -1
    for z, x, y in tile_coords(ts, minzoom, maxzoom, bbox, tms_id):
        if progress is not None and z != last_zoom:
            progress(f"zoom {z}")
            last_zoom = z
        try:
            result = engine.tile(tileset_id, tms, Tile(x, y, z))
        except NotFound:
            continue  # outside the tileset's limits (a bbox wider than the data)
        if result.release != stats.release:
            raise StoreError(f"the store switched from release {stats.release} to {result.release} during the run; run it again")
        if not result.data:
            stats.empty += 1
            continue
        stats.tiles += 1
        stats.bytes += len(result.data)
        stats.largest = max(stats.largest, len(result.data))
        stats.per_zoom[z] = stats.per_zoom.get(z, 0) + 1
        yield z, x, y, result.data


def _metadata(engine: TileEngine, minzoom: int, maxzoom: int) -> dict[str, Any]:
    doc = tilejson(composite(engine.store), "", engine.store.current_number())
    return {
        "name": doc["name"],
        "description": doc["description"],
        "version": doc["version"],
        "attribution": "CIM base map",
        "type": "baselayer",
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": doc["bounds"],
        "center": doc["center"],
        "vector_layers": doc["vector_layers"],
    }


def _e7(value: float) -> int:
    return int(round(value * 10_000_000))


def export_pmtiles(engine: TileEngine, out: Path, maxzoom: int, minzoom: int = 0,
                   bbox: Bounds | None = None, progress: Progress | None = None) -> ExportStats:
    """Write the composite tileset to a PMTiles v3 archive at ``out``."""
    stats = ExportStats()
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as f:
        writer = Writer(f)
        for z, x, y, data in render_tiles(engine, minzoom, maxzoom, bbox, stats=stats, progress=progress):
            writer.write_tile(zxy_to_tileid(z, x, y), gzip.compress(data, mtime=0))
        if stats.tiles == 0:
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"no tile with features between zoom {minzoom} and {maxzoom}: nothing to export")
        meta = _metadata(engine, min(stats.per_zoom), max(stats.per_zoom))
        west, south, east, north = meta["bounds"]
        header = {
            "tile_type": TileType.MVT,
            "tile_compression": Compression.GZIP,
            "min_lon_e7": _e7(west), "min_lat_e7": _e7(south), "max_lon_e7": _e7(east), "max_lat_e7": _e7(north),
            "center_zoom": int(meta["center"][2]), "center_lon_e7": _e7(meta["center"][0]),
            "center_lat_e7": _e7(meta["center"][1]),
        }
        writer.finalize(header, meta)
    tmp.replace(out)
    return stats


def export_mbtiles(engine: TileEngine, out: Path, maxzoom: int, minzoom: int = 0,
                   bbox: Bounds | None = None, progress: Progress | None = None) -> ExportStats:
    """Write the composite tileset to an MBTiles 1.3 (SQLite) file at ``out``."""
    stats = ExportStats()
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    try:
        db.executescript(
            "CREATE TABLE metadata (name TEXT, value TEXT);"
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);"
            "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);"
        )
        rows = (
            (z, x, (1 << z) - 1 - y, gzip.compress(data, mtime=0))
            for z, x, y, data in render_tiles(engine, minzoom, maxzoom, bbox, stats=stats, progress=progress)
        )
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", rows)
        if stats.tiles == 0:
            raise ConfigError(f"no tile with features between zoom {minzoom} and {maxzoom}: nothing to export")
        meta = _metadata(engine, min(stats.per_zoom), max(stats.per_zoom))
        values = {
            "name": meta["name"], "description": meta["description"], "version": meta["version"],
            "attribution": meta["attribution"], "type": meta["type"], "format": "pbf",
            "minzoom": str(meta["minzoom"]), "maxzoom": str(meta["maxzoom"]),
            "bounds": ",".join(str(v) for v in meta["bounds"]),
            "center": ",".join(str(v) for v in meta["center"]),
            "json": json.dumps({"vector_layers": meta["vector_layers"]}),
        }
        db.executemany("INSERT INTO metadata VALUES (?, ?)", values.items())
        db.commit()
    except BaseException:
        db.close()
        tmp.unlink(missing_ok=True)
        raise
    db.close()
    tmp.replace(out)
    return stats
