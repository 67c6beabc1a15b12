"""Map tiles of raster collections over OGC API - Tiles, on both stores: collections, tilesets,
hillshade / terrain-RGB / Terrarium / imagery tiles in PNG, JPEG and WebP in every tile matrix set, ETag/304,
errors, empty tiles, conformance, style, TileJSON, and tiles following the release."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from support.rasters import publish_raster_city, HILL, NODATA_BLOCK, ORTHO_BOUNDS, PIXEL_M, dem_origin, elevation_at
from support.tiles import wait_until

from cim.store import open_store
from cim.tms import TILE_SRID, tile_matrix_sets
from ogcapi.app import create_app
from tiles.raster_render import decode_terrain_rgb, decode_terrarium

TMS_IDS = ["WebMercatorQuad", "WorldCRS84Quad", "CGCS2000Quad"]
TILESETS_MAP = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"
TILES_CONF = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
DEM, IMAGERY = "/collections/dem/map/tiles", "/collections/imagery/map/tiles"


publish_city = publish_raster_city


@pytest.fixture(scope="module", params=["duckdb", "postgis"])
def raster_store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from support.postgis import backend_store

    root = tmp_path_factory.mktemp(f"rasters-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIM_RASTER_DIR", str(root / "cogs"))
        patch.setenv("CIM_TILE_CACHE", str(root / "tile-cache"))
        with backend_store(request, "raster", root) as url:
            publish_city(url, root / "city")
            yield url


@pytest.fixture(scope="module")
def client(raster_store_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(raster_store_url, server_url="http://testserver")) as client:
        yield client


def decode(data: bytes) -> tuple[str, np.ndarray]:
    """Driver and bands of an encoded image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(data) as memory, memory.open() as image:
            return image.driver, image.read()


def tile_url(prefix: str, tms_id: str, z: int, lon: float = HILL[0], lat: float = HILL[1]) -> str:
    tile = tile_matrix_sets()[tms_id].tile(lon, lat, z)
    return f"{prefix}/{tms_id}/{z}/{tile.y}/{tile.x}"


def pixel_of(tms_id: str, z: int, lon: float, lat: float) -> tuple[int, int]:
    """Row and column of a CGCS2000 lon/lat in its 256-pixel tile of ``tms_id``."""
    tms = tile_matrix_sets()[tms_id]
    tile = tms.tile(lon, lat, z)
    west, south, east, north = tms.xy_bounds(tile)
    x, y = Transformer.from_crs("EPSG:4490", f"EPSG:{TILE_SRID[tms_id]}", always_xy=True).transform(lon, lat)
    return int((north - y) / (north - south) * 256), int((x - west) / (east - west) * 256)


def test_raster_collections_are_listed_with_map_tileset_links(client: TestClient) -> None:
    collections = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    assert {"dem", "imagery", "buildings"} <= set(collections)
    for name in ("dem", "imagery"):
        links = [link["href"] for link in collections[name]["links"] if link["rel"] == TILESETS_MAP]
        assert links == [f"http://testserver/collections/{name}/map/tiles"]
        alone = client.get(f"/collections/{name}")
        assert alone.status_code == 200 and alone.json()["id"] == name
        assert alone.json()["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
        west, south, east, north = alone.json()["extent"]["spatial"]["bbox"][0]
        assert 117.15 < west < east < 117.21 and 39.12 < south < north < 39.16
    assert not any(link["rel"] == TILESETS_MAP for link in collections["buildings"]["links"])


@pytest.mark.parametrize("path", ["items", "items/1", "queryables", "schema", "feature-schema"])
def test_feature_resources_of_a_raster_collection_are_404(client: TestClient, path: str) -> None:
    response = client.get(f"/collections/dem/{path}")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "NotFound" and "raster layer" in body["description"]


@pytest.mark.parametrize("prefix", [DEM, IMAGERY])
def test_map_tileset_lists_and_metadata(client: TestClient, prefix: str) -> None:
    listing = client.get(prefix).json()
    assert [t["dataType"] for t in listing["tilesets"]] == ["map"] * 3
    for entry in listing["tilesets"]:
        for link in entry["links"]:
            assert client.get(link["href"].replace("http://testserver", "")).status_code == 200
        (self_link,) = [link for link in entry["links"] if link["rel"] == "self"]
        meta = client.get(self_link["href"].replace("http://testserver", "")).json()
        items = [link for link in meta["links"] if link["rel"] == "item"]
        assert items and all(link["templated"] and "/{tileMatrix}/{tileRow}/{tileCol}" in link["href"] for link in items)
        assert {link["type"] for link in items} == {"image/png", "image/jpeg", "image/webp"}
        assert meta["tileMatrixSetLimits"] and meta["boundingBox"]["crs"].endswith("CRS84")
    dem = client.get(f"{DEM}/WebMercatorQuad").json()
    assert [s["id"] for s in dem["styles"]] == ["hillshade", "terrain-rgb", "terrarium"]
    assert dem["tileMatrixSetLimits"][-1]["tileMatrix"] == "16"  # the DEM's catalog maxzoom


@pytest.mark.parametrize("tms_id", TMS_IDS)
def test_tiles_decode_in_every_format_and_tile_matrix_set(client: TestClient, tms_id: str) -> None:
    z = 14
    cases = [
        (DEM, "", "PNG", 2),  # hillshade: grey + alpha
        (DEM, "?f=jpeg", "JPEG", 1),
        (DEM, "?f=webp", "WEBP", None),
        (DEM, "?style=terrain-rgb", "PNG", 3),
        (DEM, "?style=terrarium", "PNG", 3),
        (IMAGERY, "", "PNG", 4),  # RGB + alpha
        (IMAGERY, "?f=jpeg", "JPEG", 3),
        (IMAGERY, "?f=jpg", "JPEG", 3),
        (IMAGERY, "?f=webp", "WEBP", None),
    ]
    for prefix, query, driver, bands in cases:
        response = client.get(tile_url(prefix, tms_id, z) + query)
        assert response.status_code == 200, (prefix, query, response.text)
        assert response.headers["content-type"] == f"image/{driver.lower()}"
        found, data = decode(response.content)
        assert found == driver and data.shape[1:] == (256, 256), (prefix, query)
        if bands is not None:
            assert data.shape[0] == bands, (prefix, query)


def test_accept_header_chooses_the_format(client: TestClient) -> None:
    url = tile_url(IMAGERY, "WebMercatorQuad", 14)
    for accept, media in [
        ("image/webp,*/*;q=0.8", "image/webp"),
        ("image/jpeg", "image/jpeg"),
        ("image/png;q=0.5, image/jpeg;q=0.9", "image/jpeg"),
        ("*/*", "image/png"),
        ("application/json", "image/png"),
    ]:
        response = client.get(url, headers={"Accept": accept})
        assert response.headers["content-type"] == media, accept
        assert response.headers["vary"] == "Accept"
    # f= wins over Accept; the elevation encodings are PNG only
    assert client.get(url + "?f=png", headers={"Accept": "image/webp"}).headers["content-type"] == "image/png"
    terrain = client.get(tile_url(DEM, "WebMercatorQuad", 14) + "?style=terrain-rgb", headers={"Accept": "image/webp"})
    assert terrain.headers["content-type"] == "image/png"


@pytest.mark.parametrize("tms_id", TMS_IDS)
@pytest.mark.parametrize("z", [12, 15])
def test_terrain_encodings_decode_to_the_elevation(client: TestClient, tms_id: str, z: int) -> None:
    row, col = pixel_of(tms_id, z, *HILL)
    for style, decoder in (("terrain-rgb", decode_terrain_rgb), ("terrarium", decode_terrarium)):
        _, rgb = decode(client.get(tile_url(DEM, tms_id, z) + f"?style={style}").content)
        heights = decoder(rgb)
        assert heights[row, col] == pytest.approx(elevation_at(*HILL), abs=0.1), (style, tms_id, z)
    # off the top of the hill too, where the slope is steepest: within the pixel's own relief
    lon, lat = 117.1855, 39.1365
    row, col = pixel_of(tms_id, 15, lon, lat)
    _, rgb = decode(client.get(tile_url(DEM, tms_id, 15, lon, lat) + "?style=terrain-rgb").content)
    assert decode_terrain_rgb(rgb)[row, col] == pytest.approx(elevation_at(lon, lat), abs=0.5)


def test_hillshade_is_lit_from_the_north_west_and_imagery_keeps_its_colours(client: TestClient) -> None:
    def shade_at(lon: float, lat: float) -> tuple[int, int]:
        _, shade = decode(client.get(tile_url(DEM, "WebMercatorQuad", 14, lon, lat) + "?f=png").content)
        row, col = pixel_of("WebMercatorQuad", 14, lon, lat)
        return int(shade[0, row, col]), int(shade[1, row, col])

    # the north-west flank faces the sun: brighter than flat ground, the south-east flank darker
    (north_west, alpha), (south_east, _) = shade_at(HILL[0] - 0.007, HILL[1] + 0.005), shade_at(HILL[0] + 0.007, HILL[1] - 0.005)
    flat = round(255 * 0.7071)  # the sun's altitude is 45 degrees
    assert north_west > flat + 3 and south_east < flat - 3 and alpha == 255
    lon = (ORTHO_BOUNDS[0] + ORTHO_BOUNDS[2]) / 2
    lat = (ORTHO_BOUNDS[1] + ORTHO_BOUNDS[3]) / 2
    row, col = pixel_of("WebMercatorQuad", 15, lon, lat)
    _, rgba = decode(client.get(tile_url(IMAGERY, "WebMercatorQuad", 15, lon, lat)).content)
    red, green, blue, alpha = (int(v) for v in rgba[:, row, col])
    assert abs(red - 127) <= 4 and abs(green - 127) <= 4 and blue == 128 and alpha == 255


def test_a_tile_without_data_is_204_but_flat_in_height_encodings(client: TestClient) -> None:
    """Hillshade: 204. Terrain-RGB and Terrarium store missing pixels as 0 m, and a raster-dem client
    cannot use an empty answer, so their tile without data is a flat 0 m PNG."""
    west, north = dem_origin()
    to_lonlat = Transformer.from_crs("EPSG:4548", "EPSG:4490", always_xy=True)
    inside_nodata = to_lonlat.transform(west + NODATA_BLOCK * PIXEL_M / 2, north - NODATA_BLOCK * PIXEL_M / 2)
    response = client.get(tile_url(DEM, "WebMercatorQuad", 16, *inside_nodata))
    assert response.status_code == 204 and response.content == b"" and response.headers["etag"]
    for style, decoder in (("terrain-rgb", decode_terrain_rgb), ("terrarium", decode_terrarium)):
        response = client.get(tile_url(DEM, "WebMercatorQuad", 16, *inside_nodata) + f"?style={style}")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        _, rgb = decode(response.content)
        assert rgb.shape[1:] == (256, 256) and np.allclose(decoder(rgb[:3].astype("float64")), 0.0, atol=0.1)


def test_etag_304_and_cache_control(client: TestClient) -> None:
    url = tile_url(DEM, "WebMercatorQuad", 13)
    first = client.get(url)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"r0001-')
    assert first.headers["cache-control"] == "public, max-age=60"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    # another style or format is another tile with another ETag
    assert client.get(url + "?style=terrain-rgb").headers["etag"] != etag
    assert client.get(url + "?f=webp").headers["etag"] != etag
    pinned = client.get(url + "?release=1")
    assert pinned.headers["cache-control"] == "public, max-age=86400, immutable" and pinned.content == first.content


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{DEM}/NoSuchTileMatrixSet/10/0/0", 404),
        (f"{DEM}/WebMercatorQuad/25/0/0", 404),  # beyond the tile matrix set
        (f"{DEM}/WebMercatorQuad/17/0/0", 404),  # beyond the DEM's zoom range (0..16)
        (f"{DEM}/WebMercatorQuad/10/1024/0", 404),  # row outside the tile matrix set
        (f"{DEM}/WebMercatorQuad/10/0/5000", 404),  # column outside the tile matrix set
        (f"{DEM}/WebMercatorQuad/10/0/0", 404),  # outside the tileset limits
        (f"{DEM}/WebMercatorQuad/10/x/0", 400),
        ("/collections/buildings/map/tiles", 404),  # a vector collection has no map tiles
        ("/collections/buildings/map/tiles/WebMercatorQuad/14/0/0", 404),
        ("/collections/nowhere/map/tiles", 404),
        (f"{DEM}/WorldCRS84Quad/tilejson.json", 404),
    ],
)
def test_errors_are_ogc_exceptions(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.json()["code"] in ("NotFound", "InvalidParameterValue")


def test_bad_style_or_format_is_400(client: TestClient) -> None:
    url = tile_url(DEM, "WebMercatorQuad", 14)
    for query, words in [
        ("?style=shiny", "no style 'shiny'"),
        ("?style=terrain-rgb&f=jpeg", "unsupported format f='jpeg'"),
        ("?f=tiff", "unsupported format f='tiff'"),
    ]:
        response = client.get(url + query)
        assert response.status_code == 400 and words in response.json()["description"], query
    assert client.get(tile_url(IMAGERY, "WebMercatorQuad", 14) + "?style=hillshade").status_code == 400


def test_conformance_declares_png_and_jpeg_with_raster_layers(client: TestClient, api_client: TestClient) -> None:
    declared = client.get("/conformance").json()["conformsTo"]
    assert TILES_CONF + "png" in declared and TILES_CONF + "jpeg" in declared
    demo = api_client.get("/conformance").json()["conformsTo"]  # the demo city has no raster layer
    assert TILES_CONF + "png" not in demo and TILES_CONF + "jpeg" not in demo


def test_style_and_tilejson_for_maplibre(client: TestClient) -> None:
    style = client.get("/styles/basemap").json()
    dem, imagery = style["sources"]["dem"], style["sources"]["imagery"]
    assert dem["type"] == "raster-dem" and dem["encoding"] == "mapbox" and dem["maxzoom"] == 16
    assert dem["tiles"] == [
        "http://testserver/collections/dem/map/tiles/WebMercatorQuad/{z}/{y}/{x}?release=1&style=terrain-rgb&f=png"
    ]
    assert imagery["type"] == "raster" and imagery["tiles"][0].endswith("{z}/{y}/{x}?release=1&f=png")
    ids = [layer["id"] for layer in style["layers"]]
    assert ids[:3] == ["background", "imagery", "dem-hillshade"] and "buildings" in ids
    assert style["layers"][2]["type"] == "hillshade" and style["layers"][2]["source"] == "dem"
    # the style's tile URL works as MapLibre fills it in
    tile = tile_matrix_sets()["WebMercatorQuad"].tile(*HILL, 14)
    url = dem["tiles"][0].replace("http://testserver", "").format(z=14, y=tile.y, x=tile.x)
    assert client.get(url).headers["content-type"] == "image/png"
    tilejson = client.get(f"{DEM}/WebMercatorQuad/tilejson.json?style=terrarium").json()
    assert tilejson["tilejson"] == "3.0.0" and tilejson["encoding"] == "terrarium"
    assert (tilejson["minzoom"], tilejson["maxzoom"]) == (0, 16) and "style=terrarium" in tilejson["tiles"][0]
    assert client.get(f"{IMAGERY}/WebMercatorQuad/tilejson.json").json()["maxzoom"] == 20


def test_openapi_describes_the_map_tile_paths(client: TestClient) -> None:
    doc = client.get("/openapi?f=json").json()
    path = "/collections/{rasterCollectionId}/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
    assert set(doc["paths"][path]["get"]["responses"]["200"]["content"]) == {"image/png", "image/jpeg", "image/webp"}
    assert doc["components"]["parameters"]["tiles_rasterCollectionId"]["schema"]["enum"] == ["imagery", "dem"]




@pytest.mark.slow  # publishes new raster releases (~10 s)
def test_tiles_follow_the_release(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIM_RASTER_DIR", str(tmp_path / "cogs"))
    monkeypatch.setenv("CIM_TILE_CACHE", str(tmp_path / "tile-cache"))
    publish_city(store_url, tmp_path / "one")
    url = tile_url(DEM, "WebMercatorQuad", 15) + "?style=terrain-rgb"
    row, col = pixel_of("WebMercatorQuad", 15, *HILL)
    peak = elevation_at(*HILL)

    def height(response) -> float:
        return float(decode_terrain_rgb(decode(response.content)[1])[row, col])

    with TestClient(create_app(store_url, server_url="http://testserver")) as client:
        first = client.get(url)
        etag1 = first.headers["etag"]
        assert height(first) == pytest.approx(peak, abs=0.1) and etag1.startswith('"r0001-')
        assert list((tmp_path / "tile-cache").glob("r0001-*/map.dem.terrain-rgb.png/WebMercatorQuad/15/*/*"))

        publish_city(store_url, tmp_path / "two", dem_shift=50.0)
        assert wait_until(lambda: abs(height(client.get(url)) - (peak + 50)) < 0.1)
        second = client.get(url, headers={"If-None-Match": etag1})
        assert second.status_code == 200 and second.headers["etag"].startswith('"r0002-')
        assert client.get(url, headers={"If-None-Match": second.headers["etag"]}).status_code == 304

        with open_store(store_url) as store:
            store.set_current(1)  # rollback: release 1's COG and tiles again
        assert wait_until(lambda: abs(height(client.get(url)) - peak) < 0.1)
        assert client.get(url).headers["etag"] == etag1
