"""Tilesets: the composite base map (``/tiles``) and one tileset per vector collection.

Both are built from the layers of the store's current release (their ``LayerSpec`` as the release
recorded it: zoom range, tile attributes, colour, order), so a tileset always matches the data it
is cut from.

- The **composite** (id :data:`COMPOSITE`) carries every vector layer, each only within its zoom
  range ``minzoom..maxzoom`` (WebMercatorQuad levels; other tile matrix sets at the matching scale) and with
  only its ``tile_attributes``; layers are drawn in ``order``.
- A **collection tileset** carries its one layer at every zoom of the tile matrix set (generalised like all
  tiles); the catalog's zoom range is advertised as the layer's recommended display range.
"""

from __future__ import annotations

from dataclasses import dataclass

from morecantile import TileMatrixSet

from cim.errors import NotFound
from cim.store import Bounds, LayerInfo, Store, TileLayerQuery
from cim.tms import web_mercator_zoom, zoom_from_web_mercator

#: id of the dataset-level composite tileset (used in cache keys, exports and TileJSON names)
COMPOSITE = "basemap"


@dataclass(frozen=True)
class Tileset:
    """A vector tileset: which layers, and whether each is limited to its catalog zoom range."""

    id: str
    title: str
    description: str
    layers: tuple[LayerInfo, ...]
    composite: bool

    def layers_at(self, tms: TileMatrixSet, z: int) -> tuple[TileLayerQuery, ...]:
        """The tile layers at tile matrix ``z`` of ``tms`` (composite: only layers in range)."""
        web_zoom = web_mercator_zoom(tms, z)
        return tuple(
            TileLayerQuery(info.name, info.spec.tile_attributes)
            for info in self.layers
            if not self.composite or info.spec.minzoom <= web_zoom <= info.spec.maxzoom
        )

    def zoom_range(self, tms: TileMatrixSet, info: LayerInfo) -> tuple[int, int]:
        """The catalog zoom range of ``info`` as tile matrices of ``tms``."""
        return zoom_from_web_mercator(tms, info.spec.minzoom), zoom_from_web_mercator(tms, info.spec.maxzoom)

    @property
    def editable(self) -> bool:
        """Whether a layer of the tileset changes within a release: it takes edits, or it is a live
        layer (warnings: written at run time, and its tiles show what is in force now). Its tiles
        are then keyed by the store's edit generation too (``Store.edit_generation``)."""
        return any(info.spec.editable or info.spec.live for info in self.layers)

    @property
    def key(self) -> str:
        """Name in cache keys and paths: the composite and a collection never share one."""
        return self.id if self.composite else f"collections.{self.id}"

    @property
    def bbox(self) -> Bounds | None:
        """Union of the layers' extents in CRS84; None when every layer is empty."""
        boxes = [info.bbox for info in self.layers if info.bbox is not None]
        if not boxes:
            return None
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    def zooms(self, tms: TileMatrixSet) -> range:
        """Tile matrices with tiles: the whole tile matrix set for a collection; for the composite from the
        lowest layer's ``minzoom`` on (deeper than every ``maxzoom`` is still served, overzoomed)."""
        if not self.composite or not self.layers:
            return range(tms.minzoom, tms.maxzoom + 1)
        return range(min(zoom_from_web_mercator(tms, info.spec.minzoom) for info in self.layers), tms.maxzoom + 1)

    def maxzoom(self, tms: TileMatrixSet) -> int:
        """The deepest tile matrix any layer asks for (clients overzoom past it)."""
        return max((zoom_from_web_mercator(tms, info.spec.maxzoom) for info in self.layers), default=tms.maxzoom)


def vector_layers(store: Store) -> list[LayerInfo]:
    """The current release's vector layers in drawing order (``order``, then release order)."""
    layers = [info for info in store.layers() if info.spec.kind == "vector" and info.spec.geometry_type]
    return sorted(layers, key=lambda info: info.spec.order)


def composite(store: Store) -> Tileset:
    return Tileset(
        id=COMPOSITE,
        title="CIM base map",
        description="All base-map vector layers, each within its zoom range, generalised per zoom.",
        layers=tuple(vector_layers(store)),
        composite=True,
    )


def collection(store: Store, collection_id: str) -> Tileset:
    """The tileset of one vector collection; NotFound (404) for unknown or raster collections."""
    for info in vector_layers(store):
        if info.name == collection_id:
            return Tileset(
                id=info.name,
                title=info.spec.title,
                description=info.spec.description,
                layers=(info,),
                composite=False,
            )
    raise NotFound(f"no vector tileset for collection {collection_id!r}")


def tileset(store: Store, tileset_id: str) -> Tileset:
    """The composite for :data:`COMPOSITE`, else the collection tileset of that id."""
    return composite(store) if tileset_id == COMPOSITE else collection(store, tileset_id)
