"""The vocabulary of a base-map layer definition.

`cim` owns these types so that the store, the build pipeline and the public API can reason about
layers; the concrete definitions live in the `layers` package and reach `cim` through the
``cim.catalogs`` entry point (see :func:`cim.catalog.load_catalog`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
GeometryType = Literal["Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"]
LayerKind = Literal["vector", "raster"]
#: what a raster layer's pixels are: heights in metres (one band) or an image (grey, RGB or RGBA, 8 bit)
RasterRole = Literal["elevation", "image"]
RASTER_ROLES: tuple[str, ...] = ("elevation", "image")
InvalidGeometryPolicy = Literal["repair", "reject"]

FIELD_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "date", "datetime")


@dataclass(frozen=True)
class FieldSpec:
    """One normalised attribute of a layer."""

    name: str
    type: FieldType
    description: str = ""
    unit: str | None = None
    required: bool = False
    #: allowed values for coded attributes (e.g. a land-use class list); None = free
    enum: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name!r}: unknown type {self.type!r}; expected one of {FIELD_TYPES}")


@dataclass(frozen=True)
class LayerSpec:
    """A declarative base-map layer: schema, geometry, tiling and presentation."""

    name: str
    title: str
    description: str
    kind: LayerKind = "vector"
    #: the geometry type features are normalised to (single parts are promoted to Multi* where named)
    geometry_type: GeometryType | None = None
    fields: tuple[FieldSpec, ...] = ()
    #: CIM data category (时空基础, 资源调查, 规划管控, 公共专题 ...)
    category: str = ""
    minzoom: int = 0
    maxzoom: int = 22
    #: attributes kept in vector tiles (a subset of ``fields``)
    tile_attributes: tuple[str, ...] = ()
    #: what the build does with an invalid geometry
    invalid_geometry: InvalidGeometryPolicy = "repair"
    #: layers planning departments edit through OGC API - Features Part 4
    editable: bool = False
    #: fill / line colour used by the MapLibre style
    color: str = "#888888"
    #: drawing order in the composite base map (low first)
    order: int = 0
    keywords: tuple[str, ...] = field(default=())
    #: the date/datetime field that places a feature in time (the ``datetime`` parameter filters on
    #: it and collections get a temporal extent); None = the layer has no time
    temporal_field: str | None = None
    #: raster layers: what the pixels are, which decides how they are resampled and drawn
    raster: RasterRole | None = None
    #: important data (重要数据): its features, tiles and map tiles are served only to bearer tokens
    #: carrying ``read_role`` (ogcapi/access.py, docs/security.md); its metadata stays public
    restricted: bool = False
    #: the role a token needs to read a restricted layer; None = ``$CIM_JWT_READER_ROLE`` (``reader``)
    read_role: str | None = None
    #: a live layer is written at run time through the API (e.g. warnings), not by builds: it is
    #: present in every release without build sources and kept beside the releases, so it survives
    #: every new release and rollback (docs/warnings.md, cim/store/live.py)
    live: bool = False
    #: with ``temporal_field``: the field where a feature's validity ends (None = open). The layer's
    #: features are then valid over an interval: ``datetime`` selects those whose validity overlaps
    #: it, and without ``datetime`` a live layer lists those valid now
    temporal_end_field: str | None = None
    #: polygon layers whose areas enclose the rest of the map (administrative divisions): the style
    #: draws them as outlines over a faint fill, so what lies inside stays visible
    outline: bool = False
    #: footprints extruded into LOD1 blocks (CIM2 frame model, 白模) by the height rule
    #: (cim/heights.py): served as OGC 3D Tiles at ``/collections/{name}/3dtiles`` (docs/3d.md). A
    #: polygon layer; its ``height_m`` (number) and ``floors`` (integer) fields, where it has them,
    #: give each footprint its height
    lod1: bool = False

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"layer {self.name!r}: duplicate field names in {names}")
        unknown = set(self.tile_attributes) - set(names)
        if unknown:
            raise ValueError(f"layer {self.name!r}: tile attributes {sorted(unknown)} are not fields")
        if self.temporal_field is not None and self.field_types.get(self.temporal_field) not in ("date", "datetime"):
            raise ValueError(f"layer {self.name!r}: temporal_field {self.temporal_field!r} is not a date or datetime field")
        if self.temporal_end_field is not None:
            if self.temporal_field is None:
                raise ValueError(f"layer {self.name!r}: temporal_end_field needs a temporal_field")
            if self.field_types.get(self.temporal_end_field) != self.field_types.get(self.temporal_field):
                raise ValueError(f"layer {self.name!r}: temporal_end_field {self.temporal_end_field!r} is not a field of the temporal_field's type")
        if self.live and (self.kind != "vector" or self.editable):
            raise ValueError(f"layer {self.name!r}: a live layer is a vector layer written through its own API, not an editable one")
        if self.kind == "vector" and self.geometry_type is None:
            raise ValueError(f"vector layer {self.name!r} needs a geometry_type")
        if self.kind == "raster" and self.raster not in RASTER_ROLES:
            raise ValueError(f"raster layer {self.name!r} needs raster= one of {RASTER_ROLES}")
        if self.read_role is not None and not self.restricted:
            raise ValueError(f"layer {self.name!r}: read_role {self.read_role!r} is only for restricted layers")
        if self.lod1 and self.geometry_type not in ("Polygon", "MultiPolygon"):
            raise ValueError(f"layer {self.name!r}: lod1 extrudes footprints; it needs a Polygon or MultiPolygon layer")
        if not 0 <= self.minzoom <= self.maxzoom <= 30:
            raise ValueError(f"layer {self.name!r}: bad zoom range {self.minzoom}..{self.maxzoom}")

    @property
    def field_types(self) -> dict[str, str]:
        return {f.name: f.type for f in self.fields}

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layer {self.name!r} has no field {name!r}")
