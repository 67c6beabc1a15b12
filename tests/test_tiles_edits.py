"""Edits (OGC API - Features Part 4) in vector tiles, on both stores: created and replaced features
appear in the tiles of their collection and of the composite, deleted ones disappear; the cache key
and ETag of a tileset with an editable layer follow the store's edit generation (edits by another
process too), those of other tilesets stay as they were; such tiles are never ``immutable``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Iterator

import jwt
import pytest
import shapely
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from cim.store import Edit, LayerData, ReleaseDraft, open_store
from cim.tms import tile_matrix_sets
from support.citydata import building_frame
from layers.catalog import CATALOG
from ogcapi.app import create_app
from tiles.engine import ENGINE_VERSION
from support.tiles import EXTENT, coordinates, decode, tile_at, tile_path, wait_until

pytestmark = pytest.mark.slow  # each test publishes its own city and edits it (~2-3 s each)


PARCELS = "/collections/parcels/items"
#: z15 tile holding the three release parcels (117.174-117.179, 39.142-39.143) and two buildings
TILE = tile_at("WebMercatorQuad", 15, 117.1765, 39.1425)
PARCEL_TILE = tile_path("/collections/parcels/tiles", "WebMercatorQuad", TILE)
COMPOSITE_TILE = tile_path("/tiles", "WebMercatorQuad", TILE)
BUILDING_TILE = tile_path("/collections/buildings/tiles", "WebMercatorQuad", TILE)
#: a new parcel between release parcels 1 and 2, and where a PUT moves it (between 2 and 3)
NEW = shapely.box(117.1752, 39.1421, 117.1758, 39.1429)
MOVED = shapely.box(117.1772, 39.1421, 117.1778, 39.1429)


def parcels_layer() -> LayerData:
    import geopandas as gpd

    boxes = [shapely.MultiPolygon([shapely.box(117.174 + i * 0.002, 39.142, 117.175 + i * 0.002, 39.143)]) for i in range(3)]
    frame = gpd.GeoDataFrame(
        {"parcel_id": ["120101-001", "120101-002", "120101-003"], "land_use": ["R2", "B1", "G1"],
         "area_m2": [9500.0, 12000.0, None], "plot_ratio": [2.5, 4.0, None],
         "source": ["survey"] * 3, "source_id": ["p1", "p2", "p3"]},
        geometry=boxes, crs=4326,
    )  # fmt: skip
    return LayerData(CATALOG["parcels"], frame)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def city(store_url: str, rsa_key: rsa.RSAPrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app over parcels (editable) and buildings, with a disk tile cache on both stores."""
    monkeypatch.setenv("CIM_TILE_CACHE", str(tmp_path / "tile-cache"))
    public = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", public.decode())
    with open_store(store_url) as store:
        store.publish(ReleaseDraft([parcels_layer(), LayerData(CATALOG["buildings"], building_frame(4326))], srid=4326))
    with TestClient(create_app(store_url, server_url="http://testserver")) as client:
        client.headers["Authorization"] = "Bearer " + jwt.encode(
            {"sub": "planner-7", "roles": ["editor"], "exp": int(time.time()) + 600}, rsa_key, algorithm="RS256"
        )
        client.store_url = store_url  # type: ignore[attr-defined]
        yield client
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def body(geometry: shapely.Polygon, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": shapely.geometry.mapping(geometry),
            "properties": {"parcel_id": "120101-900", "land_use": "R2", **props}}  # fmt: skip


def tile(client: TestClient, path: str = PARCEL_TILE, **headers: str) -> tuple[int, str, dict[str, dict[str, Any]]]:
    """(status, ETag, the parcels of the tile by parcel_id) of a tile."""
    response = client.get(path, headers=headers)
    assert response.status_code in (200, 204, 304), response.text
    layers = decode(response.content) if response.status_code == 200 else {}
    parcels = {f["properties"]["parcel_id"]: f for f in layers.get("parcels", {"features": []})["features"]}
    return response.status_code, response.headers["etag"], parcels


def tile_x(lon: float) -> float:
    """A longitude as a column of TILE's 4096 units (Web Mercator x is linear in longitude)."""
    bounds = tile_matrix_sets()["WebMercatorQuad"].bounds(TILE)
    return (lon - bounds.left) / (bounds.right - bounds.left) * EXTENT


def x_range(feature: dict[str, Any]) -> tuple[float, float]:
    xs = [x for x, _ in coordinates(feature["geometry"])]
    return min(xs), max(xs)


def test_created_parcel_shows_in_collection_and_composite_tiles(city: TestClient) -> None:
    store = city.app.state.store
    assert store.edit_generation() == 0
    status, parcel_etag, before = tile(city)
    _, composite_etag, in_composite = tile(city, COMPOSITE_TILE)
    assert status == 200 and set(before) == set(in_composite) == {"120101-001", "120101-002", "120101-003"}

    created = city.post(PARCELS, json=body(NEW, plot_ratio=3.5))
    assert created.status_code == 201, created.text
    fid = int(created.headers["Location"].rsplit("/", 1)[1])
    assert store.edit_generation() > 0
    for path, old_etag in ((PARCEL_TILE, parcel_etag), (COMPOSITE_TILE, composite_etag)):
        status, etag, parcels = tile(city, path)
        assert status == 200 and etag != old_etag
        assert set(parcels) == {"120101-001", "120101-002", "120101-003", "120101-900"}
        new = parcels["120101-900"]
        assert new["properties"] == {"parcel_id": "120101-900", "land_use": "R2", "plot_ratio": 3.5}
        assert new["geometry"]["type"] == "Polygon"
        assert x_range(new) == pytest.approx((tile_x(NEW.bounds[0]), tile_x(NEW.bounds[2])), abs=2)
        if city.store_url.startswith("postgresql"):  # DuckDB's ST_AsMVT takes 32-bit ids only
            assert new["id"] == fid
        # the old ETag is stale: the new tile, not 304; the new one is current
        assert tile(city, path, **{"If-None-Match": old_etag})[0] == 200
        assert tile(city, path, **{"If-None-Match": etag})[0] == 304


def test_replaced_and_deleted_parcels_change_the_tile(city: TestClient) -> None:
    location = city.post(PARCELS, json=body(NEW)).headers["Location"].replace("http://testserver", "")
    _, created_etag, parcels = tile(city)
    created_x = x_range(parcels["120101-900"])

    assert city.put(location, json=body(MOVED, parcel_id="120101-901", land_use="B1")).status_code == 204
    _, replaced_etag, parcels = tile(city)
    assert "120101-900" not in parcels and parcels["120101-901"]["properties"]["land_use"] == "B1"
    assert created_x == pytest.approx((tile_x(NEW.bounds[0]), tile_x(NEW.bounds[2])), abs=2)
    assert x_range(parcels["120101-901"]) == pytest.approx((tile_x(MOVED.bounds[0]), tile_x(MOVED.bounds[2])), abs=2)
    assert replaced_etag != created_etag
    assert tile(city, **{"If-None-Match": created_etag})[0] == 200

    assert city.delete(location).status_code == 204
    assert city.delete(f"{PARCELS}/2").status_code == 204  # a feature of the release
    _, deleted_etag, parcels = tile(city)
    assert set(parcels) == {"120101-001", "120101-003"}
    assert deleted_etag not in (created_etag, replaced_etag)
    _, _, in_composite = tile(city, COMPOSITE_TILE)
    assert set(in_composite) == {"120101-001", "120101-003"}


def test_edit_by_another_process_changes_the_served_tile(city: TestClient) -> None:
    _, etag, parcels = tile(city)
    assert parcels["120101-002"]["properties"]["land_use"] == "B1"
    # another store object on the same URL: what the CLI or a second `cim serve` worker is; the
    # PostGIS server reads the edit generation with the current release (CURRENT_TTL, 1 s)
    with open_store(city.store_url) as other:
        other.edit(Edit("parcels", "update", "cli", fid=2, body={"properties": {"land_use": "M1"}}))
    assert wait_until(lambda: tile(city)[1] != etag)
    _, after, parcels = tile(city)
    assert parcels["120101-002"]["properties"]["land_use"] == "M1"
    assert tile(city, **{"If-None-Match": etag})[0] == 200
    assert tile(city, **{"If-None-Match": after})[0] == 304


def test_tilesets_without_editable_layers_keep_their_keys(city: TestClient) -> None:
    first = city.get(BUILDING_TILE)
    assert first.status_code == 200 and decode(first.content)["buildings"]["features"]
    etag = first.headers["etag"]
    assert etag.startswith('"r0001-') and f".v{ENGINE_VERSION}-" in etag  # no edit generation in it
    assert city.post(PARCELS, json=body(NEW)).status_code == 201
    again = city.get(BUILDING_TILE, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    assert city.get(BUILDING_TILE).content == first.content


def test_pinned_tiles_of_editable_tilesets_are_not_immutable(city: TestClient) -> None:
    for path in (PARCEL_TILE, COMPOSITE_TILE):
        response = city.get(path, params={"release": 1})
        assert response.status_code == 200 and response.headers["cache-control"] == "public, max-age=60"
    pinned = city.get(BUILDING_TILE, params={"release": 1})
    assert pinned.headers["cache-control"] == "public, max-age=86400, immutable"


def test_disk_cache_keys_name_the_edit_generation(city: TestClient, tmp_path: Path) -> None:
    generations = []
    for _ in range(2):  # tiles of generation 0 (no edit yet), an edit, tiles of the next, an edit
        assert tile(city)[0] == tile(city, BUILDING_TILE)[0] == 200
        generations.append(city.app.state.store.edit_generation())
        assert city.post(PARCELS, json=body(NEW)).status_code == 201
    versions = {
        name: {p.parent.name for p in (tmp_path / "tile-cache").glob(f"r0001-*/collections.{name}")}
        for name in ("parcels", "buildings")
    }
    [release] = versions["buildings"]
    assert release.endswith(f".v{ENGINE_VERSION}")  # the key it had before edits existed
    assert generations[0] == 0 and generations[1] > 0
    assert versions["parcels"] == {release, f"{release}.e{generations[1]}"}


def test_budget_keeps_the_largest_of_release_and_edits(city: TestClient) -> None:
    from cim.store import TileLayerQuery
    from tiles.engine import TileEngine
    from tiles.tilesets import collection
    from cim.tms import get_tms

    store = city.app.state.store
    big = shapely.box(117.1741, 39.1405, 117.1779, 39.1419)  # larger than any release parcel
    store.edit(Edit("parcels", "create", "planner-7", body=body(big, parcel_id="120101-big")))
    engine = TileEngine(store)
    tms = get_tms("WebMercatorQuad")
    query = engine.query(collection(store, "parcels"), tms, TILE)
    assert query is not None and query.layers == (TileLayerQuery("parcels", ("parcel_id", "land_use", "plot_ratio")),)
    kept = decode(store.render_tile(dataclasses.replace(query, max_features=1)).data)["parcels"]["features"]
    assert [f["properties"]["parcel_id"] for f in kept] == ["120101-big"]


def test_postgis_migration_indexes_overlays_made_before(new_postgis_db: Any) -> None:
    import psycopg

    url = new_postgis_db()
    with open_store(url) as store:
        store.publish(ReleaseDraft([parcels_layer()], srid=4326))
    with psycopg.connect(url, autocommit=True) as conn:  # a store as schema version 2 left it
        conn.execute("DROP INDEX cim_live.parcels_geom_idx")
        conn.execute("DELETE FROM cim.schema_version WHERE version >= 3")
    with open_store(url):
        pass
    with psycopg.connect(url) as conn:
        indexes = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'cim_live' AND tablename = 'parcels'").fetchall()
        versions = [r[0] for r in conn.execute("SELECT version FROM cim.schema_version ORDER BY version")]
    from cim.store.postgis.schema import MIGRATIONS

    assert any("USING gist (geom)" in r[0] for r in indexes) and versions == list(range(1, len(MIGRATIONS) + 1))
