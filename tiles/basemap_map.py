"""Map tiles (PNG) of the composite base map, drawn from its vector tiles (tiles/basemap_draw.py).

A map tile is made from the composite vector tile of the same tile matrix set and tile, as the vector
engine serves it (``TileEngine.tile``: its generalisation, byte ceiling and cache), so the two never
disagree. Its cache key is ``(release tag + .b<version>, map.basemap.png.<hash of the vector tile's
ETag>, tms id, z, row, col)``: a new release, an edit of an editable layer or the live warnings
layer (which change the vector tile's ETag) make a new map tile; its ETag derives from that key.

Tiles exist from the composite's lowest zoom to its deepest layer ``maxzoom`` (clients overzoom
past it) within the composite's extent (tileMatrixSetLimits); a tile with nothing drawn is ``b""``
(the route answers 204).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from morecantile import Tile, TileMatrixSet
from rio_tiler.utils import render

from cim.tms import check_tile, web_mercator_zoom
from tiles.basemap_draw import draw_basemap
from tiles.cache import TileKey
from tiles.engine import TileEngine, TileResult, TileVersion
from tiles.map_engine import check_served
from tiles.raster_render import CREATION
from tiles.tilesets import COMPOSITE, Tileset, composite

LOGGER = logging.getLogger(__name__)

#: bump when drawing changes: part of every basemap map tile's cache key and ETag
BASEMAP_MAP_VERSION = 1
PNG_MEDIA_TYPE = "image/png"


def zooms(ts: Tileset, tms: TileMatrixSet) -> range:
    """Tile matrices with map tiles: the composite's lowest zoom to its deepest layer ``maxzoom``."""
    start = ts.zooms(tms).start
    return range(start, max(start, ts.maxzoom(tms)) + 1)


@dataclass(frozen=True)
class BasemapTile:
    """A checked map tile request of the composite."""

    tileset: Tileset
    tms: TileMatrixSet
    tile: Tile


class BasemapMapEngine:
    """Draws and caches the composite's map tiles; shares ``tiles``' cache and release tags."""

    def __init__(self, tiles: TileEngine) -> None:
        self.tiles = tiles
        self.store = tiles.store

    def locate(self, tms: TileMatrixSet, tile: Tile) -> BasemapTile:
        """404 for tiles outside the tile matrix set, the map tileset's zooms or its limits."""
        tile = check_tile(tms, tile)
        ts = composite(self.store)
        check_served(tms, tile, zooms(ts, tms), ts.bbox, "the base map's map tiles")
        return BasemapTile(ts, tms, tile)

    @staticmethod
    def key(request: BasemapTile, tag: str, vector_etag: str) -> TileKey:
        digest = hashlib.blake2b(vector_etag.encode(), digest_size=8).hexdigest()
        tile = request.tile
        return (f"{tag}.b{BASEMAP_MAP_VERSION}", f"map.{COMPOSITE}.png.{digest}", request.tms.id, tile.z, tile.y, tile.x)

    def version(self, request: BasemapTile) -> TileVersion:
        """The version the map tile has now (for If-None-Match), without drawing."""
        vector = self.tiles.version(COMPOSITE, request.tms, request.tile)
        tag = self.tiles.release_tag(vector.release)
        return TileVersion(vector.release, self.tiles.etag(self.key(request, tag, vector.etag)),
                           vector.mutable, vector.generation)

    def tile(self, request: BasemapTile) -> TileResult:
        """The PNG from the cache, else drawn from the composite vector tile and cached."""
        vector = self.tiles.tile(COMPOSITE, request.tms, request.tile)
        key = self.key(request, vector.tag, vector.etag)
        data = self.tiles.cache.get(key)
        if data is None:
            data = self.render(request, vector.data)
            self.tiles.cache.put(key, data)
        return TileResult(data, vector.release, vector.tag, self.tiles.etag(key), vector.mutable, vector.generation)

    def render(self, request: BasemapTile, mvt: bytes) -> bytes:
        """The PNG of ``mvt`` without the cache (b"" when nothing is drawn)."""
        started = time.perf_counter()
        matrix = request.tms.matrix(request.tile.z)
        image = draw_basemap(mvt, request.tileset.layers, _web_zoom(request), size=matrix.tileWidth)
        data = b"" if image is None else render(image[:3], mask=image[3], img_format="PNG", **CREATION["PNG"])
        tile = request.tile
        LOGGER.debug("basemap map tile %s/%d/%d/%d: %d bytes in %.1f ms", request.tms.id, tile.z, tile.y, tile.x,
                     len(data), (time.perf_counter() - started) * 1000)
        return data


def _web_zoom(request: BasemapTile) -> int:
    """The WebMercatorQuad zoom of the tile's scale (line widths, dots are by that zoom)."""
    return int(round(web_mercator_zoom(request.tms, request.tile.z)))
