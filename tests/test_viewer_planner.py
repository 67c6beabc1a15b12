"""The viewer as a planner's tool (/viewer: ogcapi/static/planner.js, search.js, draw.js,
processes_panel.js, inspector.js), in headless Chromium on both stores, over the planned city of
tests/support/planning_city.py (buildings B1–B7, parcels P1–P4, zones R and C), used as a person would:
the map renders; a click on a building shows its attributes (the tile's, then the whole feature's);
the search box finds buildings and POIs by name or address; the 3D button extrudes the buildings and
pitches the map; a zoning-compliance run from the Processes panel and the parcel inspector draw their
results. Screenshots are kept in each test's tmp_path (like tests/test_viewer_maplibre.py's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from support.browser import Chromium, require_chromium
from support.planning_city import lonlat, release_layers
from support.postgis import BACKENDS, backend_store
from support.server import LiveServer
from test_viewer_maplibre import SKIP_BROWSER, open_viewer, raster_server  # noqa: F401  (a fixture: the raster city)
from test_warnings_viewer import screenshot

from cim.store import ReleaseDraft, open_store
from ogcapi.viewer import SCRIPTS

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
#: the middle of the commercial district (x 1300 m, y 500 m of the drawing) at zoom 16: B4 and B5 in
#: view, clear of the side panel (about 0.93 m a pixel: the view spans x 740..1860 m, y 130..870 m)
CENTRE = lonlat(1300, 500)
VIEW = f"#16/{CENTRE[1]:.6f}/{CENTRE[0]:.6f}"
#: the status JSON's "planner" part
PLANNER = "window.cimViewer.status.planner"
IDLE = "window.cimViewer.map.loaded() && document.getElementById('status').getAttribute('data-state') === 'idle'"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_chromium(maplibre=True)


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Chromium]:
    with Chromium(chromium_path, width=1200, height=800) as chromium:
        yield chromium


def token(*roles: str) -> str:
    return jwt.encode({"sub": "planner-1", "roles": list(roles), "exp": int(time.time()) + 3600}, KEY, algorithm="RS256")


@pytest.fixture(scope="module", params=BACKENDS)
def planning_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Release 1 of the planned city (EPSG:4326) on a real socket, with bearer tokens configured."""
    pem = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with backend_store(request, "planviewer", tmp_path_factory.mktemp("planviewer")) as url:
        with open_store(url) as store:
            store.publish(ReleaseDraft(layers=release_layers(4326, 1), srid=4326))
            store.prepare_tiles()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CIM_JWT_PUBLIC_KEY", pem)
            with LiveServer(url) as server:
                yield server


def js(expression: str, browser: Chromium) -> Any:
    return browser.evaluate(f"(function () {{ {expression} }})()")


def click_at(browser: Chromium, lon: float, lat: float) -> None:
    """A click on the map at (lon, lat), as MapLibre reports one."""
    js(f"var m = window.cimViewer.map, p = m.project([{lon}, {lat}]);"
       " m.fire('click', {point: p, lngLat: m.unproject(p), originalEvent: {}});", browser)


def planner(browser: Chromium) -> dict[str, Any]:
    return json.loads(browser.evaluate(f"JSON.stringify({PLANNER})"))


def test_the_page_loads_the_planner_modules(api_client: TestClient) -> None:
    page = api_client.get("/viewer").text
    config = json.loads(page.split('<script id="cim-viewer-config" type="application/json">')[1].split("</script>")[0])
    assert config["collections"] == "http://testserver/collections"
    assert config["processes"] == "http://testserver/processes"
    assert config["search"] == {"layers": ["buildings", "pois"], "fields": ["name", "address"], "limit": 10}
    order = [page.index(f"http://testserver/viewer/{name}?v=") for name in SCRIPTS]
    assert order == sorted(order) and SCRIPTS[-1] == "viewer.js"  # the tools register before the map starts
    for name in SCRIPTS:
        asset = api_client.get(f"/viewer/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript"), name
    for element in ('id="search-text"', 'id="view-3d"', 'id="inspect"', 'id="process-select"', 'id="token"'):
        assert element in page


def test_click_search_and_3d(planning_server, browser: Chromium, tmp_path: Path) -> None:
    status = open_viewer(browser, f"{planning_server.url}/viewer{VIEW}")
    assert status["sourceLayers"].get("buildings", 0) >= 2, status  # B4 and B5 (the tiles may split them)
    flat = screenshot(browser, tmp_path / "1-2d.png")
    assert len(np.unique(flat)) > 20, tmp_path / "1-2d.png"  # not blank

    # 1. a click on B4: the tile's attributes at once, then the whole feature (address, structure, year)
    b4 = lonlat(1150, 500)
    click_at(browser, *b4)
    text = browser.wait_for("(function () { var t = document.querySelector('.maplibregl-popup-content table[data-full]');"
                            " return t && t.closest('.maplibregl-popup-content').textContent; })()", timeout=60)
    assert text.startswith("Buildings #"), text
    for value in ("B4", "office", "90", "30", "B4 规划路", "concrete", "2000"):
        assert value in text, (value, text)
    state = planner(browser)["feature"]
    assert state["layer"] == "buildings" and state["full"] is True and state["properties"] == 9, state
    browser.screenshot(tmp_path / "2-clicked.png")
    js("document.querySelectorAll('.maplibregl-popup').forEach(function (p) { p.remove(); });", browser)

    # 2. search: by name (case-insensitive), by address, a POI, and a text with a quote and a %
    def search(text: str) -> dict[str, Any]:
        js(f"document.getElementById('search-text').value = {json.dumps(text)};"
           " document.getElementById('search').requestSubmit();", browser)
        browser.wait_for(f"{PLANNER}.search.state === 'done' && {PLANNER}.search.query === {json.dumps(text)}", timeout=60)
        return planner(browser)["search"]

    found = search("b4")
    assert [(r["layer"], r["name"]) for r in found["results"]] == [("buildings", "B4")] and found["errors"] == [], found
    everything = search("规划路")  # every building's address
    assert sorted(r["name"] for r in everything["results"]) == ["B1", "B2", "B3", "B4", "B5", "B6", "B7"], everything
    shop = search("超市")
    assert [(r["layer"], r["name"]) for r in shop["results"]] == [("pois", "超市")], shop
    odd = search("o'b%_\\")
    assert odd["count"] == 0 and odd["errors"] == [], odd  # escaped, not a 400
    assert browser.evaluate("document.querySelector('#search-results li').textContent").startswith("nothing found")

    # click a result: the map goes to B1 (in the residential district, out of the first view) and outlines it
    b1_id = search("B1")["results"][0]["id"]
    js("document.querySelector('#search-results button').click();", browser)
    browser.wait_for(f"{PLANNER}.search.shown && {PLANNER}.search.shown.id === {b1_id}", timeout=30)
    browser.wait_for(IDLE, timeout=60)
    centre = browser.evaluate("(function () { var c = window.cimViewer.map.getCenter(); return [c.lng, c.lat]; })()")
    b1 = lonlat(120, 425)  # B1's centre: x 100..140, y 400..450
    assert abs(centre[0] - b1[0]) < 1e-4 and abs(centre[1] - b1[1]) < 1e-4, (centre, b1)
    assert browser.evaluate("window.cimViewer.map.queryRenderedFeatures({layers: ['cim-search-hit']}).length") > 0
    browser.screenshot(tmp_path / "3-search-b1.png")

    # 3. 3D: the buildings extruded by height (fill-extrusion), the map pitched; and back to 2D
    js(f"window.cimViewer.map.jumpTo({{center: {list(CENTRE)}, zoom: 16}});", browser)
    browser.wait_for(IDLE, timeout=60)
    before = screenshot(browser, tmp_path / "4-before-3d.png")
    js("document.getElementById('view-3d').click();", browser)
    browser.wait_for(f"{PLANNER}.view === '3d' && window.cimViewer.map.getPitch() === 60", timeout=30)
    browser.wait_for(IDLE + " && window.cimViewer.map.queryRenderedFeatures({layers: ['buildings-3d']}).length > 0", timeout=120)
    assert browser.evaluate("window.cimViewer.map.getLayoutProperty('buildings', 'visibility')") == "none"
    after = screenshot(browser, tmp_path / "5-3d.png")
    changed = float((before != after).mean())
    assert changed > 0.2, f"{changed:.1%} of the pixels changed ({tmp_path})"
    # the legend's Buildings box hides the extruded buildings in 3D, and they stay hidden back in 2D
    box = "Array.from(document.querySelectorAll('#legend li')).filter(function (li) { return li.textContent.indexOf('Buildings') === 0; })[0].querySelector('input')"
    js(f"{box}.click();", browser)
    assert browser.evaluate("window.cimViewer.map.getLayoutProperty('buildings-3d', 'visibility')") == "none"
    js("document.getElementById('view-3d').click();", browser)
    browser.wait_for(f"{PLANNER}.view === '2d' && window.cimViewer.map.getPitch() === 0", timeout=30)
    assert browser.evaluate("window.cimViewer.map.getLayoutProperty('buildings-3d', 'visibility')") == "none"
    assert browser.evaluate("window.cimViewer.map.getLayoutProperty('buildings', 'visibility')") == "none"
    js(f"{box}.click();", browser)
    assert browser.evaluate("window.cimViewer.map.getLayoutProperty('buildings', 'visibility')") == "visible"
    assert browser.page_errors() == []


def test_3d_and_terrain_over_a_dem(raster_server, browser: Chromium, tmp_path: Path) -> None:  # noqa: F811
    """The raster test city (DEM, orthophoto, buildings): its hillshade is drawn; 3D extrudes the
    buildings; the Terrain box (shown because the release has a DEM) raises the map on the DEM's
    terrain-RGB tiles through a source of its own. (With terrain on, headless Chromium's MapLibre leaves
    some DEM tiles "loading" and the map never reports idle again: the picture is not waited for.)"""
    open_viewer(browser, f"{raster_server.url}/viewer#14/39.1427/117.1790")
    assert browser.evaluate("window.cimViewer.map.getLayer('dem-hillshade').type") == "hillshade"
    assert browser.evaluate("document.getElementById('terrain').parentNode.hidden") is False
    before = screenshot(browser, tmp_path / "1-2d.png")
    js("document.getElementById('view-3d').click();", browser)
    browser.wait_for(f"{PLANNER}.view === '3d'", timeout=30)
    browser.wait_for(IDLE + " && window.cimViewer.map.queryRenderedFeatures({layers: ['buildings-3d']}).length > 0", timeout=120)
    after = screenshot(browser, tmp_path / "2-3d.png")
    assert float((before != after).mean()) > 0.2
    assert browser.evaluate("window.cimViewer.map.getTerrain()") is None
    js("document.getElementById('terrain').click();", browser)
    browser.wait_for(f"{PLANNER}.terrain === true", timeout=30)
    assert browser.evaluate("window.cimViewer.map.getTerrain().source") == "cim-terrain"
    browser.screenshot(tmp_path / "3-3d-terrain.png")
    js("document.getElementById('terrain').click();", browser)
    browser.wait_for(f"{PLANNER}.terrain === false", timeout=30)
    assert browser.evaluate("window.cimViewer.map.getTerrain()") is None
    assert browser.page_errors() == []


def test_processes_panel_and_parcel_inspector(planning_server, browser: Chromium, tmp_path: Path) -> None:
    """zoning-compliance (role analyst) from the Processes panel, then the parcel inspector. Expected
    values from planning_city's docstring: over the city, height B1 and B4, far P4, use B3; over P1, B1's height."""
    whole = lonlat(750, 500)  # zoom 14.5: about 2.6 m a pixel, the city spans pixels 315..1075
    open_viewer(browser, f"{planning_server.url}/viewer#14.5/{whole[1]:.6f}/{whole[0]:.6f}")
    js("document.getElementById('processes').open = true;", browser)
    browser.wait_for(f"{PLANNER}.processes.state !== 'loading'", timeout=60)
    listed = planner(browser)["processes"]
    assert listed["state"] == "ready", f"no /processes on this server (the OGC API – Processes routes): {listed}"
    assert {"parcel-at-point", "zoning-compliance", "measure"} <= set(listed["ids"]), listed

    # the form of zoning-compliance: an area (drawn, or the view) and the optional inputs
    js("var s = document.getElementById('process-select'); s.value = 'zoning-compliance';"
       " s.dispatchEvent(new Event('change'));", browser)
    browser.wait_for("!!document.querySelector('#process-form textarea[name=area]')", timeout=60)
    assert browser.evaluate("Array.from(document.querySelectorAll('#process-form [data-draw]')).map(b => b.dataset.draw)") == [
        "rectangle", "polygon", "view"]

    def run() -> dict[str, Any]:
        js("document.getElementById('process-form').requestSubmit();", browser)
        browser.wait_for(f"{PLANNER}.processes.last && {PLANNER}.processes.last.state !== 'running'", timeout=120)
        return planner(browser)["processes"]["last"]

    # without a token: refused (401), said in the panel
    refused = run()
    assert refused["state"] == "failed" and refused["status"] == 401, refused
    assert browser.evaluate("document.getElementById('process-result').textContent").startswith("HTTP 401")

    # with the analyst's token, over the whole city (no area): four violations drawn in their colours
    js(f"document.getElementById('token').value = {json.dumps(token('analyst'))};", browser)
    report = run()
    assert report["state"] == "successful" and report["status"] == 200, report
    assert report["outputs"] == ["features", "summary"] and report["features"] == 4, report
    assert report["kinds"] == {"height": 2, "far": 1, "use": 1}, report
    browser.wait_for(IDLE + " && window.cimViewer.map.queryRenderedFeatures({layers: ['cim-result-line']}).length >= 4", timeout=60)
    image = screenshot(browser, tmp_path / "1-compliance-city.png")
    colours = json.loads(browser.evaluate("JSON.stringify(window.cimPlanner.colours)"))
    for kind, least in (("height", 100), ("far", 300), ("use", 10)):
        pixels = int((image == int(colours[kind].lstrip("#"), 16)).sum())
        assert pixels >= least, (kind, pixels, tmp_path / "1-compliance-city.png")
    assert "summary" in browser.evaluate("document.getElementById('process-result').textContent")

    # a rectangle drawn around parcel P1 (two clicks): only B1's height
    js("document.querySelector('#process-form [data-draw=rectangle]').click();", browser)
    click_at(browser, *lonlat(0, 250))
    click_at(browser, *lonlat(500, 750))
    area = json.loads(browser.evaluate("document.querySelector('#process-form textarea[name=area]').value"))
    assert area["type"] == "Polygon" and len(area["coordinates"][0]) == 5, area
    assert browser.evaluate("!!document.querySelector('.maplibregl-popup')") is False  # the clicks were the drawing's
    p1 = run()
    assert p1["state"] == "successful" and p1["kinds"] == {"height": 1}, p1
    browser.screenshot(tmp_path / "2-compliance-p1.png")

    # the parcel inspector: a click in P1, then in P4
    js("document.getElementById('inspect').click();", browser)
    assert planner(browser)["inspector"]["state"] == "ready"
    for x, parcel, kinds in ((250, "P1", {"height": 1}), (1750, "P4", {"far": 1})):
        click_at(browser, *lonlat(x, 500))
        browser.wait_for(f"['done', 'none', 'error'].indexOf({PLANNER}.inspector.state) >= 0", timeout=120)
        inspected = planner(browser)["inspector"]
        assert inspected["state"] == "done", inspected
        assert inspected["parcel"]["parcel_id"] == parcel and inspected["kinds"] == kinds, inspected
        text = browser.evaluate("document.getElementById('inspector-result').textContent")
        assert f"Parcel {parcel}" in text and "Compliance: 1 violation" in text, text
        browser.wait_for(IDLE, timeout=60)
        browser.screenshot(tmp_path / f"3-inspector-{parcel}.png")
    assert browser.evaluate("!!document.querySelector('.maplibregl-popup')") is False
    assert browser.page_errors() == []
