"""Tile geometry prepared at publish: each feature already in tile space for the zooms that cost most.

Rendering a WebMercatorQuad tile the plain way (:mod:`cim.store.tiles_sql`) reprojects, simplifies,
clips, snaps and re-validates every feature in the tile on every request: for a z14 tile of ~600
footprints that is ~7.5 ms of PostgreSQL's time, most of it in ``ST_Transform`` and in the clipping
and validation of ``ST_AsMVTGeom``. Little of that depends on the tile, only on the zoom, so the
PostGIS store does it once per zoom when it publishes a release, into a table beside the layer's
(``"<layer>@z<zoom>"`` in the release schema), for every polygon and line layer and every zoom
from the layer's ``minzoom`` to :data:`DETAIL_ZOOM`. Per feature it holds

- ``geom``: the geometry in EPSG:3857, simplified by Douglas-Peucker by ½ pixel of the zoom
  (``simplify_px`` of :class:`~cim.store.tilequery.TileQuery`) — what the plain way computes per
  tile before ``ST_AsMVTGeom`` — with its GiST index;
- ``px``: that geometry as ``ST_AsMVTGeom`` makes it for the whole world as one tile of
  ``2^zoom × 4096`` units (no clipping): snapped to the zoom's tile-coordinate grid, made valid,
  oriented, y down — the very grid of every tile of the zoom, since each tile's corner lies on it;
- ``size``, the feature's area or length in the storage CRS (the number the plain way filters and
  orders by), and the layer's ``tile_attributes``.

A feature wholly inside a tile is then only moved into it (``ST_Translate`` by whole tiles: exact,
the coordinates stay integers); one crossing the tile's edge goes through ``ST_AsMVTGeom`` for that
tile, from ``geom``, as the plain way does but without reprojecting or simplifying again. The
filter, order and budget are the plain way's (on ``size``), so a tile holds the same features; the
z14 tile above took 3.0 ms instead of 7.5 (docs/benchmarks.md). ``ST_AsMVTGeom``'s integer
coordinates stop at 2^31, far past :data:`DETAIL_ZOOM` (z19).

Used only where it gives what the plain way would (:func:`usable`): the WebMercatorQuad tiles of a
prepared zoom, with the default generalisation parameters, for attributes the table holds, and not
for a layer with edits (its overlay is not prepared; it renders the plain way). Rows are kept only
for features that could be visible at the zoom (area or length at least half the least visible
size, in EPSG:3857 pixels: a superset of what any tile of the zoom shows, since the per-tile filter
on ``size`` is still the exact one) and that do not vanish at the zoom (``px`` not NULL).
"""

from __future__ import annotations

from cim.store.base import FID, GEOM, LayerInfo
from cim.store.sql import quote_ident
from cim.store.tilequery import TileQuery

#: the grid prepared tables are cut for, and its CRS
GRID = "WebMercatorQuad"
GRID_SRID = 3857
#: half the width of the EPSG:3857 world (WebMercatorQuad's origin is at minus this)
HALF_WORLD = 20037508.342789244
#: the deepest zoom prepared: tiles deeper hold few features each and render the plain way
DETAIL_ZOOM = 14
POLYGONS = ("Polygon", "MultiPolygon")
LINES = ("LineString", "MultiLineString")
#: the generalisation a prepared table is made for (TileQuery's defaults)
_DEFAULTS = TileQuery(layers=(), bounds=(0.0, 0.0, 0.0, 0.0), srid=GRID_SRID)


def table_name(layer: str, zoom: int) -> str:
    return f"{layer}@z{int(zoom)}"


def zooms_to_prepare(info: LayerInfo) -> list[int]:
    """The zooms a layer's tile geometry is prepared for: ``minzoom`` to :data:`DETAIL_ZOOM` for
    polygon and line layers with features; none for points (they need no clipping) or rasters."""
    if info.spec.kind != "vector" or info.spec.geometry_type not in POLYGONS + LINES or not info.count:
        return []
    return list(range(max(0, info.spec.minzoom), DETAIL_ZOOM + 1))


def unit(zoom: int) -> float:
    """One tile-coordinate unit at ``zoom`` in EPSG:3857 metres."""
    return 2 * HALF_WORLD / 2**zoom / _DEFAULTS.extent


def pixel(zoom: int) -> float:
    """One pixel (of ``tile_size``) at ``zoom`` in EPSG:3857 metres."""
    return 2 * HALF_WORLD / 2**zoom / _DEFAULTS.tile_size


def prepare_sql(info: LayerInfo, source: str, target: str, zoom: int) -> str:
    """``CREATE TABLE target AS ...``: the prepared rows of layer ``info`` (table ``source``) at ``zoom``."""
    geom, fid = quote_ident(GEOM), quote_ident(FID)
    px = pixel(zoom)
    if info.spec.geometry_type in POLYGONS:
        size, visible = f"ST_Area({geom})", f"ST_Area(m) >= {0.5 * _DEFAULTS.min_area_px * px * px!r}"
    else:
        size, visible = f"ST_Length({geom})", f"ST_Length(m) >= {0.5 * _DEFAULTS.min_length_px * px!r}"
    merc = f"ST_Transform({geom}, {GRID_SRID})" if info.srid != GRID_SRID else geom
    attrs = "".join(f", {quote_ident(a)}" for a in info.spec.tile_attributes)
    world = f"ST_MakeEnvelope({-HALF_WORLD!r}, {-HALF_WORLD!r}, {HALF_WORLD!r}, {HALF_WORLD!r}, {GRID_SRID})::box2d"
    whole = f"ST_AsMVTGeom(g, {world}, {2**zoom * _DEFAULTS.extent}, 0, false)"
    return (
        f"CREATE TABLE {target} AS SELECT * FROM (SELECT {fid}, size{attrs}, g AS {geom}, {whole} AS px"
        f" FROM (SELECT {fid}, size{attrs}, ST_Simplify(m, {_DEFAULTS.simplify_px * px!r}, true) AS g"
        f" FROM (SELECT {fid}, {size} AS size{attrs}, {merc} AS m FROM {source}) AS t"
        f" WHERE m IS NOT NULL AND {visible}) AS v) AS w WHERE px IS NOT NULL"
    )


def usable(info: LayerInfo, query: TileQuery, attributes: tuple[str, ...], edited: bool) -> bool:
    """Whether this tile of layer ``info`` may be rendered from the prepared table of its zoom."""
    return (
        query.grid == GRID
        and query.zoom in info.tile_zooms
        and not edited
        and query.srid == GRID_SRID
        and query.extent == _DEFAULTS.extent
        and query.tile_size == _DEFAULTS.tile_size
        and query.simplify_px == _DEFAULTS.simplify_px
        and query.min_area_px >= _DEFAULTS.min_area_px
        and query.min_length_px >= _DEFAULTS.min_length_px
        and set(attributes) <= set(info.spec.tile_attributes)
    )


def mvt_geometry(query: TileQuery, envelope: str, box: str, column: str = "c") -> str:
    """The tile-space geometry of a prepared row ``column``: ``px`` moved into the tile for a
    feature inside it, ``ST_AsMVTGeom`` (clip to the buffer, make valid) for the others."""
    minx, _, _, maxy = query.bounds
    width = query.bounds[2] - minx
    col, row = round((minx + HALF_WORLD) / width), round((HALF_WORLD - maxy) / width)
    geom = f"{column}.{quote_ident(GEOM)}"
    moved = f"ST_Translate({column}.px, {-col * query.extent}, {-row * query.extent})"
    clipped = f"ST_AsMVTGeom({geom}, {box}, {int(query.extent)}, {int(query.buffer)}, true)"
    return f"CASE WHEN {geom} @ {envelope} THEN {moved} ELSE {clipped} END"
