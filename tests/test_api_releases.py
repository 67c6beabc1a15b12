"""A running app follows the store's current release — new layers, new counts, rollback — without a restart."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG
from ogcapi.app import create_app
from support.citydata import building_frame, pois_frame


def wait_for(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the server did not follow the release switch"
        time.sleep(0.1)


def collection_ids(client: TestClient) -> set[str]:
    """The collections of the release (the live warnings collection, in every release, left out)."""
    # the layers of the current release: not the live warnings, not the layer catalog (records of every release)
    return {c["id"] for c in client.get("/collections").json()["collections"]} - {"warnings", "catalog"}


def matched(client: TestClient) -> int:
    return client.get("/collections/buildings/items", params={"limit": 1}).json()["numberMatched"]


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_server_switches_releases_without_restart(store_url: str) -> None:
    buildings = LayerData(CATALOG["buildings"], building_frame(4490))
    with open_store(store_url) as builder:
        builder.publish(ReleaseDraft([buildings], srid=4490))
        with TestClient(create_app(store_url, server_url="http://testserver")) as client:
            assert collection_ids(client) == {"buildings"} and matched(client) == 3
            smaller = LayerData(CATALOG["buildings"], building_frame(4490).iloc[:2])
            builder.publish(ReleaseDraft([smaller, LayerData(CATALOG["pois"], pois_frame())], srid=4490))
            wait_for(lambda: collection_ids(client) == {"buildings", "pois"} and matched(client) == 2)
            assert client.get("/collections/pois/items").json()["numberMatched"] == 1
            builder.set_current(1)
            wait_for(lambda: collection_ids(client) == {"buildings"} and matched(client) == 3)
            assert client.get("/collections/pois/items").status_code == 404
