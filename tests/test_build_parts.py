"""The build's parts on their own: config checks, format detection, cross-checks of points and lines,
duplicate ids, rich progress."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from rich.console import Console
from support.tianjin import write_city

from cim.build import load_config, prepare
from cim.build.config import CrossCheckConfig
from cim.build.crosscheck import Side, crosscheck
from cim.build.progress import RichProgress
from cim.build.qa import QAReport
from cim.build.readers import detect_format
from cim.errors import BuildError
from layers.catalog import CATALOG

GOOD = "city: T\nstorage_crs: EPSG:4490\nlayers:\n  pois:\n    sources:\n      - {path: p.csv, crs: 'EPSG:4490', x: x, y: y}\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("city: T\nlayers: {}\n", "t.yml: storage_crs: missing"),
        (GOOD.replace("city: T", "city: T\ncolour: red"), "t.yml: top level: unknown keys ['colour']"),
        (GOOD.replace("EPSG:4490\nlayers", "EPSG:123456\nlayers"), "t.yml: storage_crs: unknown CRS 'EPSG:123456'"),
        (GOOD.replace("storage_crs: EPSG:4490", "storage_crs: GCJ-02"), "t.yml: storage_crs: unknown CRS 'GCJ-02'"),
        (GOOD.replace("city: T", "city: T\nkeep: 0"), "t.yml: keep: expected a positive number of releases, got 0"),
        (GOOD.replace(", y: y", ""), "t.yml: layers.pois.sources[0]: coordinate columns come in pairs"),
        (GOOD.replace(", x: x, y: y", ""), "t.yml: layers.pois.sources[0]: a CSV source needs coordinate columns"),
        (GOOD.replace("p.csv", "p.xlsx"), "t.yml: layers.pois.sources[0].format: cannot tell the format of 'p.xlsx'"),
        (GOOD.replace("p.csv,", "p.csv, format: dwg,"), "t.yml: layers.pois.sources[0].format: unknown format 'dwg'"),
        (
            "city: T\nstorage_crs: 4490\nlayers:\n  pois: {sources: []}\n",
            "t.yml: layers.pois.sources: expected a non-empty list",
        ),
        ("city: T\nstorage_crs: 4490\nlayers: [pois]\n", "t.yml: layers: expected a mapping, got list"),
        ("city: [T\n", "t.yml: not valid YAML"),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "t.yml").write_text(text, encoding="utf-8")
    with pytest.raises(BuildError) as caught:
        load_config(tmp_path / "t.yml")
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    "layers, message",
    [
        (
            "  towers:\n    sources: [{path: p.csv, crs: 'EPSG:4490', x: x, y: y}]\n",
            "t.yml: layer towers: unknown layer 'towers'",
        ),
        ("  dem:\n    sources: [{path: d.geojson}]\n", "t.yml: layer dem: d.geojson: a raster layer needs a GeoTIFF source (format geotiff), not geojson"),
        (
            "  pois:\n    sources: [{path: p.csv, crs: 'EPSG:4490', x: x, y: y, fields: {colour: c}}]\n",
            "t.yml: layer pois: fields ['colour'] are not fields of the layer",
        ),
    ],
)
def test_config_is_checked_against_the_catalog(tmp_path: Path, layers: str, message: str) -> None:
    (tmp_path / "t.yml").write_text(f"city: T\nstorage_crs: 4490\nlayers:\n{layers}", encoding="utf-8")
    with pytest.raises(BuildError) as caught:
        prepare(load_config(tmp_path / "t.yml"))
    assert str(caught.value).startswith(message), str(caught.value)


def test_format_detection() -> None:
    names = [
        "a.shp",
        "b.GPKG",
        "c.geojson",
        "d.json",
        "e.fgb",
        "f.parquet",
        "g.geoparquet",
        "h.csv",
        "tianjin-latest.osm.pbf",
    ]
    assert [detect_format(Path(n)) for n in names] == [
        "shapefile",
        "gpkg",
        "geojson",
        "geojson",
        "flatgeobuf",
        "geoparquet",
        "geoparquet",
        "csv",
        "osm",
    ]
    assert detect_format(Path("dem.tif")) == detect_format(Path("ORTHO.TIFF")) == "geotiff"
    assert detect_format(Path("scan.jp2")) is None


def side(label: str, ids: list[str], geoms: list[shapely.Geometry], **fields: list[object]) -> Side:
    frame = gpd.GeoDataFrame({"source_id": ids, **fields}, geometry=geoms, crs=4490)
    return Side(label, frame)


def test_crosscheck_points_by_distance() -> None:
    report = QAReport("T", "t.yml")
    primary = side("a.csv", ["p1", "p2"], [shapely.Point(117.18, 39.13), shapely.Point(117.19, 39.13)])
    # 3 m east of p1; 40 m east of p2
    secondary = side(
        "b.csv", ["s1", "s2"], [shapely.Point(117.18 + 3 / 86_300, 39.13), shapely.Point(117.19 + 40 / 86_300, 39.13)]
    )
    stats = crosscheck(CATALOG["pois"], primary, secondary, CrossCheckConfig(max_distance_m=5), report)
    assert (stats["matched"], stats["missing_in_primary"]) == (1, 1)
    (record,) = report.records
    assert (record.source, record.feature, record.reason) == ("b.csv", "s2", "no feature of a.csv within 5 m")


def test_crosscheck_lines_by_share_of_length() -> None:
    report = QAReport("T", "t.yml")
    road = shapely.LineString([(117.17, 39.13), (117.18, 39.13)])
    primary = side("a.fgb", ["r1"], [shapely.MultiLineString([road])])
    along = shapely.MultiLineString(
        [shapely.LineString([(117.171, 39.13 + 2 / 111_000), (117.179, 39.13 + 2 / 111_000)])]
    )
    half_off = shapely.MultiLineString([shapely.LineString([(117.175, 39.13), (117.185, 39.13 + 50 / 111_000)])])
    secondary = side("b.fgb", ["s1", "s2"], [along, half_off])
    stats = crosscheck(CATALOG["roads"], primary, secondary, CrossCheckConfig(max_distance_m=5), report)
    assert (stats["matched"], stats["missing_in_primary"]) == (1, 1)
    (record,) = report.records
    assert (
        record.feature == "s2"
        and record.reason.startswith("only ")
        and record.reason.endswith("lies within 5 m of a.fgb")
    )


def test_crosscheck_tolerances_are_configurable() -> None:
    report = QAReport("T", "t.yml")
    box = shapely.MultiPolygon([shapely.box(117.18, 39.13, 117.1802, 39.1302)])
    primary = side("a.shp", ["b1"], [box], height_m=[24.0], floors=[8])
    secondary = side("b.gpkg", ["c1"], [box], height_m=[25.0], floors=[10])
    stats = crosscheck(CATALOG["buildings"], primary, secondary, CrossCheckConfig(tolerances={"floors": 1}), report)
    assert stats["conflicts"] == 1
    assert [r.reason for r in report.records] == ["floors 8 here vs 10 in b.gpkg feature c1 (tolerance 1)"]


def test_duplicate_source_ids_are_flagged_and_kept(tmp_path: Path) -> None:
    pd.DataFrame({"id": ["a", "a", "b"], "x": ["117.18", "117.19", "117.18"], "y": ["39.13", "39.13", "39.13"]}).to_csv(
        tmp_path / "p.csv", index=False
    )
    (tmp_path / "t.yml").write_text(GOOD.replace("y: y}", "y: y, id: id}"), encoding="utf-8")
    prepared = prepare(load_config(tmp_path / "t.yml"))
    assert prepared.draft.layers[0].frame["source_id"].tolist() == ["a", "a"]
    assert [(r.feature, r.rule, r.action) for r in prepared.report.records] == [
        ("b", "duplicate.geometry", "removed"),
        ("a", "duplicate.id", "flagged"),
    ]


def test_rich_progress_draws_a_bar_per_source(tmp_path: Path) -> None:
    out = io.StringIO()
    with RichProgress(Console(file=out, force_terminal=True, width=160)) as progress:
        prepare(load_config(write_city(tmp_path)), progress=progress)
    text = out.getvalue()
    for where in ("buildings · data/buildings_survey.shp", "water · data/water_baidu.csv"):
        assert where in text
    assert "features kept" in text and "6/6" in text


def test_codes_outside_a_fields_list_are_flagged_and_gbk_needs_its_encoding(tmp_path: Path) -> None:
    areas = [shapely.box(117.17, 39.11, 117.20, 39.13).wkt, shapely.box(117.20, 39.11, 117.24, 39.14).wkt]
    rows = pd.DataFrame(
        {"code": ["120101", "120102"], "name": ["和平区", "河东区"], "level": ["district", "county"], "wkt": areas}
    )
    rows.to_csv(tmp_path / "admin.csv", index=False, encoding="gbk")
    config = tmp_path / "t.yml"
    source = "      - {path: admin.csv, crs: 'EPSG:4490', wkt: wkt, id: code"
    config.write_text(
        f"city: T\nstorage_crs: 4490\nlayers:\n  admin_divisions:\n    sources:\n{source}}}\n", encoding="utf-8"
    )
    with pytest.raises(BuildError) as caught:
        prepare(load_config(config))
    assert caught.value.reason == "the text is not utf-8: name its encoding, e.g. encoding: gbk"
    config.write_text(
        config.read_text(encoding="utf-8").replace("id: code}", "id: code, encoding: gbk}"), encoding="utf-8"
    )
    prepared = prepare(load_config(config))
    assert prepared.draft.layers[0].frame["name"].tolist() == ["和平区", "河东区"]
    assert [(r.feature, r.rule, r.action, r.reason) for r in prepared.report.records] == [
        ("120102", "attribute.enum", "flagged", "level 'county' is not one of province, city, district, street")
    ]


def test_find_duplicates_groups_by_normalised_geometry_and_flags_reused_ids() -> None:
    """Same point set written another way (start vertex, ring orientation) is a duplicate of the
    first occurrence; a missing geometry never is; an id reused with another geometry is flagged."""
    import numpy as np
    import pandas as pd
    import shapely

    from cim.build.dedupe import find_duplicates

    square = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    other_way = shapely.Polygon([(1, 1), (1, 0), (0, 0), (0, 1)])  # reversed, other start
    geoms = np.array([square, shapely.Point(5, 5), None, other_way, None, shapely.Point(6, 6), square], dtype=object)
    ids = pd.Series(["a", "p", "n1", "b", "n2", "p", "c"], dtype=object)
    frame = pd.DataFrame({"height_m": [3.0, 1.0, None, 4.0, None, 1.0, 3.0]})
    removed, flagged = find_duplicates(frame, geoms, ids, ["height_m"])
    assert [(d.position, d.first) for d in removed] == [(3, 0), (6, 0)]
    assert "attributes differ: height_m 4.0 vs 3.0" in removed[0].reason
    assert removed[1].reason == "same geometry as feature a; attributes equal"
    assert [(d.position, d.first) for d in flagged] == [(5, 1)]
    assert find_duplicates(frame.iloc[:3], geoms[:3], ids.iloc[:3], ["height_m"]) == ([], [])
    # same bounds and vertex count (the cheap pre-check) but another shape: not a duplicate
    notch = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0.5, 0.2), (0, 1)])
    pair = np.array([square, notch], dtype=object)
    assert find_duplicates(frame.iloc[:2], pair, pd.Series(["a", "z"], dtype=object), ["height_m"]) == ([], [])


@pytest.mark.parametrize("kind", ["MultiPolygon", "Point", "MultiLineString"])
def test_crosscheck_in_geographic_storage_matches_like_a_full_reprojection(kind: str) -> None:
    """With lon/lat storage only the primary features near a secondary one are reprojected to the
    metric CRS; the matches and reasons must equal matching against every primary feature."""
    import numpy as np

    from cim.build.crosscheck import match_sources, match_geoms, metric_crs
    from cim.build.validity import DIMENSION

    rng = np.random.default_rng(3)
    x, y = 117.2 + rng.random(3000) * 0.2, 39.1 + rng.random(3000) * 0.2
    if kind == "Point":
        prim = shapely.points(x, y)
        sec = shapely.points(x[::7] + rng.normal(0, 3e-5, len(x[::7])), y[::7])  # ~3 m off
    elif kind == "MultiLineString":
        prim = shapely.linestrings(np.stack([np.stack([x, y], 1), np.stack([x + 4e-4, y + 1e-4], 1)], 1))
        sec = shapely.linestrings(np.stack([np.stack([x[::7], y[::7] + 2e-5], 1), np.stack([x[::7] + 4e-4, y[::7] + 1.2e-4], 1)], 1))
    else:
        prim = shapely.box(x, y, x + 1e-4, y + 1e-4)
        sec = shapely.box(x[::7] + 2e-5 * rng.random(len(x[::7])), y[::7], x[::7] + 1e-4, y[::7] + 1e-4)
    primary = gpd.GeoDataFrame({"source_id": [str(i) for i in range(len(prim))]}, geometry=prim, crs="EPSG:4490")
    secondary = gpd.GeoDataFrame({"source_id": [str(i) for i in range(len(sec))]}, geometry=sec, crs="EPSG:4490")
    spec = CATALOG["buildings"] if kind == "MultiPolygon" else CATALOG["pois"] if kind == "Point" else CATALOG["roads"]
    config = CrossCheckConfig(min_iou=0.5, max_distance_m=5.0)
    fast = match_sources(spec, Side("a", primary), Side("b", secondary), config)
    crs = metric_crs(primary, secondary)
    full = match_geoms(DIMENSION[kind], primary.geometry.to_crs(crs).to_numpy(), secondary.geometry.to_crs(crs).to_numpy(), config, "a")
    assert (fast.primary >= 0).sum() > len(sec) // 2  # the fixture really matches
    assert fast.primary.tolist() == full.primary.tolist() and fast.why_not == full.why_not


@pytest.mark.parametrize("lon, lat", [(117.2, 39.1), (24.94, 60.17), (-58.4, -34.6), (179.9, 10.0), (-179.9, -10.0), (3.1, 0.5)])
def test_metric_crs_is_the_utm_zone_geopandas_would_estimate(lon: float, lat: float) -> None:
    from cim.build.crosscheck import metric_crs

    frame = gpd.GeoDataFrame(geometry=[shapely.box(lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05)], crs="EPSG:4326")
    assert metric_crs(frame, frame) == frame.geometry.estimate_utm_crs()
