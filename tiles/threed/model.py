"""What the parts of the 3D Tiles service share (tiles/threed/__init__.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

#: the media type tileset.json is linked with (OGC API – 3D GeoVolumes, 3D Tiles requirements class)
TILESET_LINK_TYPE = "application/3dtiles+json"
#: the media type tileset.json is served with (every 3D Tiles client reads it as JSON)
TILESET_MEDIA_TYPE = "application/json"
#: the media type of a tile's content
GLB_MEDIA_TYPE = "model/gltf-binary"
#: the link relation from a collection to its 3D Tiles tileset ([ogc-rel:3d-geovolumes])
REL_3D_GEOVOLUMES = "http://www.opengis.net/def/rel/ogc/1.0/3d-geovolumes"
#: OGC API – 3D GeoVolumes (draft 22-029) conformance classes this server declares
CONF_GEOVOLUMES = (
    "https://www.opengis.net/spec/ogcapi-geovolumes-1/1.0/conf/core",
    "https://www.opengis.net/spec/ogcapi-geovolumes-1/1.0/conf/3d-tiles",
)
#: CRS of 3D bounding boxes (longitude, latitude, ellipsoidal height)
CRS84H = "http://www.opengis.net/def/crs/OGC/0/CRS84h"
#: the EXT_structural_metadata class of a building and its properties, in order: name → glTF
#: metadata type (componentType for SCALAR). ``fid`` is the Features API item id, ``height`` the
#: extruded height (cim/heights.py), ``height_source`` where it came from, ``base`` the terrain
#: height the block stands on (0 without a DEM)
METADATA_CLASS = "building"
PROPERTIES: dict[str, str] = {
    "fid": "INT64",
    "name": "STRING",
    "use": "STRING",
    "height_m": "FLOAT64",
    "floors": "INT32",
    "height": "FLOAT32",
    "height_source": "STRING",
    "base": "FLOAT32",
}


@dataclass(frozen=True)
class Mesh:
    """Triangles of the LOD1 blocks of one tile, in ECEF axes (z up), relative to ``origin``."""

    #: float32 (n, 3): ECEF position minus ``origin``, metres
    positions: npt.NDArray[np.float32]
    #: float32 (n, 3): unit normals (flat: each wall and roof has its own vertices)
    normals: npt.NDArray[np.float32]
    #: uint32 (n,): the row of the vertex's building in the tile's property table
    feature_ids: npt.NDArray[np.uint32]
    #: uint32 (3 m,): counter-clockwise triangles seen from outside
    indices: npt.NDArray[np.uint32]
    #: float64 (3,): the ECEF origin (the tile's transform translates by it)
    origin: npt.NDArray[np.float64]


@dataclass(frozen=True)
class SceneTile:
    """One tile of the tileset's quadtree; a leaf holds content (the buildings whose centroid lies
    in its cell), an inner tile only children."""

    level: int
    x: int
    y: int
    #: (west, south, east, north) radians, (minimum, maximum) height metres: the 3D Tiles region
    #: holding every block of the tile and its descendants
    region: tuple[float, float, float, float, float, float]
    geometric_error: float
    #: fids of the buildings in this tile's content (sorted; empty for an inner tile)
    fids: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    #: the footprints' bounding box in storage CRS (for the store's bbox query)
    bbox: tuple[float, float, float, float] | None = None
    children: tuple[SceneTile, ...] = ()

    @property
    def has_content(self) -> bool:
        return len(self.fids) > 0


@dataclass(frozen=True)
class ScenePlan:
    """A lod1 layer of one release as a quadtree of tiles."""

    layer: str
    release: int
    srid: int
    root: SceneTile
    #: buildings in the plan (= the layer's feature count)
    count: int
    #: the heights' CRS84h box: west, south, min height, east, north, max height
    bbox3d: tuple[float, float, float, float, float, float]
    #: name of the DEM layer the blocks stand on, None without one
    dem: str | None = None

    def tiles(self) -> list[SceneTile]:
        """Every tile, parents before children."""
        out: list[SceneTile] = []
        stack = [self.root]
        while stack:
            tile = stack.pop()
            out.append(tile)
            stack.extend(reversed(tile.children))
        return out

    def find(self, level: int, x: int, y: int) -> SceneTile | None:
        for tile in self.tiles():
            if (tile.level, tile.x, tile.y) == (level, x, y):
                return tile
        return None


@dataclass(frozen=True)
class SceneContent:
    """A tile's GLB as served: bytes, the release it belongs to and its ETag; ``mutable`` when the
    layer is editable (edits change it within a release), keyed then by the store's edit ``generation``."""

    data: bytes
    release: int
    etag: str
    mutable: bool = False
    generation: int = 0
