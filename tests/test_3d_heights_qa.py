"""The height rule of LOD1 blocks (cim/heights.py) in a build's QA report: per lod1 layer, how many
footprints take their height from ``height_m``, from ``floors`` and from the default, with the
rule itself — in the summary the release keeps, in qa.md, and carried with an unchanged layer.
A QA-only test: the embedded store is enough (no store feature is tested)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from support.browser import require_chromium
from support.tianjin import square

from cim.build import build, load_config
from cim.heights import DEFAULT_RULE
from cim.store import open_store

LON, LAT = 117.1786, 39.1431

#: (height_m, floors) of each building and where its height comes from
BUILDINGS = [
    (24.0, None, "height_m"),
    (7.5, 12, "height_m"),  # height_m wins over floors
    (0.0, 5, "floors"),  # a height of 0 is no height
    (None, 4, "floors"),
    (None, None, "default"),
    (-3.0, None, "default"),
    (None, 0, "default"),  # no floors above ground
    (None, "n/a", "default"),  # not an integer: cleared by the build (attribute.type)
]


def write_city(root: Path) -> Path:
    n = len(BUILDINGS)
    frame = gpd.GeoDataFrame(
        {
            "bid": [f"B{i}" for i in range(n)],
            "name": [f"楼{i}" for i in range(n)],
            "height_m": [h for h, _, _ in BUILDINGS],
            "floors": [f for _, f, _ in BUILDINGS],
        },
        geometry=[square(LON + 0.001 * i, LAT) for i in range(n)],
        crs="EPSG:4490",
    )
    frame.to_file(root / "buildings.geojson", driver="GeoJSON")
    config = root / "city.yml"
    config.write_text(
        "city: Heights\nstorage_crs: EPSG:4548\nlayers:\n  buildings:\n    sources:\n"
        "      - path: buildings.geojson\n        id: bid\n",
        encoding="utf-8",
    )
    return config


def expected() -> dict:
    counts = {source: sum(1 for *_, s in BUILDINGS if s == source) for source in ("height_m", "floors", "default")}
    return {**counts, "rule": {"order": ["height_m", "floors", "default"], "storey_m": 3.0, "default_m": 10.0}}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("heights")
    config = write_city(root)
    url = str(root / "city.duckdb")
    with open_store(url) as store:
        first = build(load_config(config), store, report_dir=root / "qa1")
        second = build(load_config(config), store, report_dir=root / "qa2")  # unchanged: carried over
        releases = {info.number: info.qa for info in store.releases()}
    return root, first, second, releases


def test_the_report_counts_heights_by_source(built) -> None:  # type: ignore[no-untyped-def]
    root, first, _, releases = built
    want = expected()
    assert want == {"height_m": 2, "floors": 2, "default": 4, "rule": want["rule"]}
    assert first.report.heights == {"buildings": want}
    assert first.report.summary()["heights"] == {"buildings": want}
    assert releases[first.release.number]["heights"] == {"buildings": want}  # the release keeps it
    # the same rule as the 3D Tiles apply
    _, sources = DEFAULT_RULE.resolve([h for h, _, _ in BUILDINGS], [f for _, f, _ in BUILDINGS])
    assert [("height_m", "floors", "default")[s] for s in sources] == [s for *_, s in BUILDINGS]
    page = (root / "qa1" / "qa.md").read_text(encoding="utf-8")
    assert "## Heights of LOD1 blocks" in page and "| buildings | 2 | 2 | 4 | 3.0 m | 10.0 m |" in page
    assert first.report.find(rule="attribute.type")  # "n/a" floors were cleared, so the default applies


def test_a_carried_layer_keeps_its_height_counts(built) -> None:  # type: ignore[no-untyped-def]
    root, first, second, releases = built
    assert second.report.summary()["carried"] == {"buildings": first.release.number}
    assert second.report.heights == {"buildings": expected()}
    assert releases[second.release.number]["heights"] == {"buildings": expected()}
    assert "| buildings | 2 | 2 | 4 |" in (root / "qa2" / "qa.md").read_text(encoding="utf-8")


def test_a_layer_without_height_fields_takes_the_default() -> None:
    from cim.build.qa import QAReport

    report = QAReport("c", "c.yml")
    frame = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1)] * 2)
    assert report.count_heights("blocks", frame)["default"] == 2
    assert report.summary()["heights"]["blocks"]["height_m"] == 0


# --- the 2D viewer's extrusion applies the same rule (MapLibre GL JS in headless Chromium) --------

#: (height_m, floors) pairs as vector tiles may carry them: numbers, nothing, and odd values
VIEWER_CASES = [
    (24.0, None), (7.5, 12), (0.0, 5), (None, 4), (None, None), (-3.0, None), (None, 0), (None, 2.7),
    (None, "n/a"), ("12.5", None), (True, None), (None, False), (float("nan"), 3), (-1.0, -2), (None, 0.5), (0.0, 1.9),
]


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_chromium(maplibre=True)


def test_the_viewer_extrudes_by_the_same_rule(chromium_path: str, tmp_path: Path) -> None:
    import json

    from support.browser import Chromium

    static = Path(__file__).resolve().parents[1] / "ogcapi" / "static"
    page = tmp_path / "rule.html"
    page.write_text(
        f'<html><body><div id="map" style="width:300px;height:200px"></div>'
        f'<script src="{(static / "vendor" / "maplibre" / "maplibre-gl.js").as_uri()}"></script>'
        f'<script src="{(static / "planner.js").as_uri()}"></script><script>'
        "var blocks = new maplibregl.Map({container: 'map', style: {version: 8, sources: {b: {type: 'geojson',"
        " data: {type: 'FeatureCollection', features: []}}}, layers: [{id: 'blocks', type: 'fill-extrusion',"
        " source: 'b', paint: {'fill-extrusion-height': window.cimPlanner.lod1Height}}]}});"
        "</script></body></html>",
        encoding="utf-8",
    )
    cases = [
        {k: v for k, v in (("height_m", h), ("floors", f)) if v is not None and not (isinstance(v, float) and v != v)}
        for h, f in VIEWER_CASES
    ]
    with Chromium(chromium_path, width=400, height=300) as browser:
        browser.navigate(page.as_uri())
        browser.wait_for("window.maplibregl !== undefined && window.blocks !== undefined && window.blocks.loaded()", timeout=120)
        # the layer's height evaluated per feature, as MapLibre does when it builds the extrusions
        heights = json.loads(browser.evaluate(
            "(function () { var layer = blocks.style.getLayer('blocks');"
            " layer.recalculate({zoom: 16, zoomHistory: {}, now: 0, globalState: {}}, []);"
            " var height = layer.paint.get('fill-extrusion-height');"
            f" return JSON.stringify({json.dumps(cases)}.map(function (p) {{ return height.evaluate({{type: 3, properties: p}}, {{}}, undefined, []); }})); }})()"
        ))
        assert browser.page_errors() == []
    want, _ = DEFAULT_RULE.resolve([h for h, _ in VIEWER_CASES], [f for _, f in VIEWER_CASES])
    assert heights == pytest.approx(want.tolist()), list(zip(VIEWER_CASES, heights))
