"""Map tilesets: one per raster collection (``/collections/{id}/map/tiles``), rendered from the
layer's Cloud-Optimised GeoTIFF by :mod:`tiles.raster_render`.

A raster layer's tileset has *styles* — what a tile shows — and, per style, the *formats* it is
encoded in:

| role (``LayerSpec.raster``) | style (``?style=``) | formats (``?f=`` or ``Accept``) |
|---|---|---|
| elevation | ``hillshade`` (default) | png, jpeg, webp |
| elevation | ``terrain-rgb`` (Mapbox), ``terrarium`` | png (lossless, needed to decode heights) |
| image | ``default`` | png (default), jpeg, webp |

Tiles are served from the layer's ``minzoom`` to its ``maxzoom`` (catalog levels in
WebMercatorQuad; the other tile matrix sets at the matching scale); clients overzoom past it.
"""

from __future__ import annotations

from dataclasses import dataclass

from morecantile import TileMatrixSet

from cim.errors import InvalidQuery, NotFound
from cim.store import Bounds, LayerInfo, Store
from cim.tms import zoom_from_web_mercator
from tiles.raster_render import HILLSHADE, IMAGE, TERRAIN_RGB, TERRARIUM

#: format name (``f=``) → (GDAL driver, media type)
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
ALIASES = {"jpg": "jpeg"}
MEDIA_TYPES = {media: name for name, (_, media) in FORMATS.items()}

_STYLES: dict[str, dict[str, tuple[str, ...]]] = {
    "elevation": {HILLSHADE: ("png", "jpeg", "webp"), TERRAIN_RGB: ("png",), TERRARIUM: ("png",)},
    "image": {IMAGE: ("png", "jpeg", "webp")},
}
STYLE_TITLES = {
    HILLSHADE: "Hillshade (grey, sun from the north-west)",
    TERRAIN_RGB: "Terrain-RGB heights (Mapbox encoding, 0.1 m)",
    TERRARIUM: "Terrarium heights (1/256 m)",
    IMAGE: "The image",
}
#: MapLibre ``raster-dem`` encoding of the elevation styles
DEM_ENCODING = {TERRAIN_RGB: "mapbox", TERRARIUM: "terrarium"}


@dataclass(frozen=True)
class MapTileset:
    """The map tileset of one raster layer."""

    info: LayerInfo

    @property
    def id(self) -> str:
        return self.info.name

    @property
    def title(self) -> str:
        return self.info.spec.title

    @property
    def styles(self) -> dict[str, tuple[str, ...]]:
        """Style → formats, the default style first (its first format is the default format)."""
        return _STYLES[self.info.spec.raster or "image"]

    @property
    def default_style(self) -> str:
        return next(iter(self.styles))

    @property
    def bbox(self) -> Bounds | None:
        return self.info.bbox

    def style(self, name: str | None) -> str:
        """The style asked for (default when None); InvalidQuery (400) for any other."""
        if name is None:
            return self.default_style
        if name not in self.styles:
            raise InvalidQuery(f"collection {self.id!r} has no style {name!r} (styles: {', '.join(self.styles)})")
        return name

    def format(self, style: str, requested: str | None, accept: str | None) -> str:
        """The format of a tile: ``f=`` (400 when the style has no such format), else the best
        the ``Accept`` header allows, else the style's default."""
        offered = self.styles[style]
        if requested is not None:
            name = ALIASES.get(requested.lower(), requested.lower())
            if name not in offered:
                raise InvalidQuery(
                    f"unsupported format f={requested!r} for style {style!r} of {self.id!r} (formats: {', '.join(offered)})"
                )
            return name
        return negotiate(accept, offered)

    def key(self, style: str, fmt: str) -> str:
        """Name in cache keys: never shared with a vector tileset."""
        return f"map.{self.id}.{style}.{fmt}"

    def zooms(self, tms: TileMatrixSet) -> range:
        spec = self.info.spec
        return range(zoom_from_web_mercator(tms, spec.minzoom), zoom_from_web_mercator(tms, spec.maxzoom) + 1)


def negotiate(accept: str | None, offered: tuple[str, ...]) -> str:
    """The offered format the ``Accept`` header ranks highest (ties: the order offered); the first
    offered when the header names none of them (or is absent)."""
    best, best_q = offered[0], 0.0
    for position, part in enumerate((accept or "").split(",")):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        name = MEDIA_TYPES.get(media.strip().lower())
        if name in offered and (q > best_q or (q == best_q and offered.index(name) < offered.index(best))):
            best, best_q = name, q
    return best


def raster_layers(store: Store) -> list[LayerInfo]:
    """The current release's raster layers that have a COG, in drawing order."""
    layers = [info for info in store.layers() if info.spec.kind == "raster" and info.raster_path]
    return sorted(layers, key=lambda info: info.spec.order)


def map_tileset(store: Store, collection_id: str) -> MapTileset:
    """The map tileset of a raster collection; NotFound (404) for any other collection."""
    for info in raster_layers(store):
        if info.name == collection_id:
            return MapTileset(info)
    raise NotFound(f"no map tileset for collection {collection_id!r} (raster collections only)")
