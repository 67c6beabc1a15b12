"""Writes (OGC API - Features Part 4) of hostile or careless bodies, on both stores: coordinates out
of the CRS's range or the storage CRS's area of use, bodies too large, too deep or with too many
vertices, numbers JSON has not, NUL characters, huge strings and wrong media types are refused with a
4xx naming what is wrong, and nothing is written; a stored geometry that cannot be transformed into
the requested CRS is served as a null geometry in valid JSON, never as broken JSON or a 5xx."""

from __future__ import annotations

import json
import math
from typing import Any, Iterator

import geopandas as gpd
import pytest
import shapely
from cryptography.hazmat.primitives.asymmetric import rsa
from test_api_edits import PARCELS, SQUARE, auth, count, feature, local, parcels_frame, pem, token

from cim.limits import limits
from cim.store import LayerData, ReleaseDraft, open_store
from support.server import app_client
from layers.catalog import CATALOG

WEB_MERCATOR = "http://www.opengis.net/def/crs/EPSG/0/3857"
#: SQUARE (a parcel in Tianjin) in EPSG:3857 metres
SQUARE_3857 = [[round(x, 3), round(y, 3)] for x, y in shapely.get_coordinates(
    gpd.GeoSeries([shapely.Polygon(SQUARE)], crs=4326).to_crs(3857).iloc[0].exterior)]  # fmt: skip
#: what a collection holds when the fixture starts
START = 3


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _client(store_url: str, key: Any, monkeypatch: pytest.MonkeyPatch, frame: gpd.GeoDataFrame, srid: int) -> Iterator[Any]:
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=[LayerData(CATALOG["parcels"], frame)], srid=srid))
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", pem(key))
    with app_client(store_url) as client:
        yield client


@pytest.fixture
def app(store_url: str, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An editable ``parcels`` layer of three features, stored in EPSG:4326."""
    yield from _client(store_url, rsa_key, monkeypatch, parcels_frame(), 4326)


@pytest.fixture
def gk_app(store_url: str, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The same layer stored in the CGCS2000 Gauss-Krüger zone of 117°E (EPSG:4548), whose area of
    use is 115.5°E..118.5°E in China."""
    yield from _client(store_url, rsa_key, monkeypatch, parcels_frame().to_crs(4548), 4548)


def post(client: Any, key: Any, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(PARCELS, content=content, headers={**auth(key), "Content-Type": "application/geo+json", **headers})


def refused(response: Any, status: int, *words: str) -> str:
    """The description of an OGC exception answer of ``status``, which names ``words``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"code", "type", "description"}, body
    for word in words:
        assert word in body["description"], body["description"]
    return body["description"]


def ring_at(lon: float, lat: float, size: float = 0.001) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


# 1. coordinates: the body CRS's range, the storage CRS's area of use, Content-Crs


OUT_OF_RANGE = [
    (ring_at(500, 95), ("(500, 95)", "CRS84", "Content-Crs")),
    (ring_at(117.17, 90.0), ("90.001", "latitude")),
    (ring_at(-180.5, 10), ("-180.5",)),
    (SQUARE_3857, (f"({SQUARE_3857[0][0]:g}, {SQUARE_3857[0][1]:g})", "CRS84", "Content-Crs")),  # metres sent as degrees
]


def test_coordinates_outside_the_crs84_range_are_400(app, rsa_key) -> None:
    for ring, words in OUT_OF_RANGE:
        refused(post(app, rsa_key, feature(ring)), 400, *words)
        refused(app.put(f"{PARCELS}/1", json=feature(ring), headers=auth(rsa_key)), 400, *words)
        patch = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}}
        refused(app.patch(f"{PARCELS}/1", json=patch, headers=auth(rsa_key)), 400, *words)
    assert count(app) == START
    assert app.get(f"{PARCELS}/1", params={"crs": WEB_MERCATOR}).json()["geometry"] is not None


def test_content_crs_is_honoured(app, rsa_key) -> None:
    created = post(app, rsa_key, feature(SQUARE_3857), **{"Content-Crs": f"<{WEB_MERCATOR}>"})
    assert created.status_code == 201, created.text
    stored = shapely.geometry.shape(app.get(local(created.headers["Location"])).json()["geometry"])
    assert stored.equals_exact(shapely.MultiPolygon([shapely.Polygon(SQUARE)]), tolerance=1e-6)
    # degrees declared as EPSG:3857 metres lie in the Gulf of Guinea: inside 3857's range, so stored
    assert post(app, rsa_key, feature(SQUARE), **{"Content-Crs": f"<{WEB_MERCATOR}>"}).status_code == 201


def test_web_mercator_beyond_its_area_of_use_is_400(app, rsa_key) -> None:
    far = ring_at(1.0e9, 1.0e9, 1000)
    description = refused(post(app, rsa_key, feature(far), **{"Content-Crs": f"<{WEB_MERCATOR}>"}), 400, "(1e+09, 1e+09)")
    assert "EPSG:3857" in description
    assert count(app) == START


def test_outside_the_storage_crs_area_of_use_is_400(gk_app, rsa_key) -> None:
    # valid CRS84 coordinates (Paris), far outside the Gauss-Krüger zone the layer is stored in
    description = refused(post(gk_app, rsa_key, feature(ring_at(2.35, 48.85))), 400, "(2.35, 48.85)", "EPSG:4548")
    assert "area of use" in description
    assert count(gk_app) == START
    assert post(gk_app, rsa_key, feature(SQUARE)).status_code == 201  # Tianjin is inside


# 1b. reads over a geometry that was stored before these checks existed


def corrupted_parcels() -> gpd.GeoDataFrame:
    """The three parcels and a fourth stored at lon 500 / lat 95, as the unchecked writes left it."""
    frame = parcels_frame()
    bad = gpd.GeoDataFrame(
        {"parcel_id": ["120101-666"], "land_use": ["R2"], "area_m2": [None], "plot_ratio": [None],
         "source": ["ogcapi"], "source_id": ["p666"]},
        geometry=[shapely.MultiPolygon([shapely.Polygon(ring_at(500, 95))])], crs=4326,
    )  # fmt: skip
    return gpd.GeoDataFrame(gpd.pd.concat([frame, bad], ignore_index=True), crs=4326)


@pytest.fixture
def corrupted_app(store_url: str, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _client(store_url, rsa_key, monkeypatch, corrupted_parcels(), 4326)


def test_untransformable_stored_geometry_is_served_as_null(corrupted_app) -> None:
    for params in ({"crs": WEB_MERCATOR}, {"crs": WEB_MERCATOR, "f": "json"}, {"crs": "http://www.opengis.net/def/crs/EPSG/0/4490"}):
        response = corrupted_app.get(PARCELS, params=params)
        assert response.status_code == 200, response.text
        features = json.loads(response.text)["features"]  # valid JSON
        geometries = {f["properties"]["parcel_id"]: f["geometry"] for f in features}
        assert geometries.pop("120101-666") is None
        assert len(geometries) == 3 and all(g["type"] == "MultiPolygon" for g in geometries.values())
    fid = next(f["id"] for f in corrupted_app.get(PARCELS).json()["features"] if f["properties"]["parcel_id"] == "120101-666")
    one = corrupted_app.get(f"{PARCELS}/{fid}", params={"crs": WEB_MERCATOR})
    assert one.status_code == 200, one.text
    assert json.loads(one.text)["geometry"] is None


# 2. sizes: body, vertices, depth, numbers, strings


def test_a_body_over_the_size_limit_is_413(app, rsa_key) -> None:
    too_big = feature(SQUARE, parcel_id="x" * (limits().max_body_bytes + 1))
    refused(post(app, rsa_key, too_big), 413, str(limits().max_body_bytes))

    def chunks() -> Iterator[bytes]:  # no Content-Length: the route must stop reading by itself
        yield b'{"type": "Feature", "properties": {"parcel_id": "'
        for _ in range(limits().max_body_bytes // 65536 + 2):
            yield b"y" * 65536
        yield b'"}}'

    chunked = app.post(PARCELS, content=chunks(), headers={**auth(rsa_key), "Content-Type": "application/geo+json"})
    refused(chunked, 413, str(limits().max_body_bytes))
    assert count(app) == START


def circle(vertices: int) -> list[list[float]]:
    ring = [[round(117.17 + 0.01 * math.cos(2 * math.pi * i / vertices), 6),
             round(39.14 + 0.01 * math.sin(2 * math.pi * i / vertices), 6)] for i in range(vertices)]  # fmt: skip
    return ring + [ring[0]]


def test_too_many_vertices_is_413_with_the_count(app, rsa_key) -> None:
    body = json.dumps(feature(circle(199_999)))
    assert len(body) < limits().max_body_bytes
    refused(post(app, rsa_key, body), 413, "200000 vertices", str(limits().max_vertices))
    assert post(app, rsa_key, feature(circle(2_000))).status_code == 201
    assert count(app) == START + 1


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


DEEP = [
    (nested(100_000), ("deep",)),
    ('{"type": "Feature", "properties": {"parcel_id": "a"}, "geometry": {"type": "Polygon", "coordinates": '
     + "[" * 900 + "117.17, 39.14" + "]" * 900 + "}}", ("not a GeoJSON geometry", "position")),
    ('{"type": "Feature", "properties": {"parcel_id": "a"}, "geometry": {"type": "GeometryCollection", "geometries": '
     + '[{"type": "GeometryCollection", "geometries": ' * 500 + "[]" + "}]" * 500 + "}}", ("nested", str(limits().max_json_depth))),
    (json.dumps({**feature(SQUARE), "extra": json.loads(nested(40))}), ("nested", str(limits().max_json_depth))),
]


def test_deep_bodies_are_400(app, rsa_key) -> None:
    for body, words in DEEP:
        refused(post(app, rsa_key, body), 400, *words)
    assert count(app) == START


def test_numbers_json_has_not_are_400(app, rsa_key) -> None:
    for number in ("1e999", "-1e999", "NaN", "Infinity", "-Infinity"):
        in_property = json.dumps(feature(SQUARE, area_m2=12.5)).replace("12.5", number)
        in_coordinate = json.dumps(feature(SQUARE)).replace("117.17,", f"{number},", 1)
        for body in (in_property, in_coordinate):
            assert number in body
            refused(post(app, rsa_key, body), 400, "not JSON")
    assert count(app) == START


def test_values_a_column_cannot_hold_are_400_in_the_python_api() -> None:
    """Integers past 64 bits (JSON allows them; BIGINT columns do not) and numbers that are not
    finite (a Python caller can pass them) are refused before they reach a database."""
    import dataclasses

    from cim.layerspec import FieldSpec
    from cim.store import LayerInfo
    from cim.errors import InvalidQuery
    from cim.store.edits import Edit, prepare

    spec = CATALOG["parcels"]
    spec = dataclasses.replace(spec, fields=spec.fields + (FieldSpec("storeys", "integer"),))
    info = LayerInfo(spec, 4326, 0, None)
    for name, value, words in [("storeys", 2**63, "storeys"), ("storeys", -(2**63) - 1, "storeys"),
                               ("area_m2", math.inf, "finite"), ("area_m2", math.nan, "finite"),
                               ("parcel_id", "a\x00", "NUL")]:  # fmt: skip
        with pytest.raises(InvalidQuery, match=words):
            prepare(info, Edit("parcels", "create", "tester", body=feature(SQUARE, **{name: value})), None)
    assert prepare(info, Edit("parcels", "create", "tester", body=feature(SQUARE, storeys=2**63 - 1)), None).values["storeys"] == 2**63 - 1


def test_nul_characters_are_400(app, rsa_key) -> None:
    refused(post(app, rsa_key, feature(SQUARE, parcel_id="120101\u0000900")), 400, "NUL", "parcel_id")
    created = post(app, rsa_key, feature(SQUARE)).headers["Location"]
    patched = app.patch(local(created), json={"properties": {"land_use": "R2", "parcel_id": "a\x00"}}, headers=auth(rsa_key))
    refused(patched, 400, "NUL")
    assert count(app) == START + 1


def test_strings_over_the_length_limit_are_400(app, rsa_key) -> None:
    longest = limits().max_text_chars
    refused(post(app, rsa_key, feature(SQUARE, parcel_id="x" * (longest + 1))), 400, "parcel_id", str(longest))
    assert post(app, rsa_key, feature(SQUARE, parcel_id="x" * longest)).status_code == 201


def test_a_token_sub_the_edit_log_cannot_store_is_401(app, rsa_key) -> None:
    for sub in ("planner\x00-7", "p" * (limits().max_text_chars + 1)):
        headers = {"Authorization": f"Bearer {token(rsa_key, sub=sub)}"}
        response = app.post(PARCELS, json=feature(SQUARE), headers=headers)
        refused(response, 401, "sub")
        assert "invalid_token" in response.headers["WWW-Authenticate"]
    assert count(app) == START


# 3. media types


def test_other_media_types_are_415(app, rsa_key) -> None:
    body = json.dumps(feature(SQUARE)).encode()
    for content_type in (None, "text/plain", "application/xml", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "application/jsonx", "json"):  # fmt: skip
        headers = auth(rsa_key)
        if content_type is not None:
            headers["Content-Type"] = content_type
        refused(app.post(PARCELS, content=body, headers=headers), 415, "application/geo+json")
        refused(app.put(f"{PARCELS}/1", content=body, headers=headers), 415, "application/geo+json")
        refused(app.patch(f"{PARCELS}/1", content=b'{"properties": {}}', headers=headers), 415)
    assert count(app) == START


def test_json_media_types_are_accepted(app, rsa_key) -> None:
    for content_type in ("application/geo+json", "application/json", "application/json; charset=utf-8",
                         "Application/GEO+JSON ; charset=UTF-8"):  # fmt: skip
        created = post(app, rsa_key, feature(SQUARE), **{"Content-Type": content_type})
        assert created.status_code == 201, created.text
        assert app.delete(local(created.headers["Location"]), headers=auth(rsa_key)).status_code == 204


# 4. geometries that are valid JSON but not what a layer can hold


CANNOT_HOLD = [
    ({"type": "Polygon", "coordinates": []}, ("empty",)),
    ({"type": "MultiPolygon", "coordinates": []}, ("empty",)),
    ({"type": "Polygon", "coordinates": [[]]}, ("empty",)),
    ({"type": "Polygon", "coordinates": [[[117.17, 39.14, 3.0, 1.0]] * 4]}, ("position", "4 numbers")),
    ({"type": "Polygon", "coordinates": [[[117.17]] * 4]}, ("position", "1 number")),
    ({"type": "Polygon", "coordinates": [[["117.17", "39.14"]] * 4]}, ("position", "'117.17'")),
    ({"type": "Polygon", "coordinates": [[[True, False]] * 4]}, ("position", "True")),
    ({"type": "Polygon", "coordinates": [[[117.17, None]] * 4]}, ("position", "None")),
    ({"type": "Polygon", "coordinates": [[117.17, 39.14]]}, ("not a GeoJSON geometry",)),
    ({"type": "GeometryCollection", "geometries": [{"type": "Polygon", "coordinates": [SQUARE]}]}, ("MultiPolygon",)),
    ({"type": "Polygon", "coordinates": [[[117.170, 39.140], [117.171, 39.141], [117.171, 39.140], [117.170, 39.141],
                                          [117.170, 39.140]]]}, ("invalid geometry", "Self-intersection")),  # fmt: skip
]


def test_geometries_a_layer_cannot_hold_are_400(app, rsa_key) -> None:
    for geometry, words in CANNOT_HOLD:
        refused(post(app, rsa_key, {**feature(SQUARE), "geometry": geometry}), 400, *words)
    assert count(app) == START


def test_z_is_dropped(app, rsa_key) -> None:
    created = post(app, rsa_key, feature([[x, y, 12.5] for x, y in SQUARE]))
    assert created.status_code == 201, created.text
    stored = app.get(local(created.headers["Location"])).json()["geometry"]
    assert all(len(p) == 2 for p in stored["coordinates"][0][0])


def test_feature_ids_in_the_path_are_ascii_integers(app, rsa_key) -> None:
    headers = {**auth(rsa_key), "Content-Type": "application/geo+json"}
    for fid in ("١", "²", "9223372036854775808", "99999999999999999999999", "-1", "1e3", " 1"):
        response = app.put(f"{PARCELS}/{fid}", content=json.dumps(feature(SQUARE)), headers=headers)
        refused(response, 404)
        refused(app.delete(f"{PARCELS}/{fid}", headers=auth(rsa_key)), 404)


def test_the_edit_route_reads_no_further_than_the_limit() -> None:
    """The route's own guard, without any middleware before it: a body without Content-Length is
    read chunk by chunk and refused once past ``max_body_bytes``; the rest is never received."""
    import asyncio

    from starlette.requests import Request

    from cim.store import TooLarge
    from ogcapi.edit_routes import _read_body

    most, chunk = limits().max_body_bytes, 1 << 20
    received = []

    async def receive() -> dict[str, Any]:
        received.append(chunk)
        return {"type": "http.request", "body": b"x" * chunk, "more_body": len(received) < 1000}  # a 1 GB body

    scope = {"type": "http", "method": "POST", "path": PARCELS, "headers": [(b"content-type", b"application/geo+json")]}
    with pytest.raises(TooLarge, match=str(most)):
        asyncio.run(_read_body(Request(scope, receive)))
    assert sum(received) <= most + chunk
    declared = {**scope, "headers": scope["headers"] + [(b"content-length", str(10**9).encode())]}
    received.clear()
    with pytest.raises(TooLarge):
        asyncio.run(_read_body(Request(declared, receive)))
    assert received == []  # refused from the header alone
