"""Read access by layer, on both stores: a layer built with ``restricted=True`` serves its items, single
items and tiles (its own tileset and the composite base map) only to bearer tokens with the reader
role — 401 without a token, 403 without the role — while public layers and metadata stay anonymous;
restricted tiles are never kept in, nor answered from, the tile fast path."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from cim.store import LayerData, ReleaseDraft, open_store
from support.citydata import building_frame
from layers.catalog import CATALOG
from test_api_edits import OTHER, parcels_frame
from support.tiles import tile_at, tile_path

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
#: inside the parcels of parcels_frame()
PARCEL_TILE = tile_path("/collections/parcels/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 15, 117.1745, 39.1425))
COMPOSITE_TILE = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 15, 117.1745, 39.1425))


def bearer(*roles: str, sub: str = "analyst-3") -> dict[str, str]:
    claims = {"sub": sub, "roles": list(roles), "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='RS256')}"}


def restricted_parcels(**changes: Any) -> LayerData:
    spec = dataclasses.replace(CATALOG["parcels"], restricted=True, **changes)
    return LayerData(spec, parcels_frame())


def publish(url: str, parcels: LayerData) -> None:
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[parcels, LayerData(CATALOG["buildings"], building_frame(4326))], srid=4326))


def client(url: str, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    from ogcapi.app import create_app

    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())  # fmt: skip
    return TestClient(create_app(url, server_url="http://testserver"))


@pytest.fixture
def app(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    publish(store_url, restricted_parcels())
    with client(store_url, monkeypatch) as c:
        yield c
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def assert_refused(response: Any, status: int) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) >= {"code", "description"}


def test_the_restriction_is_stored_with_the_release(store_url: str) -> None:
    publish(store_url, restricted_parcels(read_role="planning-secret"))
    with open_store(store_url) as store:
        spec = store.layer("parcels").spec
        assert spec.restricted and spec.read_role == "planning-secret"
        assert not store.layer("buildings").spec.restricted


def test_read_role_without_restricted_is_refused() -> None:
    with pytest.raises(ValueError, match="only for restricted layers"):
        dataclasses.replace(CATALOG["parcels"], read_role="x")


def test_restricted_features_need_the_reader_role(app: TestClient) -> None:
    for path in ("/collections/parcels/items", "/collections/parcels/items/1", "/collections/parcels/items?f=json&limit=1"):
        assert_refused(app.get(path), 401)
        assert_refused(app.get(path, headers=bearer("editor")), 403)
        assert_refused(app.get(path, headers={"Authorization": "Bearer forged.token.here"}), 401)
        allowed = app.get(path, headers=bearer("reader"))
        assert allowed.status_code == 200, allowed.text[:300]
        assert allowed.headers["Cache-Control"] == "private, no-cache" and "Authorization" in allowed.headers["Vary"]
    assert len(app.get("/collections/parcels/items", headers=bearer("reader")).json()["features"]) == 3
    # public layers and metadata stay anonymous
    assert app.get("/collections/buildings/items?limit=1").status_code == 200
    for path in ("/collections", "/collections/parcels", "/collections/parcels/queryables", "/collections/parcels/tiles"):
        assert app.get(path).status_code == 200, path


def test_writes_to_a_restricted_layer_need_its_role_too(app: TestClient) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [OTHER]},
               "properties": {"parcel_id": "H6-1", "land_use": "R2", "source": "survey", "source_id": "h6-1"}}  # fmt: skip
    assert_refused(app.post("/collections/parcels/items", json=feature, headers=bearer("editor")), 403)
    created = app.post("/collections/parcels/items", json=feature, headers=bearer("editor", "reader"))
    assert created.status_code == 201, created.text[:300]


def test_restricted_tiles_are_never_kept_by_the_fast_path(app: TestClient) -> None:
    fast_path = app.app.tile_fast_path  # type: ignore[attr-defined]
    for _ in range(2):
        tile = app.get(PARCEL_TILE, headers=bearer("reader"))
        assert tile.status_code == 200 and tile.content
        assert tile.headers["Cache-Control"] == "private, no-cache"
    assert_refused(app.get(PARCEL_TILE), 401)  # answered from memory before the fix
    assert_refused(app.get(PARCEL_TILE, headers=bearer("editor")), 403)
    assert not any(key[0] == PARCEL_TILE for key in fast_path._entries)
    # the composite carries the restricted layer: it needs the role as well
    for _ in range(2):
        assert app.get(COMPOSITE_TILE, headers=bearer("reader")).status_code == 200
    assert_refused(app.get(COMPOSITE_TILE), 401)
    assert len(fast_path) == 0
    # a public layer's tile is kept as before (the fast path is at work in this app)
    public = tile_path("/collections/buildings/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 15, 117.1745, 39.1425))
    app.get(public)
    app.get(public)
    assert any(key[0] == public for key in fast_path._entries)


def test_without_restricted_layers_the_base_map_stays_anonymous(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(store_url, LayerData(CATALOG["parcels"], parcels_frame()))
    with client(store_url, monkeypatch) as c:
        assert c.get(COMPOSITE_TILE).status_code == 200
        assert c.get(PARCEL_TILE).status_code == 200
        assert c.get("/collections/parcels/items").status_code == 200
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def test_a_layer_with_its_own_read_role(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(store_url, restricted_parcels(read_role="planning-secret"))
    with client(store_url, monkeypatch) as c:
        assert_refused(c.get("/collections/parcels/items", headers=bearer("reader")), 403)
        assert c.get("/collections/parcels/items", headers=bearer("planning-secret")).status_code == 200
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def test_a_restricted_raster_layers_map_tiles(store_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.rasters import HILL, raster_config

    from cim.build import load_config, prepare

    monkeypatch.setenv("CIM_RASTER_DIR", str(tmp_path / "cogs"))
    monkeypatch.setenv("CIM_TILE_CACHE", str(tmp_path / "tile-cache"))
    prepared = prepare(load_config(raster_config(tmp_path / "city", ortho=None)))
    try:
        prepared.draft.layers = [
            dataclasses.replace(layer, spec=dataclasses.replace(layer.spec, restricted=True)) for layer in prepared.draft.layers
        ]
        with open_store(store_url) as store:
            store.publish(prepared.draft)
    finally:
        prepared.discard()
    path = tile_path("/collections/dem/map/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 12, *HILL))
    with client(store_url, monkeypatch) as c:
        assert_refused(c.get(path), 401)
        assert_refused(c.get(path, headers=bearer("editor")), 403)
        for _ in range(2):
            allowed = c.get(path, headers=bearer("reader"))
            assert allowed.status_code == 200 and allowed.headers["Cache-Control"] == "private, no-cache"
        assert_refused(c.get(path), 401)
        assert c.get("/collections/dem/map/tiles").status_code == 200  # metadata: public
        # its terrain tiles too (ogcapi/terrain_routes.py); layer.json is metadata
        terrain = "/collections/dem/terrain/0/1/0.terrain"
        assert_refused(c.get(terrain), 401)
        assert_refused(c.get(terrain, headers=bearer("editor")), 403)
        for _ in range(2):
            allowed = c.get(terrain, headers=bearer("reader"))
            assert allowed.status_code == 200 and allowed.headers["Cache-Control"] == "private, no-cache"
        assert_refused(c.get(terrain), 401)
        assert c.get("/collections/dem/terrain/layer.json").status_code == 200
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def test_restricted_tiles_under_the_uvicorn_tile_protocol(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As `cim serve` runs: the HTTP protocol answers repeated tiles itself (ogcapi/tiles_protocol.py),
    but never a restricted one — it reaches the app, and the check, every time."""
    from test_tiles_protocol import Server

    publish(store_url, restricted_parcels())
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())  # fmt: skip
    server = Server(store_url)
    try:
        conn = server.connect()
        token = bearer("reader")["Authorization"]
        calls = server.app.calls
        for _ in range(3):
            assert conn.get(PARCEL_TILE, f"Authorization: {token}").status == 200
        assert conn.get(PARCEL_TILE).status == 401
        assert server.app.calls == calls + 4 and server.fast_path.answered == 0
        public = tile_path("/collections/buildings/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 15, 117.1745, 39.1425))
        conn.get(public)
        conn.get(public)
        assert server.fast_path.answered == 1  # the protocol's shortcut is at work for public tiles
        conn.close()
    finally:
        server.stop()
        from cim.store import _shared

        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()
