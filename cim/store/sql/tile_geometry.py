"""Tile geometry prepared once per zoom: each feature already in tile space where tiles cost most.

Rendering a WebMercatorQuad tile the plain way (:mod:`cim.store.sql.tiles`) reprojects, simplifies,
snaps, clips and re-validates every feature in the tile on every request: for a z14 tile of ~600
footprints that is ~7.5 ms of PostgreSQL's time, most of it in ``ST_Transform`` and in the
validation of ``ST_AsMVTGeom``. All of that but the clipping depends only on the zoom, so the
PostGIS store does it once per zoom, once a release is current (``Store.prepare_tiles``), into a
table beside the layer's (``"<layer>@z<zoom>"`` in the release schema), for every polygon and line
layer and every zoom from the first at which its largest feature shows to :data:`DETAIL_ZOOM`.
Per feature it holds

- ``px``: the geometry as ``ST_AsMVTGeom`` makes it for the whole world taken as one tile of
  ``2^zoom × extent`` units, unclipped, from the feature in EPSG:3857 simplified by Douglas-Peucker
  by ½ pixel (``simplify_px`` of :class:`~cim.store.tilequery.TileQuery`): snapped to the zoom's
  tile-coordinate grid, made valid, oriented, y down — "world pixel" coordinates, in which tile
  (column ``c``, row ``r``) is the square ``[c·extent, (c+1)·extent] × [r·extent, (r+1)·extent]``;
- ``size``, the feature's area or length in the storage CRS (the number the plain way filters and
  orders by), and the layer's ``tile_attributes``;

with a GiST index on ``px``, stored in ``px``'s order (PostGIS sorts geometries along a space-filling
curve), so that a tile's rows share few pages.

A feature wholly inside a tile is then only moved into it (``ST_Translate`` by whole tiles: exact,
the coordinates stay integers); one crossing the tile's edge goes through ``ST_AsMVTGeom`` for that
tile (mirrored back to y up, as it expects), which clips it to the buffer — from geometry already
simplified, snapped and valid on the tile's own grid. The filter, order and budget are the plain
way's (on ``size``), so a tile holds the same features; the z14 tile above takes ~3.3 ms
(docs/benchmarks.md). ``ST_AsMVTGeom``'s integer coordinates stop at 2^31, far past
:data:`DETAIL_ZOOM` (z19).

Used only where it gives what the plain way would (:func:`usable`): the WebMercatorQuad tiles of a
prepared zoom, with the default generalisation parameters, for attributes the table holds, and not
for a layer with edits (its overlay is not prepared; it renders the plain way). Rows are made only
for features that could be visible at the zoom — at least half the least visible size of any tile
over the layer's extent (:func:`least_size`); the per-tile filter on ``size`` is still the exact one.
"""

from __future__ import annotations

import functools
import math

from pyproj import Transformer

from cim.store.base import FID, GEOM, LayerInfo
from cim.store.sql import quote_ident
from cim.store.tilequery import LINES, POLYGONS, TileQuery
from cim.tms import HALF_WORLD, WEB_MERCATOR, WEB_MERCATOR_SRID

# prepared tables are cut for WebMercatorQuad (WEB_MERCATOR), in its CRS (WEB_MERCATOR_SRID)
#: the deepest zoom prepared: tiles deeper hold few features each and render the plain way
DETAIL_ZOOM = 14
#: the column of the prepared geometry
PX = "px"
#: the generalisation a prepared table is made for (TileQuery's defaults)
_DEFAULTS = TileQuery(layers=(), bounds=(0.0, 0.0, 0.0, 0.0), srid=WEB_MERCATOR_SRID)


def table_name(layer: str, zoom: int) -> str:
    return f"{layer}@z{int(zoom)}"


def zooms_to_prepare(info: LayerInfo) -> list[int]:
    """The zooms a layer's tile geometry is prepared for, for polygon and line layers with features:
    from the first zoom at which its largest feature can be seen (a collection's tileset serves
    every zoom, the composite from ``minzoom``; below that zoom tiles skip the layer unread) to
    :data:`DETAIL_ZOOM`. None for points (they need no clipping) or rasters."""
    if info.spec.kind != "vector" or info.spec.geometry_type not in POLYGONS + LINES or not info.count:
        return []
    first = info.spec.minzoom
    if info.max_size is not None:
        first = next((z for z in range(DETAIL_ZOOM + 1) if info.max_size >= 2 * least_size(info, z)), DETAIL_ZOOM + 1)
    return list(range(max(0, first), DETAIL_ZOOM + 1))


def pixel(zoom: int) -> float:
    """One pixel (of ``tile_size``) at ``zoom`` in EPSG:3857 metres."""
    return 2 * HALF_WORLD / 2**zoom / _DEFAULTS.tile_size


def least_size(info: LayerInfo, zoom: int) -> float:
    """Half the smallest visible size (storage CRS units: area for polygons, length for lines) of
    any tile of ``zoom`` over the layer's extent: the pixel measured in the storage CRS at the
    extent's corners and centre, where it is smallest (nearest the pole, for EPSG:3857)."""
    if info.bbox is None:
        return 0.0
    to_merc, to_storage = _transformers(info.srid)
    west, south, east, north = info.bbox
    side = pixel(zoom)
    areas = []
    for lon, lat in ((west, south), (west, north), (east, south), (east, north), ((west + east) / 2, (south + north) / 2)):
        x, y = to_merc.transform(lon, max(-85.0, min(85.0, lat)))
        xs, ys = to_storage.transform([x, x + side, x + side, x], [y, y, y + side, y + side])
        areas.append(0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(4))))
    area = min(areas)
    if info.spec.geometry_type in POLYGONS:
        return 0.5 * _DEFAULTS.min_area_px * area
    return 0.5 * _DEFAULTS.min_length_px * math.sqrt(area)


@functools.lru_cache(maxsize=16)
def _transformers(srid: int) -> tuple[Transformer, Transformer]:
    """CRS84 → EPSG:3857 and EPSG:3857 → ``srid`` (asked once per zoom of every layer)."""
    return (
        Transformer.from_crs("OGC:CRS84", f"EPSG:{WEB_MERCATOR_SRID}", always_xy=True),
        Transformer.from_crs(f"EPSG:{WEB_MERCATOR_SRID}", f"EPSG:{srid}", always_xy=True),
    )


def prepare_sql(info: LayerInfo, source: str, target: str, zoom: int) -> str:
    """``CREATE TABLE target AS ...``: the prepared rows of layer ``info`` (table ``source``) at
    ``zoom``. Each expression appears once, so PostgreSQL, which inlines subqueries and does not
    share common expressions, computes each once per row."""
    geom, fid = quote_ident(GEOM), quote_ident(FID)
    size = f"ST_Area({geom})" if info.spec.geometry_type in POLYGONS else f"ST_Length({geom})"
    merc = f"ST_Transform({geom}, {WEB_MERCATOR_SRID})" if info.srid != WEB_MERCATOR_SRID else geom
    attrs = "".join(f", {quote_ident(a)}" for a in info.spec.tile_attributes)
    world = f"ST_MakeEnvelope({-HALF_WORLD!r}, {-HALF_WORLD!r}, {HALF_WORLD!r}, {HALF_WORLD!r}, {WEB_MERCATOR_SRID})::box2d"
    simplified = f"ST_Simplify({merc}, {_DEFAULTS.simplify_px * pixel(zoom)!r}, true)"
    # SRID 0: world pixels are no CRS (ST_AsMVTGeom keeps its input's)
    whole = f"ST_SetSRID(ST_AsMVTGeom({simplified}, {world}, {2**zoom * _DEFAULTS.extent}, 0, false), 0)"
    # rows whose px vanished (NULL) stay: filtering them would compute px twice; no tile reads them
    return (
        f"CREATE TABLE {target} AS SELECT {fid}, {size} AS size{attrs}, {whole} AS {PX} FROM {source}"
        f" WHERE {size} >= {least_size(info, zoom)!r} ORDER BY {PX}"
    )


def usable(info: LayerInfo, query: TileQuery, attributes: tuple[str, ...], edited: bool) -> bool:
    """Whether this tile of layer ``info`` may be rendered from the prepared table of its zoom."""
    return (
        query.tms_id == WEB_MERCATOR
        and query.zoom in info.tile_zooms
        and not edited
        and query.srid == WEB_MERCATOR_SRID
        and query.extent == _DEFAULTS.extent
        and query.tile_size == _DEFAULTS.tile_size
        and query.simplify_px == _DEFAULTS.simplify_px
        and query.min_area_px >= _DEFAULTS.min_area_px
        and query.min_length_px >= _DEFAULTS.min_length_px
        and set(attributes) <= set(info.spec.tile_attributes)
    )


def _world_box(col: int, row: int, extent: int, pad: int = 0) -> str:
    return f"ST_MakeEnvelope({col * extent - pad}, {row * extent - pad}, {(col + 1) * extent + pad}, {(row + 1) * extent + pad})"


def tile_place(query: TileQuery) -> tuple[int, int]:
    """(column, row) of the query's WebMercatorQuad tile."""
    minx, _, maxx, maxy = query.bounds
    width = maxx - minx
    return round((minx + HALF_WORLD) / width), round((HALF_WORLD - maxy) / width)


def candidates_filter(query: TileQuery) -> str:
    """The prepared rows reaching into the tile grown by its buffer (by the GiST index on ``px``)."""
    col, row = tile_place(query)
    return f"ST_Intersects({PX}, {_world_box(col, row, query.extent, query.buffer)})"


def mvt_geometry(query: TileQuery, column: str = "c") -> str:
    """The tile-space geometry of prepared row ``column``: ``px`` moved into the tile for a feature
    inside it, else clipped to the buffer by ``ST_AsMVTGeom`` (given ``px`` mirrored to y up and
    the tile's box in those units, its output is in the tile's own coordinates)."""
    col, row = tile_place(query)
    extent, px = int(query.extent), f"{column}.{PX}"
    moved = f"ST_Translate({px}, {-col * extent}, {-row * extent})"
    up = f"ST_MakeEnvelope({col * extent}, {-(row + 1) * extent}, {(col + 1) * extent}, {-row * extent})::box2d"
    clipped = f"ST_AsMVTGeom(ST_Scale({px}, 1, -1), {up}, {extent}, {int(query.buffer)}, true)"
    return f"CASE WHEN {px} @ {_world_box(col, row, extent)} THEN {moved} ELSE {clipped} END"
