"""Tiles follow the store's releases: a new release switches the cache key, a stale tile is never served."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG
from ogcapi.app import create_app
from support.citydata import TIANJIN, building_frame
from support.tiles import counts, decode, tile_at, tile_path, wait_until

# zoom 13: the three hand-made buildings fall in one tile
PATH = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 13, *TIANJIN[1]))


def buildings(n: int) -> LayerData:
    return LayerData(CATALOG["buildings"], building_frame(4490).iloc[:n])


def in_tile(client: TestClient, **headers: str) -> tuple[int, str, int]:
    response = client.get(PATH, headers=headers)
    found = counts(decode(response.content)).get("buildings", 0) if response.status_code == 200 else 0
    return response.status_code, response.headers.get("etag", ""), found




@pytest.fixture
def tile_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A disk tile cache for both stores (PostGIS has none by default)."""
    monkeypatch.setenv("CIM_TILE_CACHE", str(tmp_path / "tile-cache"))
    return tmp_path / "tile-cache"


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_new_release_switches_the_cache_key(store_url: str, tile_cache_dir: Path) -> None:
    with open_store(store_url) as builder:
        builder.publish(ReleaseDraft([buildings(3)], srid=4490))
        with TestClient(create_app(store_url, server_url="http://testserver")) as client:
            status, etag1, found = in_tile(client)
            assert (status, found) == (200, 3) and etag1.startswith('"r0001-')
            assert in_tile(client)[1:] == (etag1, 3)  # now from the cache
            assert list(tile_cache_dir.glob("r0001-*/basemap/WebMercatorQuad/13/*/*.mvt"))

            builder.publish(ReleaseDraft([buildings(2)], srid=4490))
            assert wait_until(lambda: in_tile(client)[2] == 2)
            status, etag2, found = in_tile(client, **{"If-None-Match": etag1})
            assert (status, found) == (200, 2)  # the release-1 ETag no longer matches: new content, not 304
            assert etag2.startswith('"r0002-') and etag2 != etag1
            assert in_tile(client, **{"If-None-Match": etag2})[0] == 304

            builder.set_current(1)  # a rollback finds release 1's tiles under release 1's key
            assert wait_until(lambda: in_tile(client)[2] == 3)
            assert in_tile(client)[1] == etag1


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_a_new_server_never_reads_another_releases_disk_tiles(store_url: str, tile_cache_dir: Path) -> None:
    with open_store(store_url) as builder:
        builder.publish(ReleaseDraft([buildings(3)], srid=4490))
        with TestClient(create_app(store_url, server_url="http://testserver")) as client:
            assert in_tile(client)[2] == 3  # cached on disk for release 1
        builder.publish(ReleaseDraft([buildings(1)], srid=4490))
        with TestClient(create_app(store_url, server_url="http://testserver")) as client:
            assert wait_until(lambda: in_tile(client)[2] == 1)
    assert len(list(tile_cache_dir.glob("r000[12]-*"))) == 2
