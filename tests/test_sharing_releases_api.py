"""GET /releases and /releases/{n} (ogcapi/releases_routes.py) on both stores: the kept releases with
their layers and links, 404 for a release never published, 410 for one pruned away, 400 for what is
not a release number; linked from the landing page, in /openapi and /asyncapi."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pygeoapi.asyncapi import validate_asyncapi_document

import cim
from ogcapi.asyncapi import asyncapi_document
from support.announce import publish
from support.server import app_client


@pytest.fixture
def client(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The app over a store whose release 1 was pruned: releases 2 (1 parcel) and 3 (2 parcels) kept."""
    monkeypatch.delenv("CIM_MQTT_URL", raising=False)
    monkeypatch.setenv("CIM_LOCK_DIR", str(tmp_path))
    publish(store_url, 1)
    publish(store_url, 1)
    publish(store_url, 2, keep=2)
    with app_client(store_url) as client:
        yield client


def test_releases_lists_the_kept_ones_with_layers_and_links(client: Any) -> None:
    response = client.get("/releases")
    assert response.status_code == 200
    body = response.json()
    assert [r["number"] for r in body["releases"]] == [2, 3] and body["current"] == 3
    second, third = body["releases"]
    assert (second["current"], third["current"]) == (False, True)
    assert second["previous"] is None and third["previous"] == 2
    assert {"name": "parcels", "kind": "vector", "count": 2} in third["layers"]
    hrefs = {link["rel"]: [] for link in third["links"]}
    for link in third["links"]:
        hrefs[link["rel"]].append(link["href"])
    assert hrefs["self"] == ["http://testserver/releases/3"]
    assert "parcels@r3" in hrefs["describedby"][0]
    assert "http://testserver/collections/parcels/changes?from=2&to=3" in hrefs["changes"]
    assert "http://testserver/collections/parcels/downloads/gpkg?release=3" in hrefs["enclosure"]
    assert len([h for h in hrefs["enclosure"] if "/parcels/" in h]) == 3  # gpkg, parquet, fgb
    assert any(link["rel"] == "hub" and link["href"].endswith("/releases/stream") for link in body["links"])


def test_one_release(client: Any) -> None:
    body = client.get("/releases/2").json()
    assert body["number"] == 2 and body["current"] is False and body["previous"] is None
    assert body["layers"][0]["count"] == 1
    assert client.get("/releases/3?f=json").json()["current"] is True


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/releases/1", 410, "pruned"),  # pruned by keep=2: names the releases kept
        ("/releases/4", 404, "no release 4"),
        ("/releases/0", 404, "no release 0"),
        ("/releases/abc", 400, "not a release number"),
        ("/releases/1.5", 400, "not a release number"),
        ("/releases/-2", 400, "not a release number"),
        ("/releases/%D9%A1", 400, "not a release number"),  # an Arabic-Indic digit
        ("/releases/" + "9" * 40, 400, "not a release number"),
        ("/releases/2?limit=3", 400, "unknown parameter"),
        ("/releases?f=html", 400, "f=json"),
        ("/releases?f=json&f=json", 400, "more than once"),
        ("/releases/stream?lastEventId=abc", 400, "neither"),
        ("/releases/stream?lastEventId=release-x", 400, "neither"),
        ("/releases/stream?f=json", 400, "text/event-stream"),
        ("/releases/stream?other=1", 400, "unknown parameter"),
    ],
)
def test_bad_requests_are_4xx_with_a_reason(client: Any, path: str, status: int, says: str) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"code", "type", "description"} and says in body["description"]
    if status == 410:
        assert "2, 3" in body["description"]


def test_city_releases_says_the_same(client: Any, store_url: str) -> None:
    with cim.open(store_url) as city:
        mine = city.releases("http://testserver")
    assert mine == client.get("/releases").json()["releases"]


def test_landing_openapi_and_asyncapi_list_the_releases(client: Any) -> None:
    links = client.get("/?f=json").json()["links"]
    assert any(link["href"].endswith("/releases") and link["type"] == "application/json" for link in links)
    assert any(link["rel"] == "hub" and link["href"].endswith("/releases/stream") for link in links)
    paths = client.get("/openapi?f=json").json()["paths"]
    assert {"/releases", "/releases/{releaseNumber}", "/releases/stream"} <= set(paths)
    assert "410" in paths["/releases/{releaseNumber}"]["get"]["responses"]
    doc = client.get("/asyncapi").json()
    assert validate_asyncapi_document(doc)
    assert doc["channels"]["releasesStream"]["address"] == "/releases/stream"
    with_mqtt = asyncapi_document("http://city.example", "mqtt://broker.example:1883/city/tj")
    assert validate_asyncapi_document(json.loads(json.dumps(with_mqtt)))
    assert with_mqtt["channels"]["releasesMqtt"]["address"] == "city/tj/releases/{kind}"
    assert with_mqtt["channels"]["warningsMqtt"]["address"] == "city/tj/warnings/{severity}/{division}/{kind}"


def test_the_catalog_link_of_a_release_gives_its_records(client: Any) -> None:
    release = client.get("/releases/2").json()
    (href,) = [link["href"] for link in release["links"] if link["rel"] == "describedby"]
    response = client.get(href.removeprefix("http://testserver"))
    assert response.status_code == 200, response.text
    ids = sorted(feature["id"] for feature in response.json()["features"])
    assert ids == sorted(f"{layer['name']}@r2" for layer in release["layers"])


def test_the_download_links_of_a_past_release_work(client: Any) -> None:
    release = client.get("/releases/2").json()
    hrefs = [link["href"] for link in release["links"] if link["rel"] == "enclosure"]
    assert len(hrefs) == 3
    for href in hrefs:
        response = client.get(href.removeprefix("http://testserver"))
        assert response.status_code == 200, (href, response.text[:200])
        assert response.headers["etag"]
