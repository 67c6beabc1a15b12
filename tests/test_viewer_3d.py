"""The 3D viewer (/viewer/3d): CesiumJS with the LOD1 buildings as 3D Tiles, in headless Chromium.

In process: the page's configuration (the release's tilesets, the start point, no terrain without a
DEM), nothing from a CDN or Cesium ion, the Cesium tree served by version with media types by
suffix and no way out of it, the page without CesiumJS installed.

In the browser (real socket, both stores; tests/support/browser.py: Chromium over the DevTools pipe,
WebGL on SwiftShader): the page reaches ``ready`` with no errors, the screenshot holds the
buildings' colours, and a real mouse click (CDP ``Input.dispatchMouseEvent``) on a building opens
the panel with that building's attributes as the Features API has them.

CesiumJS comes from the npm registry (``ensure_cesium``, scripts/test). ``CIM_TEST_SKIP_BROWSER=1``
skips the browser tests.
"""

from __future__ import annotations

import html
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
import rasterio
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support.browser import BrowserError, Chromium, require_chromium
import test_warnings_viewer
from test_warnings_viewer import BLUE_RING, RED_RING, alert, ingest
from ogcapi.errors import install_handlers
from ogcapi.viewer3d import INSTALL_HINT, MEDIA_TYPES, VENDOR_DIR, Viewer3D, cesium_version, vendor_file, viewer3d_routes
from cim.errors import NotFound
from tiles.warning_style import COLOURS

SKIP_BROWSER = os.environ.get("CIM_TEST_SKIP_BROWSER") == "1"
STATUS = (
    "(function () { var e = document.getElementById('status');"
    " return e && e.getAttribute('data-state') !== 'loading' ? e.textContent : null; })()"
)
CONFIG_START = '<script id="cim-viewer3d-config" type="application/json">'


def page_config(page: str) -> dict[str, Any]:
    return json.loads(page.split(CONFIG_START)[1].split("</script>")[0])


def installed() -> str:
    version = cesium_version()
    if version is None:
        pytest.fail(INSTALL_HINT)
    return version


# --- the page and its files (in-process) -------------------------------------------------------


@pytest.mark.browser  # no Chromium, but CesiumJS from npm (scripts/test installs it with the browser part)
def test_page_config_names_the_release_tilesets_and_local_cesium(api_client: TestClient) -> None:
    version = installed()
    response = api_client.get("/viewer/3d")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<pre id="status" data-state="loading">' in page
    config = page_config(page)
    vendor = f"http://testserver/viewer/3d/vendor/{version}/"
    assert config["cesiumBaseUrl"] == vendor and config["cesiumVersion"] == version
    assert f'<script src="{vendor}Cesium.js"></script>' in page
    assert [t["id"] for t in config["tilesets"]] == ["buildings"]  # the demo's lod1 layer
    assert config["tilesets"][0]["url"] == "http://testserver/collections/buildings/3dtiles"
    assert config["tilesets"][0]["items"] == "http://testserver/collections/buildings/items"
    assert config["terrain"] is None and config["imagery"] == []  # the demo city has no DEM, no rasters
    # the composite base map draped as PNG map tiles (tests/test_tiles_map_basemap.py), pinned to the release
    basemap = config["basemap"]
    assert basemap["url"] == "http://testserver/map/tiles/WebMercatorQuad/{z}/{y}/{x}?release=1"
    assert basemap["minzoom"] <= basemap["maxzoom"] == 22 and len(basemap["bbox"]) == 4
    assert config["release"] == 1
    west, south, east, north = config["extent"]
    assert west <= config["center"]["lon"] <= east and south <= config["center"]["lat"] <= north
    assert config["warnings"]["stream"] == "http://testserver/warnings/stream"
    # every URL is this server's: no CDN, no Cesium ion
    urls = re.findall(r"https?://[^\s\"'<>]+", page)
    assert urls and all(url.startswith("http://testserver/") for url in urls), [u for u in urls if "testserver" not in u]
    assert "cesium.com" not in page.lower() and "cdn" not in page.lower()
    script = api_client.get("/viewer/3d/viewer3d.js").text
    assert 'Cesium.Ion.defaultAccessToken = ""' in script and "baseLayer: false" in script and "geocoder: false" in script
    assert not re.findall(r"https?://", script)


@pytest.mark.browser
def test_the_cesium_tree_is_served_by_version_with_media_types(api_client: TestClient) -> None:
    version = installed()
    samples = {".js": "Cesium.js", ".css": "Widgets/widgets.css"}
    for suffix in (".wasm", ".json", ".png", ".jpg", ".xml"):
        found = next(p for p in sorted(VENDOR_DIR.rglob(f"*{suffix}")) if p.is_file())
        samples[suffix] = found.relative_to(VENDOR_DIR).as_posix()
    for suffix, relative in samples.items():
        response = api_client.get(f"/viewer/3d/vendor/{version}/{relative}")
        assert response.status_code == 200, relative
        assert response.headers["content-type"].startswith(MEDIA_TYPES[suffix].split(";")[0]), relative
        assert "immutable" in response.headers["cache-control"]
        assert response.content == (VENDOR_DIR / relative).read_bytes()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/viewer/3d?f=json", 400),
        ("/viewer/3d/nothing.js", 404),
        ("/viewer/3d/vendor/{v}/..%2F..%2Fviewer3d.py", 404),
        ("/viewer/3d/vendor/{v}/%2e%2e/%2e%2e/viewer3d.py", 404),
        ("/viewer/3d/vendor/{v}/Workers/..%2F..%2F..%2Fapp.py", 404),
        ("/viewer/3d/vendor/{v}/%2Fetc%2Fpasswd", 404),
        ("/viewer/3d/vendor/{v}/Workers", 404),  # a folder
        ("/viewer/3d/vendor/{v}/VERSION", 404),  # no media type
        ("/viewer/3d/vendor/{v}/nothing.js", 404),
        ("/viewer/3d/vendor/0.0.1/Cesium.js", 404),  # another version
    ],
)
def test_viewer_errors_are_ogc_exceptions(api_client: TestClient, path: str, status: int) -> None:
    response = api_client.get(path.replace("{v}", cesium_version() or "1.145.0"))
    assert response.status_code == status, response.text
    assert set(response.json()) == {"code", "type", "description"}


def test_vendor_files_stay_inside_the_tree(tmp_path: Path) -> None:
    tree = tmp_path / "cesium"
    (tree / "Workers").mkdir(parents=True)
    (tree / "Workers" / "task.js").write_text("// worker")
    (tmp_path / "secret.js").write_text("// outside")
    (tree / "Workers" / "link.js").symlink_to(tmp_path / "secret.js")
    assert vendor_file(tree, "Workers/task.js") == (tree / "Workers" / "task.js").resolve()
    for relative in ("../secret.js", "Workers/../../secret.js", "Workers/link.js", str(tmp_path / "secret.js"),
                     "", "Workers", "Workers\\task.js", "Workers/task.js\0.png"):
        with pytest.raises(NotFound):
            vendor_file(tree, relative)


def test_without_cesium_the_page_says_how_to_install_it(api_client: TestClient, tmp_path: Path) -> None:
    app = FastAPI()
    install_handlers(app)
    store = api_client.app.state.store
    app.router.routes.extend(viewer3d_routes(store, "http://testserver", vendor_dir=tmp_path))
    with TestClient(app) as client:
        page = client.get("/viewer/3d")
        assert page.status_code == 200
        assert "ensure_cesium" in page.text and "<script src=" not in page.text
        status = json.loads(html.unescape(page.text.split('data-state="error">')[1].split("</pre>")[0]))
        assert status == {"state": "error", "errors": [INSTALL_HINT]}
        missing = client.get("/viewer/3d/vendor/1.145.0/Cesium.js")
        assert missing.status_code == 404 and "ensure_cesium" in missing.json()["description"]
    assert Viewer3D(store, "http://testserver", tmp_path).render().count("<script") == 1  # the JSON config only


def test_the_2d_viewer_links_the_3d_viewer(api_client: TestClient) -> None:
    assert 'href="http://testserver/viewer/3d"' in api_client.get("/viewer").text


# --- CesiumJS in headless Chromium (real socket, both stores) ----------------------------------


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = require_chromium()
    installed()
    return path


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Chromium]:
    with Chromium(chromium_path, width=1000, height=700) as chromium:
        yield chromium


def open_viewer(browser: Chromium, url: str) -> dict[str, Any]:
    """Load ``url`` and return the status JSON once the scene is ready (or has failed)."""
    browser.navigate(url)
    try:
        text = browser.wait_for(STATUS, timeout=300)
    except BrowserError as exc:
        raise AssertionError(f"{exc}; page errors: {browser.page_errors()}; chromium: {browser.stderr_tail()}") from None
    status = json.loads(text)
    assert status["state"] == "ready", (status, browser.page_errors())
    assert status["errors"] == [], status["errors"]
    assert browser.page_errors() == []
    print(f"/viewer/3d ready after {status['readyMs']} ms (performance.now(), headless Chromium, SwiftShader)")
    return status


def warm_pixels(png: Path) -> tuple[float, int]:
    """The screenshot's pixel standard deviation and how many pixels are clearly red-orange (the
    buildings' height colours, shaded: red well above blue, not the grey ground or the panel)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(png) as image:
            rgb = image.read()[:3].astype(np.int32)
    r, g, b = rgb
    warm = (r > b + 60) & (r > g + 20)
    warm[:260, :330] = False  # the panel's legend swatches
    return float(rgb.std()), int(warm.sum())


#: the page scans a grid of canvas points for one where scene.pick hits a building (a feature of a
#: 3D tile), and gives its point and the feature's fid
FIND_BUILDING = """(function () {
  var v = window.cimViewer3d.viewer, c = v.scene.canvas;
  for (var y = 0.3; y < 0.9; y += 0.04) for (var x = 0.35; x < 0.95; x += 0.03) {
    var p = new Cesium.Cartesian2(Math.round(c.clientWidth * x), Math.round(c.clientHeight * y));
    var f = v.scene.pick(p);
    if (f instanceof Cesium.Cesium3DTileFeature) {
      var r = c.getBoundingClientRect();
      return {x: p.x + r.left, y: p.y + r.top, fid: Number(f.getProperty('fid'))};
    }
  }
  return null; })()"""


def click(browser: Chromium, x: float, y: float) -> None:
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        event = {"type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved" else "none"}
        if kind != "mouseMoved":
            event["clickCount"] = 1
        browser.call("Input.dispatchMouseEvent", event)


def test_the_buildings_render_and_a_click_shows_their_attributes(live_server, browser: Chromium, tmp_path: Path) -> None:
    status = open_viewer(browser, f"{live_server.url}/viewer/3d")
    assert status["webgl"] in ("webgl2", "webgl") and status["globe"] == {"terrain": "ellipsoid", "tilesLoaded": True}
    buildings = status["tilesets"]["buildings"]
    assert buildings["state"] == "open" and buildings["tilesFailed"] == 0, buildings
    assert buildings["tilesLoaded"] > 0 and buildings["features"] > 10, buildings
    assert status["readyMs"] > 0 and status["warnings"]["loaded"] is True

    deviation, warm = warm_pixels(browser.screenshot(tmp_path / "viewer3d.png"))
    assert deviation > 10 and warm > 2000, (deviation, warm)

    target = browser.evaluate(FIND_BUILDING)
    assert target is not None, "no building under the grid of canvas points"
    click(browser, target["x"], target["y"])
    text = browser.wait_for(
        "(function () { var p = window.cimViewer3d.status.picked; return p && p.item ? JSON.stringify(p) : null; })()",
        timeout=60,
    )
    picked = json.loads(text)
    assert picked["layer"] == "buildings" and picked["fid"] == target["fid"]
    item = httpx.get(f"{live_server.url}/collections/buildings/items/{target['fid']}?f=json").json()
    assert picked["item"] == {"id": item["id"], "properties": item["properties"]}
    # the tile's property table row agrees with the Features API where both have the attribute
    common = set(picked["properties"]) & set(item["properties"])
    assert {"fid", "height", "height_source", "base"} <= set(picked["properties"]), picked["properties"]  # the rest: where a tile has data
    for name in common:
        assert picked["properties"][name] == pytest.approx(item["properties"][name]), (name, picked, item)
    panel = browser.evaluate("document.getElementById('feature').textContent")
    assert f"#{target['fid']}" in panel and f"Features API item {target['fid']}" in panel, panel
    for name, value in item["properties"].items():
        if isinstance(value, (str, int)) and value != "":
            assert str(value) in panel, (name, value, panel)
    link = browser.evaluate("document.querySelector('#feature h3 a').href")
    assert link == f"{live_server.url}/collections/buildings/items/{target['fid']}"
    assert browser.page_errors() == []


def test_the_hash_sets_the_point_looked_at(live_server, browser: Chromium) -> None:
    open_viewer(browser, f"{live_server.url}/viewer/3d#60.1680/24.9440/1500")  # central Helsinki, 1.5 km away
    looked_at = browser.evaluate(
        "(function () { var v = window.cimViewer3d.viewer, c = v.scene.canvas;"
        " var p = v.camera.pickEllipsoid(new Cesium.Cartesian2(c.clientWidth / 2, c.clientHeight / 2));"
        " var g = Cesium.Cartographic.fromCartesian(p);"
        " return [Cesium.Math.toDegrees(g.latitude), Cesium.Math.toDegrees(g.longitude),"
        " Cesium.Cartesian3.distance(p, v.camera.positionWC)]; })()"
    )
    assert looked_at[0] == pytest.approx(60.1680, abs=1e-3) and looked_at[1] == pytest.approx(24.9440, abs=1e-3)
    assert looked_at[2] == pytest.approx(1500, rel=0.01)


# --- warnings over the 3D scene (the warnings viewer's city: one red warning in force) ------------

#: the warnings viewer's city with one red warning in force, on a real socket (each store; this module's own)
warning_server = test_warnings_viewer.warning_server

#: the warning entities drawn: [fid, css colour of the fill] per polygon
DRAWN_WARNINGS = """JSON.stringify(window.cimViewer3d.warnings.entities.values.filter(function (e) { return e.polygon; })
  .map(function (e) { return [Number(e.id), e.polygon.material.color.getValue().toCssHexString()]; }).sort())"""


def picks_warning_at(browser: Chromium, ring: list[tuple[float, float]], headline: str) -> bool:
    """Whether the warning drawn at the centre of a (lat, lon) ring has ``headline`` (Cesium drillPick;
    a ground-clamped polygon is ready a few frames after its entity)."""
    try:
        browser.wait_for(_pick_expression(ring, headline), timeout=60)
    except BrowserError:
        return False
    return True


def _pick_expression(ring: list[tuple[float, float]], headline: str) -> str:
    lat = sum(p[0] for p in ring) / len(ring)
    lon = sum(p[1] for p in ring) / len(ring)
    return (
        "(function () { var v = window.cimViewer3d.viewer; v.scene.render();"
        f" var p = Cesium.SceneTransforms.worldToWindowCoordinates(v.scene, Cesium.Cartesian3.fromDegrees({lon}, {lat}, 0));"
        " if (!p) return false;"
        " return v.scene.drillPick(p).filter(function (o) { return o.id instanceof Cesium.Entity && o.id.properties; })"
        f".map(function (o) {{ return o.id.properties.headline.getValue(); }}).join('|') === {json.dumps(headline)}; }})()"
    )


def test_warnings_are_drawn_in_their_colours_and_kept_live(warning_server, browser: Chromium) -> None:
    _, red_fid = warning_server.red
    status = open_viewer(browser, f"{warning_server.url}/viewer/3d#60.1680/24.9460/2500")
    browser.wait_for("window.cimViewer3d.status.warnings.loaded && window.cimViewer3d.status.warnings.state === 'live'", timeout=60)
    browser.wait_for("window.cimViewer3d.status.warnings.count === 1", timeout=60)
    browser.wait_for(f"{DRAWN_WARNINGS} === JSON.stringify([[{red_fid}, '{COLOURS['red']}73']])", timeout=60)
    assert picks_warning_at(browser, RED_RING, "红色测试预警")
    assert status["warnings"]["count"] in (0, 1)
    browser.evaluate("window.cimTestMarker = 'same page'")

    _, blue = alert(2, BLUE_RING, "蓝色", "Minor", "蓝色测试预警")  # ingested while the page is open
    blue_fid = ingest(warning_server.store_url, blue)
    browser.wait_for("window.cimViewer3d.status.warnings.count === 2", timeout=60)
    drawn = json.loads(browser.evaluate(DRAWN_WARNINGS))
    assert drawn == sorted([[red_fid, f"{COLOURS['red']}73"], [blue_fid, f"{COLOURS['blue']}73"]])
    assert picks_warning_at(browser, BLUE_RING, "蓝色测试预警")
    assert browser.evaluate("window.cimTestMarker") == "same page"
    assert browser.evaluate("window.cimViewer3d.status.warnings.events") >= 1
    assert json.loads(browser.evaluate("document.getElementById('status').textContent"))["errors"] == []
    assert browser.page_errors() == []


# --- a city with a DEM and an orthophoto: terrain and imagery on (the embedded store; the terrain and
# map tile tests cover both stores' tiles, this the page in a browser) --------------------------------


@pytest.fixture(scope="module")
def dem_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The raster test city (DEM with a hill, orthophoto, three buildings; tests/support/rasters.py)."""
    from support.server import LiveServer
    from test_tiles_rasters import publish_city

    root = tmp_path_factory.mktemp("viewer3d-dem")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIM_RASTER_DIR", str(root / "cogs"))
        patch.setenv("CIM_TILE_CACHE", str(root / "tile-cache"))
        url = str(root / "city.duckdb")
        publish_city(url, root / "city")
        with LiveServer(url) as server:
            yield server


#: the canvas point of a building's middle: (lon, lat, height above the ground) -> JS expression
BUILDING_POINT = """(function () {{
  var v = window.cimViewer3d.viewer, c = v.scene.canvas, r = c.getBoundingClientRect();
  var ground = v.scene.globe.getHeight(Cesium.Cartographic.fromDegrees({lon}, {lat}));
  var p = Cesium.SceneTransforms.worldToWindowCoordinates(v.scene, Cesium.Cartesian3.fromDegrees({lon}, {lat}, ground + {up}));
  return p ? {{x: p.x + r.left, y: p.y + r.top, ground: ground}} : null; }})()"""


def test_a_city_with_a_dem_has_terrain_imagery_and_buildings_on_the_ground(dem_server, browser: Chromium, tmp_path: Path) -> None:
    import shapely.geometry

    config = page_config(httpx.get(f"{dem_server.url}/viewer/3d").text)
    assert config["terrain"] == {"id": "dem", "url": f"{dem_server.url}/collections/dem/terrain/"}
    assert [layer["id"] for layer in config["imagery"]] == ["imagery"]
    status = open_viewer(browser, f"{dem_server.url}/viewer/3d")
    assert status["globe"] == {"terrain": "dem", "tilesLoaded": True}
    assert status["tilesets"]["buildings"]["features"] == 3, status["tilesets"]
    assert browser.evaluate("window.cimViewer3d.viewer.terrainProvider instanceof Cesium.CesiumTerrainProvider")
    deviation, _ = warm_pixels(browser.screenshot(tmp_path / "dem.png"))
    assert deviation > 20  # the orthophoto's gradients on the hill

    # click the middle of a building found through the Features API: it stands on the terrain
    items = httpx.get(f"{dem_server.url}/collections/buildings/items?f=json").json()["features"]
    building = items[0]
    point = shapely.geometry.shape(building["geometry"]).representative_point()
    target = browser.evaluate(BUILDING_POINT.format(lon=point.x, lat=point.y, up=3))
    assert target is not None and target["ground"] > 50, target  # the hill of support/rasters.py
    click(browser, target["x"], target["y"])
    picked = json.loads(browser.wait_for(
        "(function () { var p = window.cimViewer3d.status.picked; return p && p.item ? JSON.stringify(p) : null; })()",
        timeout=60,
    ))
    assert picked["fid"] == building["id"] and picked["item"]["properties"] == building["properties"]
    assert picked["properties"]["base"] == pytest.approx(target["ground"], abs=2.0)  # on the ground, not under it
    assert browser.page_errors() == []
