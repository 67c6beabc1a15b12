"""OGC API - Features Part 2 (CRS by reference) over the demo city, on both stores."""

from __future__ import annotations

import pytest
import shapely
from pyproj import Transformer

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"


def first_vertex(geometry: dict) -> list[float]:
    coords = geometry["coordinates"]
    while isinstance(coords[0], list):
        coords = coords[0]
    return coords


def test_collection_lists_required_crs(api_client) -> None:
    collection = api_client.get("/collections/buildings").json()
    for uri in (CRS84, EPSG.format(4326), EPSG.format(4490), EPSG.format(3857)):
        assert uri in collection["crs"]
    assert collection["storageCrs"] in collection["crs"]


@pytest.mark.parametrize("code", [4326, 4490])
def test_geographic_crs_in_authority_lat_lon_order(api_client, code: int) -> None:
    default = api_client.get("/collections/buildings/items/1").json()
    lon, lat = first_vertex(default["geometry"])
    response = api_client.get("/collections/buildings/items/1", params={"crs": EPSG.format(code)})
    assert response.status_code == 200
    assert response.headers["Content-Crs"] == f"<{EPSG.format(code)}>"
    assert first_vertex(response.json()["geometry"]) == pytest.approx([lat, lon], abs=1e-7)
    items = api_client.get("/collections/buildings/items", params={"crs": EPSG.format(code), "limit": 1})
    assert items.headers["Content-Crs"] == f"<{EPSG.format(code)}>"
    assert first_vertex(items.json()["features"][0]["geometry"]) == pytest.approx([lat, lon], abs=1e-7)


def test_projected_crs_is_really_transformed(api_client) -> None:
    lon, lat = first_vertex(api_client.get("/collections/buildings/items/1").json()["geometry"])
    response = api_client.get("/collections/buildings/items/1", params={"crs": EPSG.format(3857)})
    assert response.headers["Content-Crs"] == f"<{EPSG.format(3857)}>"
    expected = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    assert first_vertex(response.json()["geometry"]) == pytest.approx(list(expected), abs=0.01)


def test_default_is_crs84(api_client) -> None:
    response = api_client.get("/collections/buildings/items", params={"limit": 1})
    assert response.headers["Content-Crs"] == f"<{CRS84}>"


@pytest.mark.parametrize("bbox_crs", [3857, 4326])
def test_bbox_crs_selects_the_same_features(api_client, bbox_crs: int) -> None:
    bbox84 = (24.94, 60.165, 24.955, 60.175)
    if bbox_crs == 3857:
        to = Transformer.from_crs(4326, 3857, always_xy=True)
        x0, y0 = to.transform(bbox84[0], bbox84[1])
        x1, y1 = to.transform(bbox84[2], bbox84[3])
        bbox = (x0, y0, x1, y1)
    else:  # EPSG:4326 bbox axes are lat/lon
        bbox = (bbox84[1], bbox84[0], bbox84[3], bbox84[2])
    reference = api_client.get("/collections/buildings/items", params={"bbox": ",".join(map(str, bbox84)), "limit": 1000})
    response = api_client.get(
        "/collections/buildings/items",
        params={"bbox": ",".join(map(str, bbox)), "bbox-crs": EPSG.format(bbox_crs), "limit": 1000},
    )
    assert response.status_code == 200, response.text
    assert {f["id"] for f in response.json()["features"]} == {f["id"] for f in reference.json()["features"]}
    assert response.json()["numberMatched"] > 0


def test_unsupported_crs_is_400(api_client) -> None:
    for params in ({"crs": EPSG.format(32650)}, {"crs": "not-a-crs"}):
        response = api_client.get("/collections/buildings/items", params=params)
        assert response.status_code == 400 and "code" in response.json()
    response = api_client.get("/collections/buildings/items/1", params={"crs": EPSG.format(32650)})
    assert response.status_code == 400


def test_geometries_stay_valid_after_reprojection(api_client) -> None:
    doc = api_client.get("/collections/buildings/items", params={"crs": EPSG.format(3857), "limit": 20}).json()
    for feature in doc["features"]:
        assert shapely.geometry.shape(feature["geometry"]).area > 0
