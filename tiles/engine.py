"""The tile engine: from (tileset, tile matrix set, tile) to MVT bytes, through the cache.

The store encodes (``Store.render_tile``: SQL with ST_AsMVT/ST_AsMVTGeom); this module decides
what goes into a tile (tilesets), where it lies (tile matrix sets), the generalisation parameters, the byte
ceiling, and caching by release — and, for tilesets with an editable layer, by the store's edit
generation (``Store.edit_generation``, asked per request; the stores answer it cheaply), since
edits change their tiles.

Byte ceiling: a tile is first rendered with a budget of :data:`MAX_FEATURES` features per layer; if
it is still larger than :data:`MAX_TILE_BYTES`, the budget is halved (smallest features go first, see
cim/store/sql/tiles.py) and the tile rendered again, until it fits.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from morecantile import Tile, TileMatrixSet

from cim.errors import NotFound
from cim.store import MAX_FEATURES, RenderedTile, Store, TileQuery
from cim.tms import TILE_SRID, check_tile, lonlat_bounds, storage_bounds, tile_bounds, within_limits
from tiles.cache import DISK_BYTES, DiskCache, TileCache, TileKey, memory_budget
from tiles.tilesets import Tileset, tileset

LOGGER = logging.getLogger(__name__)

#: no tile is served larger than this (the issue's bar: 500 KB)
MAX_TILE_BYTES = 500_000
#: bump when the generalisation or encoding changes: it is part of every cache key and ETag
ENGINE_VERSION = 3
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: share of the tile size searched around a tile for a layer's extent (covers the 64/4096 buffer)
BUFFER_SHARE = 0.05


@dataclass(frozen=True)
class TileResult:
    """A tile as served: bytes (b"" = empty), the release tag it belongs to and its ETag;
    ``mutable`` when its tileset has an editable layer (the tile changes with edits too, not only
    with the next release)."""

    data: bytes
    release: int
    tag: str
    etag: str
    mutable: bool = False
    #: the store's edit generation the tile is keyed by (0 for tiles that are not ``mutable``)
    generation: int = 0


@dataclass(frozen=True)
class TileVersion:
    """The version a tile has now: its release, ETag, whether it is ``mutable`` and the edit
    generation it is keyed by (as above)."""

    release: int
    etag: str
    mutable: bool
    generation: int = 0


def default_cache(store: Store) -> TileCache:
    """Memory cache, plus a disk cache: ``$CIM_TILE_CACHE`` if set (``off`` = none), else for the
    embedded store ``<store>.d/tiles``; PostGIS without ``$CIM_TILE_CACHE`` caches in memory only.
    ``$CIM_TILE_CACHE_MB`` bounds the disk cache (default 2048), ``$CIM_TILE_MEMORY_MB`` the memory
    (default 128; with ``CIM_TILE_CACHE=off`` and ``CIM_TILE_MEMORY_MB=0`` every tile is rendered)."""
    configured = os.environ.get("CIM_TILE_CACHE")
    max_bytes = int(float(os.environ.get("CIM_TILE_CACHE_MB", DISK_BYTES / 2**20)) * 2**20)
    memory = memory_budget()
    if configured == "off":
        return TileCache(memory)
    if configured:
        return TileCache(memory, DiskCache(Path(configured), max_bytes))
    folder = store.tile_cache_dir()
    if folder is not None:
        return TileCache(memory, DiskCache(folder, max_bytes))
    return TileCache(memory)


class TileEngine:
    """Renders and caches the tiles of a store's current release."""

    def __init__(
        self,
        store: Store,
        cache: TileCache | None = None,
        max_features: int = MAX_FEATURES,
        max_bytes: int = MAX_TILE_BYTES,
    ) -> None:
        self.store = store
        self.cache = cache if cache is not None else default_cache(store)
        self.max_features = max_features
        self.max_bytes = max_bytes
        self._tags: dict[int, str] = {}
        self._lock = threading.Lock()

    # -- releases ------------------------------------------------------------------------------
    def release_tag(self, number: int) -> str:
        """``r0003-20250101T120000123456``: the release number and its creation time."""
        tag = self._tags.get(number)
        if tag is None:
            created = next((r.created for r in self.store.releases() if r.number == number), None)
            stamp = created.strftime("%Y%m%dT%H%M%S%f") if created is not None else "unknown"
            tag = f"r{number:04d}-{stamp}"
            with self._lock:
                self._tags[number] = tag
        return tag

    def current_tag(self) -> tuple[int, str]:
        number = self.store.current_number()
        return number, self.release_tag(number)

    # -- tiles ---------------------------------------------------------------------------------
    @staticmethod
    def key(tag: str, ts: Tileset, tms: TileMatrixSet, tile: Tile, generation: int = 0, prepared: int = 0) -> TileKey:
        """The cache key; ``generation``: the store's edit generation, for tilesets with an editable
        layer (0, before any edit, keeps the key of the release as built); ``prepared``: the
        store's tile geometry version (``Store.tile_geometry_version``: tiles rendered from prepared
        geometry may differ by a pixel from those rendered before it was ready)."""
        version = f"{tag}.v{ENGINE_VERSION}" + (f".g{int(prepared)}" if prepared else "")
        version += f".e{int(generation)}" if generation else ""
        return (version, ts.key, tms.id, tile.z, tile.y, tile.x)

    @staticmethod
    def etag(key: TileKey) -> str:
        digest = hashlib.blake2b("/".join(map(str, key)).encode(), digest_size=10).hexdigest()
        return f'"{key[0]}-{digest}"'

    def generation(self, ts: Tileset) -> int:
        """The edit generation a tileset's tiles are keyed by: read from the store (edits of any
        process count) for a tileset with an editable layer; 0, without a read, for the others."""
        return self.store.edit_generation() if ts.editable else 0

    def locate(self, tileset_id: str, tms: TileMatrixSet, tile: Tile) -> tuple[Tileset, Tile]:
        """Check a tile request: NotFound (404) for unknown tilesets or tiles outside the tile
        matrix set or the tileset's limits."""
        tile = check_tile(tms, tile)
        ts = tileset(self.store, tileset_id)
        bbox = ts.bbox
        if tile.z not in ts.zooms(tms) or bbox is None or not within_limits(tms, bbox, tile):
            raise NotFound(
                f"tile {tile.z}/{tile.y}/{tile.x} of {tms.id} is outside the limits of tileset {ts.id!r} "
                "(tileMatrixSetLimits in its metadata)"
            )
        return ts, tile

    def version(self, tileset_id: str, tms: TileMatrixSet, tile: Tile) -> TileVersion:
        """The version the tile has now (answers If-None-Match without rendering)."""
        ts, tile = self.locate(tileset_id, tms, tile)
        number, tag = self.current_tag()
        generation = self.generation(ts)
        key = self.key(tag, ts, tms, tile, generation, self.store.tile_geometry_version())
        return TileVersion(number, self.etag(key), ts.editable, generation)

    def tile(self, tileset_id: str, tms: TileMatrixSet, tile: Tile) -> TileResult:
        """The tile from the cache, else rendered (and cached under the release it was read from).

        The edit generation is read before rendering, so a tile is never older than its key: an edit
        committed in between is in the tile already (cached under the older key, which later requests
        no longer ask for)."""
        ts, tile = self.locate(tileset_id, tms, tile)
        number, tag = self.current_tag()
        generation = self.generation(ts)
        prepared = self.store.tile_geometry_version()
        key = self.key(tag, ts, tms, tile, generation, prepared)
        data = self.cache.get(key)
        if data is not None:
            return TileResult(data, number, tag, self.etag(key), ts.editable, generation)
        rendered = self.render(ts, tms, tile)
        if rendered.release != number:  # a release switch happened in between
            number, tag = rendered.release, self.release_tag(rendered.release)
            key = self.key(tag, ts, tms, tile, generation, self.store.tile_geometry_version())
        self.cache.put(key, rendered.data)
        return TileResult(rendered.data, number, tag, self.etag(key), ts.editable, generation)

    def query(self, ts: Tileset, tms: TileMatrixSet, tile: Tile) -> TileQuery | None:
        """The store query for a tile; None when no layer of the tileset is shown at this zoom."""
        west, south, east, north = lonlat_bounds(tms, tile)  # CRS84
        pad_x, pad_y = (east - west) * BUFFER_SHARE, (north - south) * BUFFER_SHARE
        # the release's extents; editable layers are always asked (an edit may add a feature outside)
        near = {
            info.name
            for info in ts.layers
            if info.spec.editable
            or info.spec.live  # the live layer's extent changes with every write
            or (
                info.bbox is not None
                and info.bbox[0] <= east + pad_x and info.bbox[2] >= west - pad_x
                and info.bbox[1] <= north + pad_y and info.bbox[3] >= south - pad_y
            )
        }
        layers = tuple(layer for layer in ts.layers_at(tms, tile.z) if layer.layer in near)
        if not layers:
            return None  # no layer shown at this zoom has data near this tile: empty, without a query
        srids = {info.srid for info in ts.layers}
        matrix = tms.matrix(tile.z)
        return TileQuery(
            layers=layers,
            bounds=tile_bounds(tms, tile),
            srid=TILE_SRID[tms.id],
            storage_bounds={srid: storage_bounds(tms, tile, srid) for srid in srids},
            tile_size=matrix.tileWidth,
            max_features=self.max_features,
            tms_id=tms.id,
            zoom=tile.z,
        )

    def render(self, ts: Tileset, tms: TileMatrixSet, tile: Tile) -> RenderedTile:
        """Render without the cache, halving the feature budget until the tile fits ``max_bytes``."""
        query = self.query(ts, tms, tile)
        if query is None:
            return RenderedTile(self.store.current_number(), b"")
        rendered = self.store.render_tile(query)
        while len(rendered.data) > self.max_bytes and query.max_features > 1:
            query = replace(query, max_features=query.max_features // 2)
            LOGGER.info(
                "tile %s %s/%d/%d/%d: %d bytes; budget down to %d features per layer",
                ts.key, tms.id, tile.z, tile.y, tile.x, len(rendered.data), query.max_features,
            )
            rendered = self.store.render_tile(query)
        return rendered
