"""The map viewer (/viewer) and the composite style rendered by MapLibre GL JS in headless Chromium.

The browser tests start the app on a real socket (``live_server``, both stores), open the viewer in
Chromium with WebGL on SwiftShader (tests/support/browser.py), wait until the page's ``<pre id="status">``
says the map is idle, and check what MapLibre rendered: features of every demo layer at a zoom
where all are in range, no map errors, and a screenshot holding the catalog's colours.

Chromium comes from the Debian package ``chromium`` and MapLibre GL JS from the npm registry, both
installed by scripts/test. ``CIM_TEST_SKIP_BROWSER=1`` skips the browser tests.
"""

from __future__ import annotations

import html
import json
import os
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
from layers.catalog import CATALOG
from ogcapi.errors import install_handlers
from ogcapi.document_additions import REL_MAP
from ogcapi.viewer import INSTALL_HINT, Viewer, maplibre_version, viewer_routes

DEMO_VECTOR = ["landuse", "water", "parcels", "roads", "admin_divisions", "buildings", "pois", "warnings"]  # warnings: the live layer every store has
#: central Helsinki (the demo's larger extract), where every demo layer is in range: #zoom/lat/lon
STREET_VIEW = "#15/60.1680/24.9440"
#: the layers drawn there: the demo store has no warning in force (tests/test_warnings_viewer.py draws some)
DRAWN = [name for name in DEMO_VECTOR if name != "warnings"]
SKIP_BROWSER = os.environ.get("CIM_TEST_SKIP_BROWSER") == "1"
STATUS = (
    "(function () { var e = document.getElementById('status');"
    " return e && e.getAttribute('data-state') !== 'loading' ? e.textContent : null; })()"
)


# --- the page and its files (in-process) -------------------------------------------------------


def test_landing_page_links_the_viewer(api_client: TestClient) -> None:
    links = [link for link in api_client.get("/").json()["links"] if link["rel"] == REL_MAP]
    assert links == [
        {"rel": REL_MAP, "type": "text/html", "title": "Map viewer", "href": "http://testserver/viewer"},
        {"rel": REL_MAP, "type": "text/html", "title": "3D viewer", "href": "http://testserver/viewer/3d"},
    ]


@pytest.mark.browser  # no Chromium, but MapLibre GL JS from npm (scripts/test installs it with the browser part)
def test_viewer_page_loads_the_style_and_local_maplibre(api_client: TestClient) -> None:
    if maplibre_version() is None:
        pytest.fail(INSTALL_HINT)
    response = api_client.get("/viewer")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<pre id="status" data-state="loading">' in page
    config = json.loads(page.split('<script id="cim-viewer-config" type="application/json">')[1].split("</script>")[0])
    assert config["style"] == "http://testserver/styles/basemap"
    assert "http://testserver/viewer/vendor/maplibre-gl.js?v=" in page  # served here, no CDN
    assert "unpkg" not in page and "cdn" not in page.lower()
    for path, media_type in [
        ("/viewer/vendor/maplibre-gl.js", "text/javascript"),
        ("/viewer/vendor/maplibre-gl.css", "text/css"),
        ("/viewer/viewer.js", "text/javascript"),
        ("/viewer/viewer.css", "text/css"),
    ]:
        asset = api_client.get(path)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media_type), path
        assert asset.content
    assert api_client.get("/styles/basemap").status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [("/viewer?f=json", 400), ("/viewer/vendor/other.js", 404), ("/viewer/nothing.js", 404), ("/viewer/vendor/..%2F..%2Fviewer.py", 404)],
)
def test_viewer_errors_are_ogc_exceptions(api_client: TestClient, path: str, status: int) -> None:
    response = api_client.get(path)
    assert response.status_code == status
    assert set(response.json()) == {"code", "type", "description"}


def test_without_maplibre_the_page_says_how_to_install_it(tmp_path: Path) -> None:
    app = FastAPI()
    install_handlers(app)
    app.router.routes.extend(viewer_routes("http://testserver", vendor_dir=tmp_path))
    with TestClient(app) as client:
        page = client.get("/viewer")
        assert page.status_code == 200
        assert "ensure_maplibre" in page.text and "<script src=" not in page.text
        status = json.loads(html.unescape(page.text.split('data-state="error">')[1].split("</pre>")[0]))
        assert status == {"state": "error", "errors": [INSTALL_HINT]}
        missing = client.get("/viewer/vendor/maplibre-gl.js")
        assert missing.status_code == 404 and "ensure_maplibre" in missing.json()["description"]
    assert Viewer("http://testserver", tmp_path).render().count("<script") == 1  # the JSON config only


# --- MapLibre in headless Chromium (real socket, both stores) ----------------------------------


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_chromium(maplibre=True)


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Chromium]:
    with Chromium(chromium_path, width=1200, height=800) as chromium:
        yield chromium


def open_viewer(browser: Chromium, url: str) -> dict[str, Any]:
    """Load ``url`` and return the status JSON once the map is idle (or has failed)."""
    browser.navigate(url)
    try:
        text = browser.wait_for(STATUS, timeout=240)
    except BrowserError as exc:
        raise AssertionError(f"{exc}; page errors: {browser.page_errors()}; chromium: {browser.stderr_tail()}") from None
    status = json.loads(text)
    assert status["state"] == "idle", (status, browser.page_errors())
    assert status["errors"] == [], status["errors"]
    assert browser.page_errors() == []
    return status


def colour_counts(png: Path) -> dict[int, int]:
    """Pixels per 0xRRGGBB colour of a screenshot (read by GDAL's PNG driver)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(png) as image:
            bands = image.read()
    rgb = bands[:3].reshape(3, -1).astype(np.uint32)
    values, counts = np.unique((rgb[0] << 16) | (rgb[1] << 8) | rgb[2], return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def test_composite_style_renders_in_maplibre(live_server, browser: Chromium, tmp_path: Path) -> None:
    status = open_viewer(browser, f"{live_server.url}/viewer{STREET_VIEW}")
    assert status["webgl"] in ("webgl2", "webgl")
    assert status["zoom"] == 15 and status["sources"] == {"basemap": True}
    rendered = status["sourceLayers"]
    assert sorted(rendered) == sorted(DRAWN), rendered
    assert all(rendered[name] > 0 for name in DRAWN), rendered
    assert rendered["buildings"] > 100 and rendered["roads"] > 100, rendered

    # the legend lists the style's layers with the catalog's titles
    legend = browser.evaluate("Array.from(document.querySelectorAll('#legend li')).map(li => li.textContent)")
    for name in DEMO_VECTOR:
        assert any(CATALOG[name].title in item for item in legend), (name, legend)

    # click-to-inspect: a popup listing the properties of the feature under the pointer
    popup = browser.evaluate(
        "(function () { var m = window.cimViewer.map, c = m.getCanvas();"
        " var f = m.queryRenderedFeatures({layers: ['buildings']})[0];"
        " var p = m.project(f.geometry.type === 'Polygon' ? f.geometry.coordinates[0][0] : f.geometry.coordinates[0][0][0]);"
        " m.fire('click', {point: p, lngLat: m.unproject(p), originalEvent: {}});"
        " var el = document.querySelector('.maplibregl-popup-content');"
        " return el ? el.textContent : null; })()"
    )
    assert popup and popup.startswith(f"{CATALOG['buildings'].title} #"), popup

    shot = browser.screenshot(tmp_path / "viewer.png")
    colours = colour_counts(shot)
    assert len(colours) > 100, f"{shot}: {len(colours)} colours"
    for name in DRAWN:  # fills, lines and circles in the catalog's colours
        pixels = colours.get(int(CATALOG[name].color.lstrip("#"), 16), 0)
        assert pixels > 20, f"{name}: {pixels} pixels of {CATALOG[name].color} in {shot}"


def test_the_style_opens_on_the_data(live_server, browser: Chromium) -> None:
    """Without a #zoom/lat/lon the map starts at the style's center and zoom: the data's extent."""
    style = httpx.get(f"{live_server.url}/styles/basemap").json()
    status = open_viewer(browser, f"{live_server.url}/viewer")
    west, south, east, north = style["sources"]["basemap"]["bounds"]
    assert west <= status["center"][0] <= east and south <= status["center"][1] <= north
    assert status["zoom"] == pytest.approx(style["zoom"], abs=0.01)
    assert status["sourceLayers"].get("roads", 0) > 0, status  # both towns of the demo in view


@pytest.fixture(scope="module")
def raster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The raster test city (DEM, orthophoto, a few buildings; tests/support/rasters.py) on a real socket;
    the embedded store only: the raster tests cover both stores' tiles, this the style in a browser."""
    from support.server import LiveServer
    from test_tiles_rasters import publish_city

    root = tmp_path_factory.mktemp("viewer-rasters")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIM_RASTER_DIR", str(root / "cogs"))
        patch.setenv("CIM_TILE_CACHE", str(root / "tile-cache"))
        url = str(root / "city.duckdb")
        publish_city(url, root / "city")
        with LiveServer(url) as server:
            yield server


def test_style_with_hillshade_and_imagery_renders_in_maplibre(raster_server, browser: Chromium, tmp_path: Path) -> None:
    # map zoom 13 asks for the 256-pixel raster tiles of matrix 14: all hold data here
    status = open_viewer(browser, f"{raster_server.url}/viewer#13/39.1427/117.1790")
    assert status["sources"] == {"imagery": True, "dem": True, "basemap": True}, status
    assert status["sourceLayers"].get("buildings", 0) > 0, status
    legend = browser.evaluate("Array.from(document.querySelectorAll('#legend li')).map(li => li.textContent)")
    assert [item.split("z")[0] for item in legend][:2] == [CATALOG["imagery"].title, CATALOG["dem"].title], legend
    colours = colour_counts(browser.screenshot(tmp_path / "rasters.png"))
    assert len(colours) > 1000, len(colours)  # the orthophoto's gradients, shaded


def test_hillshade_over_a_dem_tile_without_data(raster_server, browser: Chromium) -> None:
    """Map zoom 14 over the DEM's nodata corner, where matrix 15 has tiles without a valid pixel:
    their terrain-RGB tiles are flat 0 m, so MapLibre's raster-dem source takes them (an empty answer
    failed with 'dem dimension mismatch')."""
    open_viewer(browser, f"{raster_server.url}/viewer#14/39.1427/117.1790")
