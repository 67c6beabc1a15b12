"""Store.render_tile on both stores: the generalisation rules of cim/store/sql/tiles.py (docs/tiles.md)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import shapely

from cim.errors import InvalidQuery, LayerNotFound
from cim.store import TileLayerQuery, TileQuery, shared_store
from cim.tms import storage_bounds, tile_bounds, tile_matrix_sets
from tiles.engine import TileEngine
from tiles.cache import TileCache
from tiles.tilesets import collection
from support.tiles import counts, decode, tile_at

WEB = tile_matrix_sets()["WebMercatorQuad"]
# areas are compared in storage units (degrees²), as the SQL measures them
pytestmark = pytest.mark.filterwarnings("ignore:Geometry is in a geographic CRS")


def query(layer: str, z: int, attributes: tuple[str, ...] = (), **kw) -> TileQuery:
    tile = tile_at("WebMercatorQuad", z)
    return TileQuery(
        layers=(TileLayerQuery(layer, attributes),),
        bounds=tile_bounds(WEB, tile),
        srid=3857,
        storage_bounds={4326: storage_bounds(WEB, tile, 4326)},
        **kw,
    )


def test_render_tile_reports_release_and_layer(demo_store_url: str) -> None:
    store = shared_store(demo_store_url)
    rendered = store.render_tile(query("buildings", 15, ("name", "use")))
    assert rendered.release == store.current_number() == 1
    layers = decode(rendered.data)
    assert list(layers) == ["buildings"]
    assert all(set(f["properties"]) <= {"name", "use"} for f in layers["buildings"]["features"])


def test_budget_keeps_the_largest_features(demo_store_url: str) -> None:
    """Over budget, the smallest polygons are dropped first (ties by fid), never an arbitrary cut."""
    store = shared_store(demo_store_url)
    q = query("buildings", 14, max_features=10)
    kept = {f["id"] for f in decode(store.render_tile(q).data)["buildings"]["features"]}
    frame = store.read_frame("buildings", bbox=q.buffered_storage_bounds(4326))
    frame = frame[frame.intersects(shapely.box(*q.buffered_storage_bounds(4326)))]
    ranked = sorted(zip(frame.geometry.area, frame.index), key=lambda af: (-af[0], af[1]))
    assert len(ranked) > 10
    assert kept == {int(fid) for _, fid in ranked[:10]}


def test_small_features_drop_out_at_low_zoom(demo_store_url: str) -> None:
    store = shared_store(demo_store_url)
    q = query("buildings", 11)
    frame = store.read_frame("buildings", bbox=q.buffered_storage_bounds(4326))
    shown = decode(store.render_tile(q).data).get("buildings", {"features": []})["features"]
    px_w, px_h = q.storage_pixel(4326)
    big_enough = int((frame.geometry.area >= px_w * px_h).sum())
    assert len(shown) <= big_enough < len(frame)  # polygons under one square pixel are gone
    deeper = decode(store.render_tile(query("buildings", 16)).data)["buildings"]["features"]
    assert deeper  # and they are back when zoomed in


def test_points_are_thinned_one_per_cell(demo_store_url: str) -> None:
    store = shared_store(demo_store_url)
    full = counts(decode(store.render_tile(query("pois", 14)).data))["pois"]
    thinned = counts(decode(store.render_tile(query("pois", 14, max_features=16)).data))["pois"]
    # 16 features -> cells of a quarter tile: at most 4 x 4 cells plus the buffer's edge cells
    assert thinned <= 25 < full


def test_engine_halves_the_budget_until_the_tile_fits(demo_store_url: str) -> None:
    store = shared_store(demo_store_url)
    ts = collection(store, "roads")
    tile = tile_at("WebMercatorQuad", 14)
    full = TileEngine(store, TileCache()).render(ts, WEB, tile)
    assert len(full.data) > 20_000
    capped = TileEngine(store, TileCache(), max_bytes=20_000).render(ts, WEB, tile)
    assert 0 < len(capped.data) <= 20_000
    assert counts(decode(capped.data))["roads"] < counts(decode(full.data))["roads"]


def test_empty_tile_is_empty_bytes(demo_store_url: str) -> None:
    store = shared_store(demo_store_url)
    q = query("buildings", 14)
    far = replace(q, storage_bounds={4326: (0.0, 0.0, 0.01, 0.01)})
    assert store.render_tile(far).data == b""


def test_unknown_layer_or_attribute(demo_store_url: str) -> None:
    store = shared_store(demo_store_url)
    with pytest.raises(LayerNotFound):
        store.render_tile(query("nope", 14))
    with pytest.raises(InvalidQuery):
        store.render_tile(query("buildings", 14, ("no_such_field",)))


def test_layer_below_visibility_at_a_zoom_is_not_queried(demo_store_url: str) -> None:
    """The release records each polygon/line layer's largest feature; where even that one is under
    the visibility threshold the layer is left out of the tile's SQL — with the same (empty) result
    the query would give — and from where it can be seen on, it is queried again."""
    from cim.store.postgis.dialect import PostgisDialect, PostgisTileDialect
    from cim.store.sql.tiles import invisible, tile_statement

    dialect = PostgisTileDialect(PostgisDialect("cim_r0001"))

    store = shared_store(demo_store_url)
    info = store.layer("buildings")
    assert info.max_size is not None and info.max_size > 0
    frame = store.read_frame("buildings")
    assert info.max_size == pytest.approx(float(frame.geometry.area.max()), rel=1e-9)
    hidden = [z for z in range(4, 16) if invisible(info, query("buildings", z))]
    assert hidden and hidden == list(range(4, hidden[-1] + 1))  # the lowest zooms, then never again
    deepest = hidden[-1]
    assert store.render_tile(query("buildings", deepest)).data == b""
    assert tile_statement([info], query("buildings", deepest), dialect).sql.startswith("SELECT 0 AS ord, NULL")
    visible = query("buildings", deepest + 1)
    assert "buildings" in tile_statement([info], visible, dialect).sql
    # editable layers are always queried (an edit may add a larger feature than the release had)
    landuse = store.layer("landuse")
    assert landuse.spec.editable and not invisible(landuse, query("landuse", 0))
