"""OGC API - Features Part 4 on both stores: create, replace, update and delete on editable layers with
a JWT (RS256/ES256, keys made here with ``cryptography``), edits merged into every read, recorded in
the edit log, surviving new releases; 401/403/405/400 where they belong."""

from __future__ import annotations

import time
from typing import Any, Iterator

import geopandas as gpd
import jwt
import pytest
import shapely
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cim.store import LayerData, ReleaseDraft, open_store
from support.citydata import building_frame
from support.server import app_client
from layers.catalog import CATALOG

PARCELS = "/collections/parcels/items"
#: a parcel in Tianjin (lon/lat) and one beside it
SQUARE = [[117.170, 39.140], [117.171, 39.140], [117.171, 39.141], [117.170, 39.141], [117.170, 39.140]]
OTHER = [[117.172, 39.140], [117.173, 39.140], [117.173, 39.141], [117.172, 39.141], [117.172, 39.140]]


def pem(private_key: Any) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: Any, sub: str = "planner-7", roles: Any = ("editor",), algorithm: str = "RS256", **claims: Any) -> str:
    payload = {"sub": sub, "roles": list(roles) if not isinstance(roles, str) else roles, "exp": int(time.time()) + 600}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)


def parcels_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"parcel_id": ["120101-001", "120101-002", "120101-003"], "land_use": ["R2", "B1", "G1"],
         "area_m2": [9500.0, 12000.0, None], "plot_ratio": [2.5, 4.0, None],
         "source": ["survey"] * 3, "source_id": ["p1", "p2", "p3"]},
        geometry=[shapely.MultiPolygon([shapely.box(117.174 + i * 0.002, 39.142, 117.175 + i * 0.002, 39.143)]) for i in range(3)],
        crs=4326,
    )  # fmt: skip


def publish(url: str) -> None:
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[
            LayerData(CATALOG["parcels"], parcels_frame()),
            LayerData(CATALOG["buildings"], building_frame(4326)),
        ], srid=4326))  # fmt: skip


@pytest.fixture
def app(store_url: str, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    publish(store_url)
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", pem(rsa_key))
    with app_client(store_url) as client:
        yield client


def auth(key: Any, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(key, **kwargs)}"}


def feature(ring: list, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"parcel_id": "120101-900", "land_use": "R2", **props}}  # fmt: skip


def local(href: str) -> str:
    return href.replace("http://testserver", "")


def count(client: Any, **params: Any) -> int:
    return client.get(PARCELS, params={"limit": 1, **params}).json()["numberMatched"]


def test_create_replace_update_delete(app, rsa_key) -> None:
    headers = auth(rsa_key)
    before = count(app)
    created = app.post(PARCELS, json=feature(SQUARE, area_m2=1000.5), headers=headers)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert created.json()["geometry"]["type"] == "MultiPolygon"  # the Polygon was promoted
    got = app.get(local(location)).json()
    fid = got["id"]
    assert got["properties"]["parcel_id"] == "120101-900" and got["properties"]["area_m2"] == 1000.5
    assert got["properties"]["source"] == "ogcapi"
    assert count(app) == before + 1
    assert fid in {f["id"] for f in app.get(PARCELS, params={"filter": "land_use = 'R2'"}).json()["features"]}
    assert fid in {f["id"] for f in app.get(PARCELS, params={"bbox": "117.1699,39.1399,117.1711,39.1411"}).json()["features"]}

    replaced = app.put(local(location), json=feature(OTHER, parcel_id="120101-901", land_use="B1"), headers=headers)
    assert replaced.status_code == 204, replaced.text
    got = app.get(local(location)).json()
    assert got["properties"]["parcel_id"] == "120101-901" and got["properties"]["area_m2"] is None
    assert shapely.geometry.shape(got["geometry"]).equals(shapely.MultiPolygon([shapely.Polygon(OTHER)]))

    patched = app.patch(local(location), json={"properties": {"plot_ratio": 3.2}}, headers=headers)
    assert patched.status_code == 204, patched.text
    got = app.get(local(location)).json()
    assert got["properties"]["plot_ratio"] == 3.2 and got["properties"]["parcel_id"] == "120101-901"
    assert shapely.geometry.shape(got["geometry"]).equals(shapely.MultiPolygon([shapely.Polygon(OTHER)]))

    assert app.delete(local(location), headers=headers).status_code == 204
    assert app.get(local(location)).status_code == 404
    assert count(app) == before
    assert app.delete(local(location), headers=headers).status_code == 404

    log = app.app.state.store.edit_log("parcels")
    assert [e.action for e in log] == ["delete", "update", "replace", "create"]
    assert {e.who for e in log} == {"planner-7"} and {e.fid for e in log} == {fid}
    assert log[1].feature["properties"]["plot_ratio"] == 3.2 and log[0].feature is None


def test_edits_of_release_features_show_in_every_read(app, rsa_key) -> None:
    headers = auth(rsa_key)
    assert app.patch(f"{PARCELS}/1", json={"properties": {"land_use": "M1"}}, headers=headers).status_code == 204
    assert app.delete(f"{PARCELS}/2", headers=headers).status_code == 204
    assert app.get(f"{PARCELS}/1").json()["properties"]["land_use"] == "M1"
    assert app.get(f"{PARCELS}/2").status_code == 404
    doc = app.get(PARCELS, params={"limit": 1}).json()
    assert doc["numberMatched"] == 2
    seen = [f["id"] for f in doc["features"]]
    while nxt := [lk["href"] for lk in doc["links"] if lk["rel"] == "next"]:
        doc = app.get(local(nxt[0])).json()
        seen += [f["id"] for f in doc["features"]]
    assert seen == [1, 3]
    assert [f["id"] for f in app.get(PARCELS, params={"land_use": "M1"}).json()["features"]] == [1]
    assert count(app, filter="land_use = 'B1'") == 0
    # another process (another server worker, the Python API) reads the same
    with open_store(app.store_url) as other:
        assert other.get_feature("parcels", 1)["properties"]["land_use"] == "M1"
        assert sorted(other.read_frame("parcels").index) == [1, 3]


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_edits_survive_a_new_release(app, rsa_key) -> None:
    created = app.post(PARCELS, json=feature(SQUARE), headers=auth(rsa_key))
    app.patch(f"{PARCELS}/1", json={"properties": {"land_use": "M1"}}, headers=auth(rsa_key))
    publish(app.store_url)
    time.sleep(1.1)  # the PostGIS store re-reads the current release after a second
    assert app.get(local(created.headers["Location"])).status_code == 200
    assert app.get(f"{PARCELS}/1").json()["properties"]["land_use"] == "M1"
    assert count(app) == 4


def test_writes_need_an_editor_token(app, rsa_key) -> None:
    body = feature(SQUARE)
    missing = app.post(PARCELS, json=body)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["code"] == "Unauthorized"
    assert app.post(PARCELS, json=body, headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert app.post(PARCELS, json=body, headers=auth(stranger)).status_code == 401
    expired = app.post(PARCELS, json=body, headers=auth(rsa_key, exp=int(time.time()) - 10))
    assert expired.status_code == 401 and "expired" in expired.json()["description"]
    viewer = app.post(PARCELS, json=body, headers=auth(rsa_key, roles=["viewer"]))
    assert viewer.status_code == 403 and "insufficient_scope" in viewer.headers["WWW-Authenticate"]
    hs256 = jwt.encode({"sub": "x", "roles": ["editor"], "exp": int(time.time()) + 60}, "secret", algorithm="HS256")
    assert app.post(PARCELS, json=body, headers={"Authorization": f"Bearer {hs256}"}).status_code == 401
    assert app.post(PARCELS, json=body, headers=auth(rsa_key, roles="viewer editor")).status_code == 201
    assert app.get(PARCELS).status_code == 200  # reads stay public


def test_es256_tokens(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from ogcapi.app import create_app

    publish(store_url)
    key = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", pem(key))
    with TestClient(create_app(store_url, server_url="http://testserver")) as client:
        response = client.post(PARCELS, json=feature(SQUARE), headers=auth(key, algorithm="ES256"))
        assert response.status_code == 201, response.text
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


BOWTIE = [[117.170, 39.140], [117.171, 39.141], [117.171, 39.140], [117.170, 39.141], [117.170, 39.140]]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ({"type": "FeatureCollection", "features": []}, "not a GeoJSON Feature"),
        ([1, 2], "not a GeoJSON Feature"),
        ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [117.17, 39.14]},
          "properties": {"parcel_id": "x"}}, "MultiPolygon"),  # fmt: skip
        (feature(BOWTIE), "invalid geometry"),
        ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": "nope"}, "properties": {"parcel_id": "x"}},
         "not a GeoJSON geometry"),  # fmt: skip
        ({"type": "Feature", "geometry": None, "properties": {"parcel_id": "x"}}, "no geometry"),
        (feature(SQUARE, colour="red"), "unknown property 'colour'"),
        (feature(SQUARE, area_m2="big"), "property 'area_m2' must be a number"),
        (feature(SQUARE, parcel_id=None), "required properties missing or null: parcel_id"),
    ],
)
def test_bad_bodies_are_400_with_the_reason(app, rsa_key, body: Any, reason: str) -> None:
    headers = auth(rsa_key)
    if isinstance(body, str):
        response = app.post(PARCELS, content=body, headers={**headers, "Content-Type": "application/geo+json"})
    else:
        response = app.post(PARCELS, json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert reason in response.json()["description"]
    assert count(app) == 3  # nothing written


def test_other_refusals(app, rsa_key) -> None:
    headers = auth(rsa_key)
    assert app.put(f"{PARCELS}/999", json=feature(SQUARE), headers=headers).status_code == 404
    assert app.patch(f"{PARCELS}/abc", json={"properties": {}}, headers=headers).status_code == 404
    not_editable = app.post("/collections/buildings/items", json=feature(SQUARE), headers=headers)
    assert not_editable.status_code == 405 and not_editable.headers["Allow"] == "GET, HEAD"
    assert app.post("/collections/nope/items", json=feature(SQUARE), headers=headers).status_code == 404
    crs = {**headers, "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/99999>"}
    assert app.post(PARCELS, json=feature(SQUARE), headers=crs).status_code == 400
    wrong_id = app.put(f"{PARCELS}/1", json={**feature(SQUARE), "id": 2}, headers=headers)
    assert wrong_id.status_code == 400 and "id" in wrong_id.json()["description"]


def test_content_crs_in_authority_axis_order(app, rsa_key) -> None:
    lat_lon = [[y, x] for x, y in SQUARE]
    headers = {**auth(rsa_key), "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4326>"}
    created = app.post(PARCELS, json=feature(lat_lon), headers=headers)
    assert created.status_code == 201, created.text
    stored = shapely.geometry.shape(app.get(local(created.headers["Location"])).json()["geometry"])
    assert stored.equals(shapely.MultiPolygon([shapely.Polygon(SQUARE)]))


def test_part4_is_declared_and_described(app) -> None:
    conforms = app.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update" in conforms
    paths = app.get("/openapi", params={"f": "json"}).json()["paths"]
    assert {"put", "patch", "delete"} <= paths["/collections/parcels/items/{featureId}"].keys()
    assert "post" in paths["/collections/parcels/items"]
    assert not {"put", "patch", "delete"} & paths["/collections/buildings/items/{featureId}"].keys()
    assert "post" not in paths["/collections/buildings/items"]
