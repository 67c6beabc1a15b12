"""Helpers for the tile tests: decoding MVT and walking coordinates."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import mapbox_vector_tile
import morecantile

from cim.tms import tile_matrix_sets

#: central Helsinki, inside the demo's Helsinki extract
HELSINKI = (24.9410, 60.1690)
EXTENT = 4096
BUFFER = 64


def decode(data: bytes) -> dict[str, Any]:
    """Layers of an MVT in tile coordinates (y down, as encoded)."""
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def tile_at(tms_id: str, z: int, lon: float = HELSINKI[0], lat: float = HELSINKI[1]) -> morecantile.Tile:
    return tile_matrix_sets()[tms_id].tile(lon, lat, z)


def tile_path(prefix: str, tms_id: str, tile: morecantile.Tile) -> str:
    """``{prefix}/{tms}/{tileMatrix}/{tileRow}/{tileCol}`` (OGC order: row = y, column = x)."""
    return f"{prefix}/{tms_id}/{tile.z}/{tile.y}/{tile.x}"


def coordinates(geometry: Any) -> Iterator[tuple[float, float]]:
    """Every (x, y) of a decoded geometry's nested coordinate lists."""
    coords = geometry["coordinates"] if isinstance(geometry, dict) else geometry
    if coords and isinstance(coords[0], (int, float)):
        yield coords[0], coords[1]
        return
    for part in coords:
        yield from coordinates(part)


def counts(layers: dict[str, Any]) -> dict[str, int]:
    return {name: len(layer["features"]) for name, layer in layers.items()}


def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """``check()`` once true, or its last value after ``timeout``: PostGIS readers trust the current
    release for up to a second (CURRENT_TTL)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
