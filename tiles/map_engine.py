"""Map tiles of raster collections through the same cache, release tags and ETags as vector tiles.

The cache key is ``(release tag + map engine version, map.<layer>.<style>.<format>, tms id, z, row,
col)``: a tile of one release, style or format is never served for another. Rendering reads the
COG of the release the tag names (``LayerInfo.raster_path``), so a release switch while a tile is
rendered cannot mix releases.

CGCS2000Quad tiles are rendered on WorldCRS84Quad: the two tile matrix sets have the same tile
matrices and CGCS2000 and WGS84 coordinates agree to centimetres (as for vector tiles, see
``cim.tms.storage_bounds``), and GDAL's EPSG:4490 → 3857 warp costs about five times more.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from morecantile import Tile, TileMatrixSet

from cim.errors import NotFound, StoreError
from cim.tms import CGCS2000_QUAD, CRS84_QUAD, check_tile, tile_matrix_sets, within_limits
from tiles.cache import TileKey
from tiles.engine import TileEngine, TileResult
from tiles.map_tilesets import FORMATS, MapTileset, map_tileset
from tiles.raster_render import MapRequest, render_map_tile

LOGGER = logging.getLogger(__name__)

#: bump when rendering changes: part of every map tile's cache key and ETag
MAP_ENGINE_VERSION = 3


@dataclass(frozen=True)
class MapTile:
    """A checked map tile request."""

    tileset: MapTileset
    tms: TileMatrixSet
    tile: Tile
    style: str
    fmt: str

    @property
    def media_type(self) -> str:
        return FORMATS[self.fmt][1]


def check_served(
    tms: TileMatrixSet, tile: Tile, zooms: range, bbox: tuple[float, float, float, float] | None, what: str
) -> None:
    """404 for a map tile outside the zoom range or the limits of a map tileset (``what`` names it)."""
    if tile.z not in zooms:
        raise NotFound(
            f"tile matrix {tile.z} is outside the zoom range {zooms.start}..{zooms.stop - 1} of {what} in "
            f"{tms.id} (clients overzoom the deepest one)"
        )
    if bbox is None or not within_limits(tms, bbox, tile):
        raise NotFound(
            f"tile {tile.z}/{tile.y}/{tile.x} of {tms.id} is outside the limits of {what} "
            "(tileMatrixSetLimits in the tileset's metadata)"
        )


class MapTileEngine:
    """Renders and caches the map tiles of a store's raster layers; shares ``tiles``' cache."""

    def __init__(self, tiles: TileEngine) -> None:
        self.tiles = tiles
        self.store = tiles.store

    def locate(
        self, collection_id: str, tms: TileMatrixSet, tile: Tile,
        style: str | None = None, fmt: str | None = None, accept: str | None = None,
    ) -> MapTile:
        """Check a request: 404 for unknown collections, tiles outside the tile matrix set or the
        tileset's zoom range and limits; 400 for a style or format the collection does not have."""
        tile = check_tile(tms, tile)
        ts = map_tileset(self.store, collection_id)
        chosen = ts.style(style)
        encoding = ts.format(chosen, fmt, accept)
        check_served(tms, tile, ts.zooms(tms), ts.bbox, f"map tileset {ts.id!r}")
        return MapTile(ts, tms, tile, chosen, encoding)

    def key(self, tag: str, request: MapTile) -> TileKey:
        tile = request.tile
        return (f"{tag}.m{MAP_ENGINE_VERSION}", request.tileset.key(request.style, request.fmt), request.tms.id, tile.z, tile.y, tile.x)

    def etag_now(self, request: MapTile) -> str:
        _, tag = self.tiles.current_tag()
        return self.tiles.etag(self.key(tag, request))

    def tile(self, request: MapTile) -> TileResult:
        """The tile from the cache, else rendered from the current release's COG and cached."""
        for _ in range(3):
            number, tag = self.tiles.current_tag()
            ts = map_tileset(self.store, request.tileset.id)  # the layer as the current release has it
            if self.store.current_number() == number:
                break
        key = self.key(tag, request)
        data = self.tiles.cache.get(key)
        if data is None:
            data = self.render(ts, request)
            self.tiles.cache.put(key, data)
        return TileResult(data, number, tag, self.tiles.etag(key))

    def render(self, ts: MapTileset, request: MapTile) -> bytes:
        """Encode the tile without the cache (b"" when it holds no valid pixel)."""
        path = ts.info.raster_path
        if path is None or not Path(path).is_file():
            raise StoreError(f"the raster file of layer {ts.id!r} is missing: {path}")
        tms = tile_matrix_sets()[CRS84_QUAD] if request.tms.id == CGCS2000_QUAD else request.tms
        started = time.perf_counter()
        data = render_map_tile(MapRequest(path, tms, request.tile, request.style, FORMATS[request.fmt][0]))
        LOGGER.debug(
            "map tile %s %s %s/%d/%d/%d: %d bytes in %.1f ms", ts.id, request.style, request.tms.id,
            request.tile.z, request.tile.y, request.tile.x, len(data), (time.perf_counter() - started) * 1000,
        )
        return data
