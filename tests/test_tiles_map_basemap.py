"""The composite base map as PNG map tiles (``/map/tiles``, tiles/basemap_map.py), on both stores
over the demo city: catalog colours at the city centre, ETag/304 and Cache-Control as the vector
tile's, an empty tile (204), hostile coordinates (4xx OGC exceptions), low zooms, the tileset
documents and the OpenAPI paths."""

from __future__ import annotations

import warnings

import morecantile
import numpy as np
import pytest
from fastapi.testclient import TestClient
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from cim.store import LayerData
from layers.catalog import CATALOG

PREFIX = "/map/tiles"
WEB = "WebMercatorQuad"
#: per-channel tolerance: boundaries (admin divisions) tint what lies under them at 6 % opacity
TOLERANCE = 12


def rgba(data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(data) as memory, memory.open() as image:
            assert image.driver == "PNG"
            return image.read()


def hex_rgb(color: str) -> np.ndarray:
    value = color.lstrip("#")
    return np.array([int(value[i : i + 2], 16) for i in (0, 2, 4)])


def pixels_of(image: np.ndarray, color: str) -> int:
    """Opaque pixels within :data:`TOLERANCE` of ``color``."""
    near = np.abs(image[:3].astype(int) - hex_rgb(color)[:, None, None]).max(axis=0) <= TOLERANCE
    return int((near & (image[3] == 255)).sum())


def tile_path(tms_id: str, z: int, lon: float, lat: float, query: str = "") -> str:
    tile = morecantile.tms.get(tms_id).tile(lon, lat, z)
    return f"{PREFIX}/{tms_id}/{z}/{tile.y}/{tile.x}{query}"


@pytest.fixture(scope="module")
def water_point(demo_layers: list[LayerData]) -> tuple[float, float]:
    """Inside the demo city's largest water body: a centre where water, roads and buildings meet."""
    frame = next(layer.frame for layer in demo_layers if layer.spec.name == "water")
    largest = frame.geometry.iloc[int(np.argmax(frame.to_crs(3857).area.to_numpy()))]
    point = largest.representative_point()
    return point.x, point.y


def test_a_city_centre_tile_shows_the_catalog_colours(api_client: TestClient, water_point: tuple[float, float]) -> None:
    response = api_client.get(tile_path(WEB, 15, *water_point))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = rgba(response.content)
    assert image.shape == (4, 256, 256) and image.dtype == np.uint8
    for layer in ("buildings", "roads", "water"):
        assert pixels_of(image, CATALOG[layer].color) > 100, layer
    assert (image[3] == 0).any() or (image[3] == 255).all()  # what nothing covers stays transparent
    # the same tile again: the same bytes (from the cache)
    assert api_client.get(tile_path(WEB, 15, *water_point)).content == response.content


def test_other_tile_matrix_sets_draw_too(api_client: TestClient, water_point: tuple[float, float]) -> None:
    response = api_client.get(tile_path("WorldCRS84Quad", 14, *water_point))
    assert response.status_code == 200, response.text
    image = rgba(response.content)
    assert image.shape == (4, 256, 256) and pixels_of(image, CATALOG["buildings"].color) > 0


def test_etag_304_and_cache_control_as_the_vector_tile(api_client: TestClient, water_point: tuple[float, float]) -> None:
    url = tile_path(WEB, 15, *water_point)
    first = api_client.get(url)
    etag = first.headers["etag"]
    assert etag.startswith('"r0001-')
    again = api_client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert api_client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    # not the vector tile's ETag, but its caching: the composite has the live warnings layer
    vector = api_client.get(url.replace(PREFIX, "/tiles") + "?release=1")
    pinned = api_client.get(url + "?release=1")
    assert pinned.content == first.content and pinned.headers["etag"] != vector.headers["etag"]
    assert pinned.headers["cache-control"] == vector.headers["cache-control"]


def test_a_tile_with_nothing_drawn_is_204(api_client: TestClient) -> None:
    """The extent's centre lies between the demo's two towns: inside the limits, nothing in it."""
    meta = api_client.get(f"{PREFIX}/{WEB}").json()
    (west, south), (east, north) = meta["boundingBox"]["lowerLeft"], meta["boundingBox"]["upperRight"]
    response = api_client.get(tile_path(WEB, 16, (west + east) / 2, (south + north) / 2))
    assert response.status_code == 204 and response.content == b"" and response.headers["etag"]


@pytest.mark.parametrize("z", [5, 8])
def test_low_zooms_answer(api_client: TestClient, water_point: tuple[float, float], z: int) -> None:
    response = api_client.get(tile_path(WEB, z, *water_point))
    assert response.status_code in (200, 204), response.text
    if response.status_code == 200:
        assert rgba(response.content).shape == (4, 256, 256)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{PREFIX}/NoSuchTileMatrixSet/15/0/0", 404),
        (f"{PREFIX}/{WEB}/25/0/0", 404),  # beyond the tile matrix set
        (f"{PREFIX}/{WEB}/23/0/0", 404),  # beyond the deepest layer maxzoom (22)
        (f"{PREFIX}/{WEB}/2/0/0", 404),  # outside the limits at a low zoom
        (f"{PREFIX}/{WEB}/10/1024/0", 404),  # row outside the tile matrix set
        (f"{PREFIX}/{WEB}/10/0/5000", 404),  # column outside the tile matrix set
        (f"{PREFIX}/{WEB}/10/0/0", 404),  # outside the limits
        (f"{PREFIX}/{WEB}/-1/0/0", 404),
        (f"{PREFIX}/{WEB}/10/x/0", 400),
        (f"{PREFIX}/{WEB}/10/0/-5", 404),
        (f"{PREFIX}/{WEB}/10/0/99999999999999999999999999", 400),
        (f"{PREFIX}/{WEB}/1e3/0/0", 404),
        (f"{PREFIX}/{WEB}/15/9483/18653?f=jpeg", 400),
        (f"{PREFIX}?f=xml", 400),
        (f"{PREFIX}/Nowhere", 404),
    ],
)
def test_hostile_requests_are_ogc_exceptions(api_client: TestClient, path: str, status: int) -> None:
    response = api_client.get(path)
    assert response.status_code == status, response.text
    assert response.json()["code"] in ("NotFound", "InvalidParameterValue")


def test_tileset_list_and_metadata(api_client: TestClient) -> None:
    landing = api_client.get("/?f=json").json()
    assert "http://testserver/map/tiles" in [
        link["href"] for link in landing["links"] if link["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"
    ]
    listing = api_client.get(PREFIX).json()
    assert {t["dataType"] for t in listing["tilesets"]} == {"map"}
    assert WEB in {t["links"][0]["href"].rsplit("/", 1)[-1] for t in listing["tilesets"]}
    meta = api_client.get(f"{PREFIX}/{WEB}").json()
    item = next(link for link in meta["links"] if link["rel"] == "item")
    assert item["type"] == "image/png" and item["href"].endswith("/map/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    zooms = [int(limit["tileMatrix"]) for limit in meta["tileMatrixSetLimits"]]
    assert min(zooms) == 0 and max(zooms) == 22  # warnings from 0; every layer to 22


def test_openapi_describes_the_paths(api_client: TestClient) -> None:
    paths = api_client.get("/openapi?f=json").json()["paths"]
    tile = paths["/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"]["get"]
    assert "image/png" in tile["responses"]["200"]["content"] and "204" in tile["responses"]
    assert "/map/tiles" in paths and "/map/tiles/{tileMatrixSetId}" in paths
