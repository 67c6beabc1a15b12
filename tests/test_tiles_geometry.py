"""Tile geometry prepared at publish (cim/store/sql/tile_geometry.py): PostGIS renders the prepared zooms
from it, and the tiles hold what the plain way (cim/store/sql/tiles.py) gives — same layers, same
features and attributes, the same shapes to within a pixel, valid and correctly oriented."""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import psycopg
import pytest
import shapely

from cim.store import LayerData, ReleaseDraft, TileLayerQuery, open_store, shared_store
from cim.store.sql.tile_geometry import DETAIL_ZOOM, table_name, usable, zooms_to_prepare
from cim.tms import tile_bounds, tile_matrix_sets
from layers.catalog import CATALOG
from tiles.cache import TileCache
from tiles.engine import TileEngine
from tiles.tilesets import COMPOSITE, tileset
from support.tiles import BUFFER, EXTENT, HELSINKI, coordinates, decode

WEB = tile_matrix_sets()["WebMercatorQuad"]
pytestmark = pytest.mark.filterwarnings("ignore:Geometry is in a geographic CRS")


def shapes(layer: dict) -> dict[int, shapely.Geometry]:
    return {f["id"]: shapely.geometry.shape(f["geometry"]) for f in layer["features"]}


def within(geom: shapely.Geometry, other: shapely.Geometry) -> float:
    """How far the part of ``geom`` inside the tile strays from ``other`` at most (a directed
    Hausdorff distance, over points every unit along ``geom``)."""
    inside = shapely.intersection(geom, shapely.box(0, 0, EXTENT, EXTENT))
    points = shapely.points(shapely.get_coordinates(shapely.segmentize(inside, 1.0)))
    return float(shapely.distance(points, other).max()) if len(points) else 0.0


def tiles_around(z: int, lon: float = HELSINKI[0], lat: float = HELSINKI[1], n: int = 1) -> list:
    centre = WEB.tile(lon, lat, z)
    return [WEB.tile(lon, lat, z).__class__(centre.x + dx, centre.y + dy, z) for dx in range(-n, n + 1) for dy in range(-n, n + 1)]


def assert_same_tile(fast_data: bytes, plain_data: bytes) -> int:
    """The prepared tile holds the plain tile's layers, features and attributes; each shape within
    one pixel (16 tile units) and a unit of the plain one inside the tile, valid, on integer coordinates inside the buffer."""
    fast, plain = decode(fast_data), decode(plain_data)
    assert list(fast) == list(plain)
    compared = 0
    for name, layer in fast.items():
        mine, theirs = shapes(layer), shapes(plain[name])
        assert set(mine) == set(theirs), name
        props = {f["id"]: f["properties"] for f in plain[name]["features"]}
        for feature in layer["features"]:
            assert feature["properties"] == props[feature["id"]]
            for x, y in coordinates(feature["geometry"]):
                assert x == int(x) and y == int(y)
                assert -BUFFER <= x <= EXTENT + BUFFER and -BUFFER <= y <= EXTENT + BUFFER
        for fid, geom in mine.items():
            if geom.geom_type.endswith("Polygon"):
                assert geom.is_valid, (name, fid, shapely.is_valid_reason(geom))
                assert geom.area > 0
            # inside the tile (the buffer is there for clipping only) each way is within ½ px
            # (Douglas-Peucker) and ½ unit (snapping) of the feature: of each other within 1 px + 1
            assert within(geom, theirs[fid]) <= EXTENT / 256 + 1, (name, fid)
            assert within(theirs[fid], geom) <= EXTENT / 256 + 1, (name, fid)
            compared += 1
    return compared


def test_postgis_prepares_polygon_and_line_layers_to_the_detail_zoom(demo_store_url: str) -> None:
    store = shared_store(demo_store_url)
    infos = {info.name: info for info in store.layers()}
    if demo_store_url.startswith("postgresql"):
        for name in ("buildings", "roads", "water"):  # from where the largest feature shows, to z14
            zooms = infos[name].tile_zooms
            assert zooms == tuple(range(zooms[0], DETAIL_ZOOM + 1)) == tuple(zooms_to_prepare(infos[name])), name
        assert 10 <= infos["buildings"].tile_zooms[0] <= infos["buildings"].spec.minzoom
        assert infos["pois"].tile_zooms == ()  # points need no clipping
        with psycopg.connect(demo_store_url) as conn:
            count = conn.execute(f'SELECT count(*), bool_and(ST_IsValid(px)) FROM cim_r0001."{table_name("buildings", 14)}"').fetchone()
        assert 0 < count[0] <= infos["buildings"].count and count[1]
    else:  # the embedded store renders every tile the plain way
        assert all(info.tile_zooms == () for info in infos.values())


@pytest.mark.parametrize("z", [11, 13, 14])
@pytest.mark.parametrize("tileset_id", [COMPOSITE, "buildings", "roads"])
def test_prepared_tiles_hold_what_the_plain_way_gives(demo_store_url: str, tileset_id: str, z: int) -> None:
    store = shared_store(demo_store_url)
    engine = TileEngine(store, TileCache(0))
    ts = tileset(store, tileset_id)
    compared = 0
    for tile in tiles_around(z):
        query = engine.query(ts, WEB, tile)
        if query is None:  # no data near this tile
            continue
        assert query.zoom == z and query.tms_id == "WebMercatorQuad"
        plain = replace(query, tms_id=None, zoom=None)
        compared += assert_same_tile(store.render_tile(query).data, store.render_tile(plain).data)
    assert compared > 20


def test_a_feature_snapping_would_make_invalid_is_valid_in_its_tile(new_postgis_db) -> None:
    """A ring whose notch is narrower than a tile unit self-intersects once snapped: its prepared
    tile geometry is valid (ST_AsMVTGeom made it so) and so is what the tile holds."""
    url = new_postgis_db()
    tile = WEB.tile(*HELSINKI, 14)
    minx, miny, maxx, maxy = tile_bounds(WEB, tile)
    unit = (maxx - minx) / EXTENT
    x0, y0 = minx + 1000 * unit, miny + 1000 * unit
    size = 400 * unit
    notch = [  # a square with a slit 0.3 units wide reaching into its middle
        (x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0 + size / 2 + 0.15 * unit, y0 + size),
        (x0 + size / 2 + 0.15 * unit, y0 + size / 2), (x0 + size / 2 - 0.15 * unit, y0 + size / 2),
        (x0 + size / 2 - 0.15 * unit, y0 + size), (x0, y0 + size), (x0, y0),
    ]
    plain = shapely.box(x0 + 2 * size, y0, x0 + 3 * size, y0 + size)
    frame = gpd.GeoDataFrame(
        {"name": ["notched", "plain"], "use": ["office", "office"], "height_m": [10.0, 20.0],
         "floors": [3, 6], "structure": [None, None], "year_built": [None, None], "address": [None, None],
         "source": ["survey"] * 2, "source_id": ["n1", "p1"]},
        geometry=[shapely.MultiPolygon([shapely.Polygon(notch)]), shapely.MultiPolygon([plain])],
        crs=3857,
    ).to_crs(4326)
    with open_store(url) as store:
        store.publish(ReleaseDraft([LayerData(CATALOG["buildings"], frame)], srid=4326))
        assert store.prepare_tiles() == {"buildings": tuple(zooms_to_prepare(store.layer("buildings")))}
        with psycopg.connect(url) as conn:
            table = f'cim_r0001."{table_name("buildings", 14)}"'
            valid = dict(conn.execute(f"SELECT name, ST_IsValid(px) FROM {table}").fetchall())
            snapped = dict(conn.execute(
                "SELECT name, ST_IsValid(ST_SnapToGrid(ST_Transform(geom, 3857), %s)) FROM cim_r0001.buildings", (unit,)
            ).fetchall())  # fmt: skip
        assert snapped == {"notched": False, "plain": True}  # snapping alone would not do
        assert valid == {"notched": True, "plain": True}
        engine = TileEngine(store, TileCache(0))
        query = engine.query(tileset(store, "buildings"), WEB, tile)
        assert query is not None
        fast = store.render_tile(query).data
        assert_same_tile(fast, store.render_tile(replace(query, zoom=None)).data)
        names = {f["properties"]["name"] for f in decode(fast)["buildings"]["features"]}
        assert names == {"notched", "plain"}


def test_prepared_geometry_is_used_only_where_it_gives_the_plain_result(demo_store_url: str) -> None:
    store = shared_store(demo_store_url)
    info = replace(store.layer("buildings"), tile_zooms=(13, 14))
    engine = TileEngine(store, TileCache(0))
    query = engine.query(tileset(store, "buildings"), WEB, WEB.tile(*HELSINKI, 14))
    assert query is not None
    attrs = info.spec.tile_attributes
    assert usable(info, query, attrs, edited=False)
    assert not usable(info, query, attrs, edited=True)  # edits overlay: plain way
    assert not usable(info, replace(query, zoom=15), attrs, edited=False)  # deeper than prepared
    assert not usable(info, replace(query, tms_id="WorldCRS84Quad"), attrs, edited=False)
    assert not usable(info, replace(query, simplify_px=1.0), attrs, edited=False)
    assert not usable(info, query, attrs + ("address",), edited=False)  # not in the prepared table
    assert usable(info, replace(query, min_area_px=4.0), attrs, edited=False)  # stricter filter: still exact
    assert zooms_to_prepare(store.layer("pois")) == []


def test_tile_layer_query_of_a_prepared_layer_reads_its_table(demo_store_url: str) -> None:
    """The statement of a prepared zoom reads ``"<layer>@z<zoom>"``, of another zoom (or of a layer
    the embedded store holds: it prepares none) the release table."""
    from cim.store.postgis.dialect import PostgisDialect, PostgisTileDialect
    from cim.store.sql.tiles import tile_statement

    store = shared_store(demo_store_url)
    info = store.layer("buildings")
    engine = TileEngine(store, TileCache(0))
    ts = tileset(store, "buildings")
    dialect = PostgisTileDialect(PostgisDialect("cim_r0001"))
    for z, prepared in ((14, demo_store_url.startswith("postgresql")), (15, False)):
        query = engine.query(ts, WEB, WEB.tile(*HELSINKI, z))
        assert query is not None
        sql = tile_statement([info], query, dialect).sql
        assert (f'"{table_name("buildings", z)}"' in sql) is prepared
        assert ('"cim_r0001"."buildings" ' in sql) is not prepared
        assert query.layers == (TileLayerQuery("buildings", info.spec.tile_attributes),)


def test_a_release_is_served_before_its_tile_geometry_and_faster_after(new_postgis_db, demo_layers) -> None:
    """Published, a release renders the plain way; once `cim tiles prepare` (or `cim build`) has made
    its tile geometry, every reader picks it up with its next read of the release, and tiles change
    key (and ETag), since they may differ by a pixel. Preparing again finds nothing missing."""
    from click.testing import CliRunner

    from cim.cli import cli
    from support.tiles import wait_until

    url = new_postgis_db()
    layers = [layer for layer in demo_layers if layer.spec.name in ("buildings", "pois")]
    with open_store(url) as builder:
        builder.publish(ReleaseDraft(layers, srid=4326))
    reader = open_store(url)
    try:
        engine = TileEngine(reader, TileCache(0))
        tile = WEB.tile(*HELSINKI, 14)
        before = engine.tile("buildings", WEB, tile)
        assert reader.layer("buildings").tile_zooms == () and reader.tile_geometry_version() == 0
        result = CliRunner().invoke(cli, ["tiles", "prepare", "--store", url])
        assert result.exit_code == 0, result.output
        zooms = zooms_to_prepare(reader.layer("buildings"))
        assert f"buildings: z{zooms[0]}" in result.output and f"{len(zooms)} tables of tile geometry prepared" in result.output
        assert wait_until(lambda: reader.tile_geometry_version() == len(zooms))
        assert reader.layer("buildings").tile_zooms == tuple(zooms) and reader.layer("pois").tile_zooms == ()
        after = engine.tile("buildings", WEB, tile)
        assert after.etag != before.etag and after.release == before.release
        assert {f["id"] for f in decode(after.data)["buildings"]["features"]} == {
            f["id"] for f in decode(before.data)["buildings"]["features"]
        }
        again = CliRunner().invoke(cli, ["tiles", "prepare", "--store", url])
        assert again.exit_code == 0 and "0 tables of tile geometry prepared (none missing" in again.output
    finally:
        reader.close()


@pytest.mark.parametrize("srid", [4490, 4548])
def test_prepared_tiles_of_a_cgcs2000_store_hold_what_the_plain_way_gives(new_postgis_db, srid: int) -> None:
    """Storage in CGCS2000 (geographic, EPSG:4490) or its Gauss-Krüger zone at 117°E (EPSG:4548,
    metres): the prepared rows reach every visible feature (the size threshold is measured in the
    storage CRS) and the tiles are the plain way's."""
    from support.citydata import TIANJIN, building_frame

    url = new_postgis_db()
    with open_store(url) as store:
        store.publish(ReleaseDraft([LayerData(CATALOG["buildings"], building_frame(srid))], srid=srid))
        zooms = store.prepare_tiles()["buildings"]
        assert zooms == tuple(zooms_to_prepare(store.layer("buildings"))) and zooms[-1] == DETAIL_ZOOM
        engine = TileEngine(store, TileCache(0))
        ts = tileset(store, "buildings")
        shown = set()
        for z in zooms:
            for lon, lat in TIANJIN:
                query = engine.query(ts, WEB, WEB.tile(lon, lat, z))
                assert query is not None and usable(store.layer("buildings"), query, query.layers[0].attributes, False)
                fast = store.render_tile(query).data
                assert_same_tile(fast, store.render_tile(replace(query, zoom=None)).data)
                if z == DETAIL_ZOOM:
                    shown |= {f["properties"].get("use") for f in decode(fast)["buildings"]["features"]}
        assert shown == {"culture", "residential", "office"}  # all three buildings at z14
