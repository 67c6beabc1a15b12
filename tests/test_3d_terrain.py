"""Terrain of the DEM for CesiumJS (quantized-mesh-1.0, ogcapi/terrain_routes.py), on both stores: layer.json
and its availability, level-0 tiles, vertex heights against the DEM, vertex normals by Accept, ETag/304 and
Cache-Control, releases pinned, the links and OpenAPI paths, and the 404/400s (no DEM, not an elevation
raster, tiles outside, hostile values).

Tolerances. A vertex's height is the DEM sampled as the buildings sample it (``heights_at``) at the vertex,
then quantized: the height to 1/32767 of the tile's height range, the position to 1/32767 of the tile's
width (< 0.04 m at level 13: < 0.01 m of height on the hill's slopes) — so vertices agree with
``heights_at`` within ``range/32767 + 0.01`` m. Between vertices the mesh is linear: at every grid sample
inside a triangle it is within the level's mesh error (martini's guarantee; FINE_ERROR at the deepest
level) plus the same quantization. Against the true hill (support/rasters.py ``elevation_at``) the
DEM's own warp to Web Mercator adds up to ~0.2 m on the slopes: 0.3 m is allowed."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from support.quantized_mesh import QuantizedMesh, decode, oct_decode
from support.rasters import publish_raster_city, HILL, elevation_at
from support.tiles import wait_until

from ogcapi.app import create_app
from tiles.terrain.engine import FINE_ERROR
from tiles.terrain.sample import grid_heights, heights_at
from tiles.terrain.tiling import GRID, TerrainTile, geometric_error

TERRAIN = "/collections/dem/terrain"
NORMALS = "application/vnd.quantized-mesh;extensions=octvertexnormals,application/octet-stream;q=0.9,*/*;q=0.01"
PLAIN = "application/vnd.quantized-mesh,application/octet-stream;q=0.9,*/*;q=0.01"


publish_city = publish_raster_city


@pytest.fixture(scope="module", params=["duckdb", "postgis"])
def terrain_store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from support.postgis import backend_store

    root = tmp_path_factory.mktemp(f"terrain-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIM_RASTER_DIR", str(root / "cogs"))
        patch.setenv("CIM_TILE_CACHE", str(root / "tile-cache"))
        with backend_store(request, "h3terrain", root) as url:
            publish_city(url, root / "city")
            yield url


@pytest.fixture(scope="module")
def client(terrain_store_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(terrain_store_url, server_url="http://testserver")) as client:
        yield client


def layer_json(client: TestClient, query: str = "") -> dict:
    response = client.get(f"{TERRAIN}/layer.json{query}")
    assert response.status_code == 200, response.text
    return response.json()


def tile_at(z: int, lon: float, lat: float) -> TerrainTile:
    size = 180.0 / (1 << z)
    return TerrainTile(z, int((lon + 180.0) // size), int((lat + 90.0) // size))


def get_tile(client: TestClient, tile: TerrainTile, query: str = "", accept: str = PLAIN) -> QuantizedMesh:
    response = client.get(f"{TERRAIN}/{tile.z}/{tile.x}/{tile.y}.terrain{query}", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.quantized-mesh")
    return decode(response.content)


def dem_path(client: TestClient, release: int | None = None) -> str:
    store = client.app.state.store
    layers = store.layers() if release is None else store.release_layers(release)
    return next(i.raster_path for i in layers if i.name == "dem")


def check_mesh(mesh: QuantizedMesh) -> None:
    """What every tile must be: counter-clockwise triangles seen from above, every vertex used,
    edge lists holding exactly the vertices on the edges."""
    a, b, c = mesh.triangles.T
    cross = (mesh.u[b] - mesh.u[a]) * (mesh.v[c] - mesh.v[a]) - (mesh.v[b] - mesh.v[a]) * (mesh.u[c] - mesh.u[a])
    assert (cross > 0).all()
    assert set(np.unique(mesh.triangles)) == set(range(len(mesh.u)))
    for edge, where in ((mesh.west, mesh.u == 0), (mesh.east, mesh.u == 32767), (mesh.south, mesh.v == 0),
                        (mesh.north, mesh.v == 32767)):
        assert sorted(edge) == list(np.flatnonzero(where)) and len(edge) >= 2


def test_layer_json_describes_the_terrain_for_cesium(client: TestClient) -> None:
    doc = layer_json(client)
    assert doc["tilejson"] == "2.1.0" and doc["format"] == "quantized-mesh-1.0"
    assert doc["scheme"] == "tms" and doc["projection"] == "EPSG:4326" and doc["extensions"] == ["octvertexnormals"]
    assert doc["tiles"] == ["{z}/{x}/{y}.terrain?v={version}&release=1"] and doc["release"] == 1
    # 10 m DEM pixels: level 13 is the first whose 256 grid steps per tile (9.5 m) are finer
    assert doc["minzoom"] == 0 and doc["maxzoom"] == 13 and len(doc["available"]) == 14
    assert doc["available"][0] == [{"startX": 0, "startY": 0, "endX": 1, "endY": 0}]  # the whole globe
    west, south, east, north = doc["bounds"]
    dem = client.get("/collections/dem").json()
    assert doc["bounds"] == pytest.approx(dem["extent"]["spatial"]["bbox"][0])
    for z, ranges in enumerate(doc["available"][1:], start=1):
        (available,) = ranges
        for lon, lat in ((west, south), (east, north), HILL):  # the DEM's corners and its hill are covered
            tile = tile_at(z, lon, lat)
            assert available["startX"] <= tile.x <= available["endX"] and available["startY"] <= tile.y <= available["endY"]
        assert (available["endX"] - available["startX"] + 1) * (available["endY"] - available["startY"] + 1) <= 16
    # the same document for the release pinned
    assert layer_json(client, "?release=1") == doc


def test_level_zero_covers_the_globe(client: TestClient) -> None:
    for x in (0, 1):
        mesh = get_tile(client, TerrainTile(0, x, 0))
        check_mesh(mesh)
        assert mesh.minimum_height == mesh.maximum_height == 0.0  # no DEM at this scale: the ellipsoid
        # curved: enough vertices that no chord sags more than the level's error (77 km)
        assert len(mesh.u) >= 17 * 17


@pytest.mark.parametrize("z", [11, 12, 13])
def test_vertex_heights_are_the_dem(client: TestClient, z: int) -> None:
    tile = tile_at(z, *HILL)
    mesh = get_tile(client, tile)
    check_mesh(mesh)
    lon, lat, h = mesh.lonlat_heights(tile.bounds())
    dem = heights_at(dem_path(client), lon, lat)
    tolerance = (mesh.maximum_height - mesh.minimum_height) / 32767 + 0.01
    inside = np.isfinite(dem)
    assert inside.sum() > 3
    assert np.abs(h[inside] - dem[inside]).max() <= tolerance
    assert (h[~inside] == 0).all()  # outside the DEM and beside nodata: 0 m
    true = np.array([elevation_at(a, b) for a, b in zip(lon[inside], lat[inside])])
    assert np.abs(h[inside] - true).max() <= 0.3
    assert mesh.maximum_height == pytest.approx(h.max()) and mesh.minimum_height == pytest.approx(h.min())


def test_grid_heights_are_heights_at_on_a_grid(client: TestClient) -> None:
    """The terrain's sampler and the buildings' are one rule: the same values, NaN at the same places
    (outside the DEM, beside its nodata block in the north-west)."""
    path = dem_path(client)
    lon = np.linspace(117.150, 117.210, 61)
    lat = np.linspace(39.162, 39.118, 45)
    grid = grid_heights(path, lon, lat)
    gx, gy = np.meshgrid(lon, lat)
    points = heights_at(path, gx.ravel(), gy.ravel()).reshape(grid.shape)
    assert np.array_equal(np.isnan(grid), np.isnan(points)) and np.isnan(grid).any() and (~np.isnan(grid)).sum() > 1000
    assert np.allclose(grid, points, equal_nan=True, rtol=0, atol=1e-9)
    # a coarse spacing reads an overview: close to the full resolution on this smooth hill
    coarse = grid_heights(path, lon, lat, spacing_m=120.0)
    both = ~np.isnan(coarse) & ~np.isnan(grid)
    assert both.sum() > 1000 and 0 < np.abs(coarse[both] - grid[both]).max() < 0.5  # averaged 2 × 2 pixels


@pytest.mark.parametrize("z", [12, 13])
def test_the_mesh_is_within_its_error_between_vertices(client: TestClient, z: int) -> None:
    tile = tile_at(z, *HILL)
    mesh = get_tile(client, tile)
    west, south, east, north = tile.bounds()
    # grid samples of the tile (every 8th), located in their triangles by barycentric coordinates
    index = np.arange(0, GRID, 8)
    gu, gv = np.meshgrid(index * 32767 / (GRID - 1), index * 32767 / (GRID - 1))
    pu, pv = gu.ravel(), gv.ravel()
    lon, lat, h = mesh.lonlat_heights(tile.bounds())
    a, b, c = mesh.triangles.T
    ua, va, ub, vb, uc, vc = mesh.u[a], mesh.v[a], mesh.u[b], mesh.v[b], mesh.u[c], mesh.v[c]
    det = (vb - vc) * (ua - uc) + (uc - ub) * (va - vc)
    l1 = ((vb - vc)[None] * (pu[:, None] - uc) + (uc - ub)[None] * (pv[:, None] - vc)) / det
    l2 = ((vc - va)[None] * (pu[:, None] - uc) + (ua - uc)[None] * (pv[:, None] - vc)) / det
    l3 = 1 - l1 - l2
    eps = -1e-9
    within = (l1 >= eps) & (l2 >= eps) & (l3 >= eps)
    assert within.any(axis=1).all()
    t = within.argmax(axis=1)
    rows = np.arange(len(pu))
    mesh_h = l1[rows, t] * h[a[t]] + l2[rows, t] * h[b[t]] + l3[rows, t] * h[c[t]]
    dem = np.nan_to_num(heights_at(dem_path(client), west + (east - west) * pu / 32767, south + (north - south) * pv / 32767))
    error = FINE_ERROR if z == layer_json(client)["maxzoom"] else geometric_error(z)
    assert np.abs(mesh_h - dem).max() <= error + (mesh.maximum_height - mesh.minimum_height) / 32767 + 0.02


def test_tiles_rendered_at_once_in_threads_are_the_tiles_rendered_one_by_one(client: TestClient) -> None:
    """The server renders in a thread pool; pymartini's mesher keeps scratch buffers (one per thread
    here: a shared one gave IndexErrors and wrong meshes under this load)."""
    engine = client.app.state.terrain
    terrain = engine.terrain("dem")
    centre = tile_at(13, *HILL)
    tiles = [TerrainTile(13, centre.x + dx, centre.y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    tiles = [tile for tile in tiles if terrain.is_available(tile)]
    one_by_one = {tile: engine.render(terrain, tile) for tile in tiles}
    with ThreadPoolExecutor(8) as pool:
        at_once = list(pool.map(lambda tile: (tile, engine.render(terrain, tile)), tiles * 4))
    assert all(data == one_by_one[tile] for tile, data in at_once)


def test_vertex_normals_when_accept_asks(client: TestClient) -> None:
    tile = tile_at(13, *HILL)
    url = f"{TERRAIN}/13/{tile.x}/{tile.y}.terrain"
    plain = client.get(url, headers={"Accept": PLAIN})
    lit = client.get(url, headers={"Accept": NORMALS})
    assert plain.headers["vary"] == lit.headers["vary"] == "Accept"
    assert plain.headers["content-type"] == "application/vnd.quantized-mesh"
    assert lit.headers["content-type"] == "application/vnd.quantized-mesh;extensions=octvertexnormals"
    assert plain.headers["etag"] != lit.headers["etag"]
    assert decode(plain.content).extensions == {}
    mesh = decode(lit.content)
    normals = oct_decode(mesh.extensions[1])
    assert normals.shape == (len(mesh.u), 3)
    lon, lat, h = mesh.lonlat_heights(tile.bounds())
    lam, phi = np.radians(lon), np.radians(lat)
    up = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
    assert (np.einsum("ij,ij->i", normals, up) > 0).all()  # outward
    # the area-weighted mean of the faces' normals (ECEF), within the 8-bit oct encoding's ~1 degree
    a, e2 = 6378137.0, 6.69437999014e-3
    n = a / np.sqrt(1 - e2 * np.sin(phi) ** 2)
    xyz = np.stack([(n + h) * np.cos(phi) * np.cos(lam), (n + h) * np.cos(phi) * np.sin(lam),
                    (n * (1 - e2) + h) * np.sin(phi)], axis=1)
    corners = xyz[mesh.triangles]
    faces = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    expected = np.zeros_like(xyz)
    for k in range(3):
        np.add.at(expected, mesh.triangles[:, k], faces * np.linalg.norm(faces, axis=1)[:, None])
    expected /= np.linalg.norm(expected, axis=1)[:, None]
    assert (np.einsum("ij,ij->i", normals, expected) > np.cos(np.radians(1.5))).all()
    # the same mesh otherwise
    assert np.array_equal(mesh.triangles, decode(plain.content).triangles)
    # an Accept naming other extensions only: none added
    other = client.get(url, headers={"Accept": "application/vnd.quantized-mesh;extensions=watermask"})
    assert decode(other.content).extensions == {}


def test_etag_304_and_cache_control(client: TestClient) -> None:
    tile = tile_at(12, *HILL)
    url = f"{TERRAIN}/12/{tile.x}/{tile.y}.terrain"
    pinned = client.get(url + "?v=1.0.0&release=1")
    assert pinned.headers["cache-control"] == "public, max-age=86400, immutable"
    unpinned = client.get(url)
    assert unpinned.headers["cache-control"] == "public, max-age=60"
    assert pinned.headers["etag"] == unpinned.headers["etag"] and pinned.content == unpinned.content
    again = client.get(url + "?release=1", headers={"If-None-Match": pinned.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == pinned.headers["etag"]
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_dem_links_its_terrain_and_the_openapi_document_has_its_paths(client: TestClient) -> None:
    links = client.get("/collections/dem").json()["links"]
    (terrain,) = [link for link in links if link["href"].endswith("/terrain/layer.json")]
    assert terrain["rel"] == "alternate" and terrain["href"] == "http://testserver/collections/dem/terrain/layer.json"
    listed = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    assert terrain in listed["dem"]["links"]
    assert not any("/terrain/" in link["href"] for link in listed["imagery"]["links"])
    paths = client.get("/openapi", params={"f": "json"}).json()["paths"]
    assert "/collections/{demCollectionId}/terrain/layer.json" in paths
    tile = paths["/collections/{demCollectionId}/terrain/{z}/{x}/{y}.terrain"]["get"]
    assert "application/vnd.quantized-mesh" in tile["responses"]["200"]["content"]
    assert client.app.state.terrain.dem_layer() == "dem"


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/collections/imagery/terrain/layer.json", 404, "not an elevation raster"),
        ("/collections/buildings/terrain/0/0/0.terrain", 404, "not an elevation raster"),
        ("/collections/nowhere/terrain/layer.json", 404, "not a collection"),
        (f"{TERRAIN}/14/0/0.terrain", 404, "levels 0..13"),
        (f"{TERRAIN}/0/2/0.terrain", 404, "columns 0..1"),
        (f"{TERRAIN}/0/0/1.terrain", 404, "rows 0..0"),
        (f"{TERRAIN}/13/0/0.terrain", 404, "outside the DEM"),
        (f"{TERRAIN}/99/0/0.terrain", 404, "levels 0..13"),
        (f"{TERRAIN}/100/0/0.terrain", 400, "level (z)"),
        (f"{TERRAIN}/-1/0/0.terrain", 400, "level (z)"),
        (f"{TERRAIN}/a/0/0.terrain", 400, "level (z)"),
        (f"{TERRAIN}/1/1e3/0.terrain", 400, "column (x)"),
        (f"{TERRAIN}/1/0/99999999999999999999.terrain", 400, "row (y)"),
        (f"{TERRAIN}/1/0/%EF%BC%91.terrain", 400, "row (y)"),  # a full-width digit
        (f"{TERRAIN}/0/0/0.terrain?release=abc", 400, "release"),
        (f"{TERRAIN}/0/0/0.terrain?release=0", 400, "release"),
        (f"{TERRAIN}/0/0/0.terrain?release=99", 404, "no release 99"),
        (f"{TERRAIN}/layer.json?release=-1", 400, "release"),
        (f"{TERRAIN}/layer.json?f=xml", 400, "layer.json is JSON"),
    ],
)
def test_bad_requests_are_ogc_exceptions(client: TestClient, path: str, status: int, words: str) -> None:
    response = client.get(path)
    assert response.status_code == status, (path, response.text)
    assert words in response.json()["description"], response.json()


def test_a_city_without_a_dem_has_no_terrain(api_client: TestClient) -> None:
    assert api_client.app.state.terrain.dem_layer() is None
    for path in ("/collections/buildings/terrain/layer.json", "/collections/buildings/terrain/0/0/0.terrain"):
        response = api_client.get(path)
        assert response.status_code == 404
        assert "has no DEM" in response.json()["description"]
    paths = api_client.get("/openapi", params={"f": "json"}).json()["paths"]
    assert not any("/terrain/" in path for path in paths)


def test_a_pinned_release_serves_its_own_dem(client: TestClient, terrain_store_url: str, tmp_path: Path) -> None:
    """Last in the module: publishes release 2, the same hill 10 m higher."""
    tile = tile_at(13, *HILL)
    before = get_tile(client, tile)
    assert publish_city(terrain_store_url, tmp_path / "city", dem_shift=10.0) == 2
    assert wait_until(lambda: client.app.state.store.current_number() == 2)  # PostGIS readers: within a second
    assert layer_json(client)["tiles"] == ["{z}/{x}/{y}.terrain?v={version}&release=2"]
    assert layer_json(client, "?release=1")["tiles"] == ["{z}/{x}/{y}.terrain?v={version}&release=1"]
    old = get_tile(client, tile, "?release=1")
    new = get_tile(client, tile, "?release=2")
    assert old.maximum_height == before.maximum_height
    assert new.maximum_height == pytest.approx(before.maximum_height + 10.0, abs=0.01)
    lon, lat, h = new.lonlat_heights(tile.bounds())
    dem = heights_at(dem_path(client, 2), lon, lat)
    inside = np.isfinite(dem)
    assert np.abs(h[inside] - dem[inside]).max() <= (new.maximum_height - new.minimum_height) / 32767 + 0.01
    url = f"{TERRAIN}/13/{tile.x}/{tile.y}.terrain"
    # release 1 is no longer current: its tiles are no longer immutable; the current one's are
    assert client.get(url + "?release=1").headers["cache-control"] == "public, max-age=60"
    assert client.get(url + "?release=2").headers["cache-control"] == "public, max-age=86400, immutable"
    assert client.get(url + "?release=1").headers["etag"] != client.get(url + "?release=2").headers["etag"]
