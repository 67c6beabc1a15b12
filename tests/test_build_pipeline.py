"""Building examples/tianjin.yml: every format and CRS into both stores, positions against the true
coordinates, the QA report listing every injected defect, releases with checksums, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from support.tianjin import BUILDINGS, PARCEL, POI, RIVER, ROAD, ZONE, error_m, write_city

from cim.build import build, load_config, prepare
from cim.build.readers import sha256
from cim.store import open_store

EXPECTED_COUNTS = {"landuse": 2, "water": 2, "parcels": 2, "roads": 2, "buildings": 5, "pois": 2}
SURVEY, CADASTRE = "data/buildings_survey.shp", "data/buildings_cadastre.gpkg"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example config with its sources, in a scratch directory."""
    return write_city(tmp_path_factory.mktemp("tianjin"))


@pytest.fixture(scope="module")
def prepared(city: Path):
    return prepare(load_config(city))


def by_source_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("source_id")


@pytest.mark.slow  # a build of the Tianjin city (~4 s)
def test_every_format_and_crs_lands_on_the_true_positions(store_url: str, city: Path, tmp_path: Path) -> None:
    with open_store(store_url) as store:
        result = build(load_config(city), store, report_dir=tmp_path / "qa")
        assert result.release.number == 1 and result.release.current
        assert set(store.layer_names()) - {"warnings"} == set(EXPECTED_COUNTS)  # warnings: the live layer
        frames = {name: by_source_id(store.read_frame(name)) for name in EXPECTED_COUNTS}
        infos = {info.name: info for info in store.layers() if not info.spec.live}
    assert {name: len(f) for name, f in frames.items()} == EXPECTED_COUNTS
    assert all(info.srid == 4490 for info in infos.values())
    buildings = frames["buildings"]
    assert sorted(buildings.index) == ["TJ-B001", "TJ-B002", "TJ-B003", "TJ-B004", "TJ-B005"]
    # Shapefile in EPSG:4548 -> CGCS2000 lon/lat: within a centimetre of the truth
    for fid in ("TJ-B001", "TJ-B002", "TJ-B003", "TJ-B004"):
        assert error_m(buildings.loc[fid, "geometry"], BUILDINGS[fid]) < 0.01
    repaired = buildings.loc["TJ-B005", "geometry"]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon" and len(repaired.geoms) == 2
    assert error_m(repaired.envelope, BUILDINGS["TJ-B005"].envelope) < 0.01
    # GeoJSON (EPSG:4326), FlatGeobuf (EPSG:3857), GeoParquet (EPSG:4490)
    assert error_m(frames["parcels"].loc["120101-001", "geometry"], PARCEL) < 0.01
    road = frames["roads"][frames["roads"]["name"] == "鼓楼东街"].geometry.iloc[0]
    assert error_m(road, ROAD) < 0.01
    zone = frames["landuse"][frames["landuse"]["zoning_code"] == "R2"].geometry.iloc[0]
    assert error_m(zone, ZONE) < 0.01
    # CSV lon/lat in GCJ-02 and CSV WKT in BD-09, rectified: well under a metre (offsets are 0.5-1.3 km)
    assert error_m(frames["pois"].loc["POI-1", "geometry"], POI) < 0.05
    assert error_m(frames["water"].loc["W-1", "geometry"], RIVER) < 0.05
    # attributes, typed and mapped (Chinese text through Shapefile .cpg and CSV)
    assert buildings.loc["TJ-B001", ["name", "use", "height_m", "floors"]].tolist() == ["鼓楼", "culture", 27.0, 3]
    assert buildings.loc["TJ-B001", "source"] == "buildings_survey.shp"
    assert frames["roads"].set_index("name")["oneway"].to_dict() == {"鼓楼东街": False, "城厢中路": True}
    assert frames["pois"].loc["POI-1", ["name", "category", "subcategory"]].tolist() == [
        "鼓楼",
        "tourism",
        "attraction",
    ]
    assert pd.isna(frames["parcels"].loc["120101-002", "plot_ratio"])
    assert frames["landuse"].set_index("zoning_code").loc["B1", ["use", "height_limit_m", "far_limit"]].tolist() == [
        "commercial",
        100.0,
        6.0,
    ]
    assert frames["water"].loc["W-1", ["name", "water_type"]].tolist() == ["海河", "river"]
    minx, miny, maxx, maxy = infos["buildings"].bbox
    assert 117.17 < minx < maxx < 117.20 and 39.12 < miny < maxy < 39.15


@pytest.mark.slow  # a build of the Tianjin city (~2.5 s)
def test_release_records_config_checksums_and_qa(store_url: str, city: Path, tmp_path: Path) -> None:
    with open_store(store_url) as store:
        build(load_config(city), store, report_dir=tmp_path / "qa")
        (release,) = store.releases()
    assert release.config["city"] == "Tianjin 天津市" and release.config["storage_crs"] == "EPSG:4490"
    data = city.parent / "data"
    expected = {f"data/{p.name}": sha256(p) for p in data.iterdir()}
    assert release.checksums == expected  # every file, Shapefile sidecars included
    assert {"data/buildings_survey.dbf", "data/buildings_survey.prj"} <= set(release.checksums)
    assert release.qa["features"] == {"buildings": 5, "parcels": 2, "roads": 2, "landuse": 2, "pois": 2, "water": 2}
    assert release.qa["by_rule"]["geometry.invalid"] == {"rejected": 1, "repaired": 1}
    assert release.qa["report"] == str(tmp_path / "qa")
    assert release.qa["by_source"][f"buildings/{CADASTRE}"]["filtered"] == 1


def test_qa_report_lists_every_injected_defect(prepared) -> None:
    found = {(r.layer, r.source, r.feature, r.rule, r.action) for r in prepared.report.records}
    assert found == {
        ("buildings", SURVEY, "TJ-B005", "geometry.invalid", "repaired"),  # bow-tie
        ("buildings", SURVEY, "TJ-B006", "geometry.invalid", "rejected"),  # unrepairable
        ("buildings", SURVEY, "TJ-B007", "duplicate.geometry", "removed"),
        ("buildings", SURVEY, "TJ-B002", "crosscheck.conflict", "flagged"),  # 24 m vs 45 m
        ("buildings", CADASTRE, "C-9", "crosscheck.missing_in_primary", "flagged"),
        ("parcels", "data/parcels.geojson", "#2", "attribute.required", "rejected"),  # no parcel id
        ("parcels", "data/parcels.geojson", "120101-002", "attribute.type", "cleared"),
        ("pois", "data/pois_amap.csv", "POI-3", "geometry.missing", "rejected"),
    }
    reasons = {r.feature: r.reason for r in prepared.report.records}
    assert reasons["TJ-B005"].startswith("Self-intersection")
    assert "nothing of type MultiPolygon" in reasons["TJ-B006"]
    assert reasons["TJ-B007"] == "same geometry as feature TJ-B001; attributes equal"
    assert reasons["TJ-B002"] == f"height_m 24 here vs 45 in {CADASTRE} feature C-2 (tolerance 3)"
    assert reasons["#2"] == "required field parcel_id is missing"
    assert reasons["POI-3"] == "no numeric coordinates (lng='n/a', lat=empty)"
    (check,) = prepared.report.crosschecks
    assert check == {
        "layer": "buildings",
        "primary": SURVEY,
        "secondary": CADASTRE,
        "compared": 4,
        "matched": 3,
        "missing_in_primary": 1,
        "conflicts": 1,
        "min_iou": 0.5,
        "max_distance_m": 5.0,
        "tolerances": {"height_m": 3},
    }
    # every source feature is accounted for: kept, or rejected/removed with a record
    for stats in prepared.report.sources:
        if stats.primary:
            dropped = [
                r for r in prepared.report.records if r.source == stats.source and r.action in ("rejected", "removed")
            ]
            assert stats.read == stats.kept + len(dropped), stats


@pytest.mark.slow  # a build of the Tianjin city (~2 s)
def test_qa_files_are_written_with_counts_per_rule_and_source(city: Path, tmp_path: Path) -> None:
    with open_store(str(tmp_path / "city.duckdb")) as store:
        result = build(load_config(city), store, report_dir=tmp_path / "qa")
    json_path, md_path = result.report_files
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report["release"] == 1
    assert report["by_rule"]["duplicate.geometry"] == {"removed": 1}
    assert report["by_source"][f"buildings/{SURVEY}"]["rules"] == {
        "crosscheck.conflict": 1,
        "duplicate.geometry": 1,
        "geometry.invalid": 2,
    }
    assert {item["feature"] for item in report["items"]} == {
        "TJ-B005",
        "TJ-B006",
        "TJ-B007",
        "TJ-B002",
        "C-9",
        "#2",
        "120101-002",
        "POI-3",
    }
    page = md_path.read_text(encoding="utf-8")
    assert page.startswith("# QA report: Tianjin 天津市")
    for text in (
        "| TJ-B006 | rejected |",
        "| C-9 | flagged |",
        "| #2 | rejected | required field parcel_id is missing |",
        f"| buildings | {SURVEY} | {CADASTRE} | 4 | 3 | 1 | 1 |",
    ):
        assert text in page


@pytest.mark.slow  # three builds of the Tianjin city (~6 s)
def test_rebuild_rollback_and_pruning(store_url: str, city: Path, tmp_path: Path) -> None:
    config = load_config(city)
    with open_store(store_url) as store:
        first = build(config, store).release
        before = store.read_frame("parcels")
        parcels = city.parent / "data" / "parcels.geojson"
        parcels.write_text(parcels.read_text(encoding="utf-8").replace('"R2"', '"R3"'), encoding="utf-8")
        try:
            second = build(config, store).release
            assert second.number == 2 and store.current_number() == 2
            assert sorted(store.read_frame("parcels")["land_use"]) == ["B1", "R3"]
            assert second.checksums["data/parcels.geojson"] != first.checksums["data/parcels.geojson"]
            store.set_current(1)
            assert store.current_number() == 1
            pd.testing.assert_frame_equal(store.read_frame("parcels"), before)
            third = build(config, store, keep=2).release
        finally:
            parcels.write_text(parcels.read_text(encoding="utf-8").replace('"R3"', '"R2"'), encoding="utf-8")
        assert [r.number for r in store.releases()] == [2, 3] and third.current
