"""Terrain of a release's DEM for CesiumJS: ``layer.json`` and quantized-mesh-1.0 tiles, cached.

A release's terrain is its ``elevation`` raster layer (tiles/terrain/sample.py ``elevation_layer``):
the layer's COG is sampled on a 257 × 257 grid over each tile of Cesium's geographic tiling
(tiles/terrain/tiling.py) with the same bilinear rule the 3D buildings stand on (``heights_at``),
nodata and everything outside the DEM taken as 0 m, meshed and encoded (tiles/terrain/quantized_mesh.py).
The mesh error is CesiumJS's geometric error of the tile's level (what CesiumJS assumes when it
picks a level), and :data:`FINE_ERROR` at the deepest level.

Tiles go through the vector tiles' cache (tiles/cache.py) under the tileset name
``terrain.<layer>`` (``terrain.<layer>.n`` with vertex normals), keyed and tagged by the release tag
of tiles/engine.py, so a tile of one release (or with normals) is never served for another.
A release without a DEM has no terrain: :meth:`TerrainEngine.dem_layer` is None and every request
a NotFound saying so.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio

from cim.errors import NotFound, StoreError
from cim.store import LayerInfo, Store
from tiles.cache import TileCache, TileKey
from tiles.engine import TileEngine
from tiles.terrain.quantized_mesh import encode_tile
from tiles.terrain.sample import elevation_layer, grid_heights
from tiles.terrain.tiling import GRID, TerrainTile, TileRange, availability, geometric_error, max_level, tiles_across

LOGGER = logging.getLogger(__name__)

#: the media type of a tile (quantized-mesh-1.0)
TERRAIN_MEDIA_TYPE = "application/vnd.quantized-mesh"
#: the extension the tiles can carry (asked for in ``Accept``)
EXTENSIONS = ("octvertexnormals",)
#: bump when sampling, meshing or encoding changes: part of every cache key and ETag
TERRAIN_ENGINE_VERSION = 1
#: the mesh error (m) at the deepest level, where CesiumJS stops asking for finer tiles
FINE_ERROR = 0.25
#: the tile matrix set part of the cache key
TILING = "CesiumGeodetic"
#: Web Mercator metres per degree of longitude
_MERCATOR_PER_DEGREE = 6378137.0 * np.pi / 180


@dataclass(frozen=True)
class Terrain:
    """A release's DEM as terrain."""

    layer: str
    release: int
    tag: str
    raster_path: str
    #: CRS84 extent of the DEM
    bbox: tuple[float, float, float, float]
    maxzoom: int
    available: tuple[tuple[TileRange, ...], ...]

    def is_available(self, tile: TerrainTile) -> bool:
        return tile.z <= self.maxzoom and any(r.contains(tile.x, tile.y) for r in self.available[tile.z])

    def max_error(self, z: int) -> float:
        return FINE_ERROR if z >= self.maxzoom else geometric_error(z)


@dataclass(frozen=True)
class TerrainResult:
    """A tile as served (``data`` = b"" when only its version was asked)."""

    data: bytes
    release: int
    etag: str
    normals: bool


class TerrainEngine:
    """Terrain of a store's releases; shares the cache and release tags of a :class:`TileEngine`."""

    def __init__(self, store: Store, cache: TileCache | None = None, tiles: TileEngine | None = None) -> None:
        self.store = store
        self.tiles = tiles if tiles is not None else TileEngine(store, cache)
        self.cache = cache if cache is not None else self.tiles.cache
        self._terrains: dict[tuple[str, str], Terrain] = {}
        self._lock = threading.Lock()

    # -- releases ------------------------------------------------------------------------------
    def _layers(self, release: int | None) -> tuple[int, list[LayerInfo]]:
        """The release's number and layers (the current release's when None; NotFound / ReleaseGone
        for a release not kept)."""
        if release is not None and release != self.store.current_number():
            return release, self.store.release_layers(release)
        for _ in range(3):
            number = self.store.current_number()
            layers = self.store.layers()
            if self.store.current_number() == number:
                break
        return number, layers

    def dem_layer(self, release: int | None = None) -> str | None:
        """The name of the release's DEM (its first ``elevation`` raster layer), None without one."""
        info = elevation_layer(self._layers(release)[1])
        return info.name if info is not None else None

    def terrain(self, layer: str, release: int | None = None) -> Terrain:
        """The terrain of collection ``layer`` in the release: NotFound when the release has no DEM or
        ``layer`` is not its elevation raster."""
        number, layers = self._layers(release)
        where = "the current release" if release is None else f"release {number}"
        first = elevation_layer(layers)
        if first is None:
            raise NotFound(f"{where} has no DEM (no elevation raster layer): there is no terrain to serve")
        dem = next((i for i in layers if i.name == layer and i.spec.kind == "raster" and i.spec.raster == "elevation"), None)
        if dem is None:
            kind = next((f"a {i.spec.kind} layer" if i.spec.kind != "raster" else f"a {i.spec.raster} raster"
                         for i in layers if i.name == layer), "not a collection")
            raise NotFound(
                f"collection {layer!r} of {where} is {kind}, not an elevation raster: terrain is served "
                f"from the DEM, /collections/{first.name}/terrain"
            )
        tag = self.tiles.release_tag(number)
        known = self._terrains.get((tag, layer))
        if known is not None:
            return known
        if dem.raster_path is None or dem.bbox is None:
            raise StoreError(f"the raster file of layer {layer!r} is missing")
        try:
            with rasterio.open(dem.raster_path) as src:
                pixel = abs(src.transform.a)
        except rasterio.errors.RasterioIOError as exc:
            raise StoreError(f"the raster file of layer {layer!r} cannot be read: {exc}") from None
        maxzoom = max_level(pixel, (dem.bbox[1] + dem.bbox[3]) / 2)
        terrain = Terrain(
            layer, number, tag, dem.raster_path, tuple(dem.bbox), maxzoom,  # type: ignore[arg-type]
            tuple(tuple(level) for level in availability(dem.bbox, maxzoom)),
        )
        with self._lock:
            self._terrains[(tag, layer)] = terrain
        return terrain

    # -- layer.json ----------------------------------------------------------------------------
    def layer_json(self, layer: str, release: int | None = None) -> dict[str, Any]:
        """The ``layer.json`` CesiumTerrainProvider reads: tile URLs relative to it, pinned to the release."""
        terrain = self.terrain(layer, release)
        return {
            "tilejson": "2.1.0",
            "name": layer,
            "description": f"Terrain of {layer} (release {terrain.release}): heights in metres above the WGS 84 "
                           "ellipsoid, 0 m where the DEM has no data",
            "version": "1.0.0",
            "release": terrain.release,
            "format": "quantized-mesh-1.0",
            "scheme": "tms",
            "projection": "EPSG:4326",
            "tiles": [f"{{z}}/{{x}}/{{y}}.terrain?v={{version}}&release={terrain.release}"],
            "bounds": list(terrain.bbox),
            "minzoom": 0,
            "maxzoom": terrain.maxzoom,
            "available": [[r.to_json() for r in level] for level in terrain.available],
            "extensions": list(EXTENSIONS),
            "attribution": "",
        }

    # -- tiles ---------------------------------------------------------------------------------
    def locate(self, layer: str, z: int, x: int, y: int, release: int | None = None) -> tuple[Terrain, TerrainTile]:
        """The terrain and the tile: NotFound for a tile outside the tiling or not available."""
        terrain = self.terrain(layer, release)
        if z > terrain.maxzoom:
            raise NotFound(f"terrain of {layer!r} has levels 0..{terrain.maxzoom} (layer.json maxzoom); not {z}")
        cols, rows = tiles_across(z)
        if not (0 <= x < cols and 0 <= y < rows):
            raise NotFound(f"level {z} of the terrain has columns 0..{cols - 1} and rows 0..{rows - 1}; not {x}/{y}")
        tile = TerrainTile(z, x, y)
        if not terrain.is_available(tile):
            raise NotFound(f"terrain tile {z}/{x}/{y} of {layer!r} is outside the DEM (layer.json 'available')")
        return terrain, tile

    def key(self, terrain: Terrain, tile: TerrainTile, normals: bool) -> TileKey:
        name = f"terrain.{terrain.layer}" + (".n" if normals else "")
        return (f"{terrain.tag}.q{TERRAIN_ENGINE_VERSION}", name, TILING, tile.z, tile.y, tile.x)

    def version(self, layer: str, z: int, x: int, y: int, release: int | None = None, normals: bool = False) -> TerrainResult:
        """The tile's ETag without rendering it (for If-None-Match)."""
        terrain, tile = self.locate(layer, z, x, y, release)
        return TerrainResult(b"", terrain.release, self.tiles.etag(self.key(terrain, tile, normals)), normals)

    def tile(self, layer: str, z: int, x: int, y: int, release: int | None = None, normals: bool = False) -> TerrainResult:
        """The tile from the cache, else rendered from the release's DEM and cached."""
        terrain, tile = self.locate(layer, z, x, y, release)
        key = self.key(terrain, tile, normals)
        data = self.cache.get(key)
        if data is None:
            data = self.render(terrain, tile, normals)
            self.cache.put(key, data)
        return TerrainResult(data, terrain.release, self.tiles.etag(key), normals)

    def heights(self, terrain: Terrain, tile: TerrainTile) -> np.ndarray:
        """The tile's GRID × GRID heights (row 0 north), 0 m outside the DEM and at nodata."""
        west, south, east, north = tile.bounds()
        bw, bs, be, bn = terrain.bbox
        if bw > east or be < west or bs > north or bn < south:
            return np.zeros((GRID, GRID))
        lon = np.linspace(west, east, GRID)
        lat = np.linspace(north, south, GRID)
        spacing = (east - west) / (GRID - 1) * _MERCATOR_PER_DEGREE
        return np.nan_to_num(grid_heights(terrain.raster_path, lon, lat, spacing), nan=0.0)

    def render(self, terrain: Terrain, tile: TerrainTile, normals: bool = False) -> bytes:
        """Encode the tile without the cache."""
        started = time.perf_counter()
        data, vertices = encode_tile(self.heights(terrain, tile), tile.bounds(), terrain.max_error(tile.z), normals)
        LOGGER.debug(
            "terrain tile %s %d/%d/%d: %d vertices, %d bytes in %.1f ms", terrain.layer, tile.z, tile.x, tile.y,
            vertices, len(data), (time.perf_counter() - started) * 1000,
        )
        return data
