"""Event warnings in the viewer (/viewer), in headless Chromium, on both stores: the warnings in force
are drawn in their colours over the base map; a warning ingested while the page is open appears
without a reload (from ``GET /warnings/stream``), an Update replaces it, a Cancel removes one, and
so does the scheduler's expiry. What is drawn is checked in
screenshots (kept in the test's tmp_path, like tests/test_viewer_maplibre.py's): the outline's exact
colour counted inside the warning's projected box and outside it.

The alerts are real CAP 1.2 XML (layers/demo_warnings.py's writer) ingested by
``cim.warnings.ingest.ingest`` into the store the server reads.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from support.browser import Chromium, require_chromium
from support.postgis import BACKENDS, backend_store
from support.server import LiveServer
from test_viewer_maplibre import open_viewer

from cim.store import ReleaseDraft, open_store
from layers.demo_warnings import (
    CAP_MEDIA_TYPE,
    CAP_NS,
    SENDER,
    cap_alert,
    cap_polygon,
    cap_time,
    identifier,
)
from ogcapi.viewer import maplibre_version
from tiles.warning_style import COLOURS

#: central Helsinki at zoom 15 (every demo layer in range); the view spans about 24.931..24.957 E,
#: 60.164..60.172 N in a 1200 x 800 window
VIEW = "#15/60.1680/24.9440"
#: (lat, lon) rings of the test warnings (south-west, south-east, north-east, north-west)
RED_RING = [(60.1660, 24.9400), (60.1660, 24.9440), (60.1680, 24.9440), (60.1680, 24.9400)]
BLUE_RING = [(60.1690, 24.9470), (60.1690, 24.9510), (60.1705, 24.9510), (60.1705, 24.9470)]
ORANGE_RING = [(60.1695, 24.9520), (60.1695, 24.9550), (60.1710, 24.9550), (60.1710, 24.9520)]
YELLOW_RING = [(60.1645, 24.9500), (60.1645, 24.9540), (60.1655, 24.9540), (60.1655, 24.9500)]
#: how long the expiring warning of test_an_expired_warning_goes is valid from its ingest (s)
SHORT_VALIDITY = 15
SENT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
#: a rendered feature of the live warnings layer with feature id ``fid``: (fid) -> JS expression
RENDERED = "window.cimViewer.map.queryRenderedFeatures({{layers: ['warnings-live']}}).some(function (f) {{ return f.id === {fid}; }})"
LOADED = "window.cimViewer.map.loaded() && window.cimViewer.status.warnings && window.cimViewer.status.warnings.loaded"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_chromium(maplibre=True)


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Chromium]:
    with Chromium(chromium_path, width=1200, height=800) as chromium:
        yield chromium


def alert(serial: int, ring: list[tuple[float, float]], colour_zh: str, severity: str, headline: str,
          expires: datetime | None = None, updates: str | None = None) -> tuple[str, bytes]:
    """A CAP alert sent at SENT (an Update of identifier ``updates`` one minute later)."""
    sent = SENT + timedelta(minutes=1) if updates else SENT
    ident = identifier("990101", serial, sent)
    return ident, cap_alert(
        ident=ident, sent=sent, category="Met", event="暴雨", urgency="Immediate", severity=severity,
        certainty="Observed", colour_zh=colour_zh, expires=expires or SENT + timedelta(hours=3), headline=headline,
        description="test", instruction="test", area_desc=f"test area {serial}", polygon=cap_polygon(ring),
        msg_type="Update" if updates else "Alert", references=f"{SENDER},{updates},{cap_time(SENT)}" if updates else None,
    )


def cancel(ident: str, of: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{CAP_NS}">
  <identifier>{ident}</identifier><sender>{SENDER}</sender><sent>{cap_time(SENT + timedelta(seconds=30))}</sent>
  <status>Actual</status><msgType>Cancel</msgType><scope>Public</scope>
  <references>{SENDER},{of},{cap_time(SENT)}</references>
</alert>""".encode()


def ingest(url: str, document: bytes) -> int:
    from cim.warnings.ingest import ingest as ingest_document

    with open_store(url) as store:
        return ingest_document(store, document, CAP_MEDIA_TYPE, who="test").fid


@pytest.fixture(scope="module", params=BACKENDS)
def warning_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, demo_layers) -> Iterator[Any]:
    """The demo city with one red warning in force, on a real socket (each store)."""
    with backend_store(request, "warnviewer", tmp_path_factory.mktemp("warnviewer")) as url:
        with open_store(url) as store:
            store.publish(ReleaseDraft(layers=demo_layers, srid=4326))
            store.prepare_tiles()
        red_id, red = alert(1, RED_RING, "红色", "Extreme", "红色测试预警")
        server_fid = ingest(url, red)
        with LiveServer(url) as server:
            server.store_url, server.red = url, (red_id, server_fid)  # type: ignore[attr-defined]
            yield server


def screenshot(browser: Chromium, path: Path) -> np.ndarray:
    """The page as an H x W array of 0xRRGGBB."""
    browser.screenshot(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as image:
            rgb = image.read()[:3].astype(np.uint32)
    return (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]


def box_of(browser: Chromium, ring: list[tuple[float, float]], margin: int = 4) -> tuple[int, int, int, int]:
    """The pixel box (x0, y0, x1, y1) of a (lat, lon) ring in the current view, widened by ``margin``."""
    project = "function (p) { var q = window.cimViewer.map.project([p[1], p[0]]); return [q.x, q.y]; }"
    points = browser.evaluate(f"JSON.stringify({json.dumps(ring)}.map({project}))")
    xy = np.array(json.loads(points))
    x0, y0 = np.floor(xy.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(xy.max(axis=0)).astype(int) + margin
    return int(x0), int(y0), int(x1), int(y1)


def count(image: np.ndarray, colour: str, box: tuple[int, int, int, int] | None = None, inside: bool = True) -> int:
    """Pixels of exactly ``colour`` (#rrggbb) inside (or outside) ``box``."""
    mask = image == int(colour.lstrip("#"), 16)
    if box is None:
        return int(mask.sum())
    x0, y0, x1, y1 = box
    within = np.zeros_like(mask)
    within[max(y0, 0) : y1, max(x0, 0) : x1] = True
    return int((mask & (within if inside else ~within)).sum())


def wait(browser: Chromium, expression: str) -> None:
    browser.wait_for(f"({expression}) && ({LOADED})", timeout=120)


def test_warnings_drawn_and_redrawn_live(warning_server, browser: Chromium, tmp_path: Path) -> None:
    red_id, red_fid = warning_server.red
    status = open_viewer(browser, f"{warning_server.url}/viewer{VIEW}")
    assert status["sources"] == {"basemap": True}, status
    wait(browser, RENDERED.format(fid=red_fid))
    browser.wait_for("window.cimViewer.status.warnings.state === 'live'", timeout=60)  # the stream is open
    browser.evaluate("window.cimTestMarker = 'same page'")  # gone if the page reloads
    red_box, blue_box = box_of(browser, RED_RING), box_of(browser, BLUE_RING)
    assert red_box[0] > 260 and blue_box[2] < 1200 and blue_box[1] > 0 and red_box[3] < 800  # both in view, clear of the panel

    # 1. the warning in force: its red outline where it is, nowhere else; no blue
    before = screenshot(browser, tmp_path / "1-red.png")
    assert count(before, COLOURS["red"], red_box) > 400, tmp_path / "1-red.png"
    assert count(before, COLOURS["red"], red_box, inside=False) < 20
    assert count(before, COLOURS["blue"], blue_box) == 0
    assert browser.evaluate("window.cimViewer.map.getLayoutProperty('warnings', 'visibility')") == "none"  # not twice

    # 2. a blue warning ingested while the page is open: drawn without a reload
    blue_id, blue = alert(2, BLUE_RING, "蓝色", "Minor", "蓝色测试预警")
    blue_fid = ingest(warning_server.store_url, blue)
    wait(browser, RENDERED.format(fid=blue_fid))
    added = screenshot(browser, tmp_path / "2-blue-added.png")
    assert count(added, COLOURS["blue"], blue_box) > 400, tmp_path / "2-blue-added.png"
    assert count(added, COLOURS["red"], red_box) > 400
    assert browser.evaluate("window.cimTestMarker") == "same page"
    assert browser.evaluate("window.cimViewer.status.warnings.kinds.created") >= 1

    # 3. the blue warning updated: now orange and elsewhere; its first version is no longer drawn
    _, orange = alert(5, ORANGE_RING, "橙色", "Severe", "橙色测试预警", updates=blue_id)
    orange_fid = ingest(warning_server.store_url, orange)
    wait(browser, RENDERED.format(fid=orange_fid) + " && !" + RENDERED.format(fid=blue_fid))
    orange_box = box_of(browser, ORANGE_RING)
    updated = screenshot(browser, tmp_path / "3-blue-updated-to-orange.png")
    assert count(updated, COLOURS["orange"], orange_box) > 300, tmp_path / "3-blue-updated-to-orange.png"
    assert count(updated, COLOURS["blue"]) == 0
    assert browser.evaluate("window.cimViewer.status.warnings.kinds.updated") >= 1

    # 4. the red warning cancelled: gone from the map, the orange one stays
    ingest(warning_server.store_url, cancel(identifier("990101", 3, SENT + timedelta(seconds=30)), red_id))
    wait(browser, "!" + RENDERED.format(fid=red_fid) + " && window.cimViewer.status.warnings.kinds.cancelled >= 1")
    after = screenshot(browser, tmp_path / "4-red-cancelled.png")
    assert count(after, COLOURS["red"], red_box) < 20, tmp_path / "4-red-cancelled.png"
    assert count(after, COLOURS["orange"], orange_box) > 300
    assert browser.evaluate("window.cimTestMarker") == "same page"
    assert browser.page_errors() == []
    assert json.loads(browser.evaluate("document.getElementById('status').textContent"))["errors"] == []


def test_warning_popup_and_legend(warning_server, browser: Chromium) -> None:
    open_viewer(browser, f"{warning_server.url}/viewer{VIEW}")
    wait(browser, "window.cimViewer.map.queryRenderedFeatures({layers: ['warnings-live']}).length > 0")
    legend = browser.evaluate("Array.from(document.querySelectorAll('#legend li')).map(li => li.textContent)")
    for name in ("红色预警 · Red warning", "橙色预警 · Orange warning", "黄色预警 · Yellow warning", "蓝色预警 · Blue warning"):
        assert name in legend, legend
    popup = browser.evaluate(
        "(function () { var m = window.cimViewer.map;"
        " var f = m.queryRenderedFeatures({layers: ['warnings-live']})[0];"
        " var c = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];"
        " var lon = 0, lat = 0; c.slice(1).forEach(function (p) { lon += p[0]; lat += p[1]; });"
        " var p = m.project([lon / (c.length - 1), lat / (c.length - 1)]);"
        " m.fire('click', {point: p, lngLat: m.unproject(p), originalEvent: {}});"
        " var el = document.querySelector('.maplibregl-popup-content .cim-warning');"
        " return el ? el.textContent : null; })()"
    )
    assert popup and "测试预警" in popup and "event暴雨" in popup and "effective" in popup and "expires" in popup, popup
    assert "test area" in popup, popup
    # hiding the warnings from the legend hides the live layers
    browser.evaluate("document.querySelector('#legend li.warnings input').click()")
    assert browser.evaluate("window.cimViewer.map.getLayoutProperty('warnings-live', 'visibility')") == "none"


def test_an_expired_warning_goes(warning_server, browser: Chromium, tmp_path: Path) -> None:
    """Expiry comes from the server's scheduler as an ``expired`` event; the page removes the warning."""
    open_viewer(browser, f"{warning_server.url}/viewer{VIEW}")
    browser.wait_for("window.cimViewer.status.warnings && window.cimViewer.status.warnings.state === 'live'", timeout=60)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=SHORT_VALIDITY)
    _, yellow = alert(4, YELLOW_RING, "黄色", "Moderate", "黄色测试预警", expires=expires)
    fid = ingest(warning_server.store_url, yellow)
    wait(browser, RENDERED.format(fid=fid))
    yellow_box = box_of(browser, YELLOW_RING)
    shown = screenshot(browser, tmp_path / "5-yellow.png")
    assert count(shown, COLOURS["yellow"], yellow_box) > 200, tmp_path / "5-yellow.png"
    wait(browser, "!" + RENDERED.format(fid=fid) + " && window.cimViewer.status.warnings.kinds.expired >= 1")
    gone = screenshot(browser, tmp_path / "6-yellow-expired.png")
    assert count(gone, COLOURS["yellow"], yellow_box) < 20, tmp_path / "6-yellow-expired.png"
    assert browser.page_errors() == []


def test_viewer_page_configures_the_warnings(api_client) -> None:
    page = api_client.get("/viewer").text
    config = json.loads(page.split('<script id="cim-viewer-config" type="application/json">')[1].split("</script>")[0])
    assert config["warnings"] == {
        "items": "http://testserver/collections/warnings/items?f=json&limit=1000",
        "stream": "http://testserver/warnings/stream",
    }
    script = api_client.get("/viewer/warnings.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in script.text
    if maplibre_version() is not None:  # the page loads it before its own script
        assert page.index("/viewer/warnings.js?v=") < page.index("/viewer/viewer.js?v=")
