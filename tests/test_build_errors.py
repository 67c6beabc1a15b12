"""Bad input: whole-source problems stop the build with a BuildError naming file, layer, feature and
reason, and leave the current release exactly as it was; per-feature problems reject the feature."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from support.tianjin import square, to_crs, write_city

from cim.build import build, load_config, prepare
from cim.build.progress import Progress
from cim.errors import BuildError
from cim.store import open_store

PARCELS = [("120101-001", square(117.1755, 39.1425)), ("120101-002", square(117.1790, 39.1440))]


def write_parcels(path: Path, crs: str = "EPSG:4490", driver: str | None = None) -> None:
    frame = gpd.GeoDataFrame(
        {"PID": [p for p, _ in PARCELS], "USE": ["R2", "B1"]}, geometry=[to_crs(g, crs) for _, g in PARCELS], crs=crs
    )
    pyogrio.write_dataframe(frame, path, driver=driver)


def config_for(root: Path, source: str, layer: str = "parcels") -> Path:
    config = root / f"{layer}.yml"
    config.write_text(
        f"city: Tianjin\nstorage_crs: EPSG:4490\nlayers:\n  {layer}:\n    sources:\n{source}", encoding="utf-8"
    )
    return config


def source(path: str, **keys: str) -> str:
    lines = [f"      - path: {path}", "        id: PID", "        fields: {parcel_id: PID, land_use: USE}"]
    return "\n".join(lines + [f"        {k}: {v}" for k, v in keys.items()]) + "\n"


# -- whole-source problems: (name, make files and return the config, file, feature, reason) ----------


def truncated(root: Path) -> Path:
    write_parcels(root / "cut.geojson", driver="GeoJSON")
    data = (root / "cut.geojson").read_bytes()
    (root / "cut.geojson").write_bytes(data[: len(data) // 2])
    return config_for(root, source("cut.geojson"))


def unknown_crs_in_file(root: Path) -> Path:
    """A .prj GDAL parses but cannot turn into a CRS."""
    write_parcels(root / "odd.shp")
    (root / "odd.prj").write_text('PROJCS["made up",GEOGCS["nowhere"]]')
    return config_for(root, source("odd.shp"))


def no_crs(root: Path) -> Path:
    write_parcels(root / "bare.shp")
    (root / "bare.prj").unlink()
    return config_for(root, source("bare.shp"))


def missing_mapped_field(root: Path) -> Path:
    write_parcels(root / "ok.gpkg")
    return config_for(root, source("ok.gpkg").replace("land_use: USE", "land_use: LANDUSE"))


def out_of_area(root: Path) -> Path:
    write_parcels(root / "zone39.gpkg", crs="EPSG:4527")  # eastings with the zone prefix 39...
    return config_for(root, source("zone39.gpkg", crs="EPSG:4548"))  # ...declared as the zone without it


def empty(root: Path) -> Path:
    (root / "none.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    return config_for(root, source("none.geojson"))


BAD_SOURCES: list[tuple[Callable[[Path], Path], str, str | None, str]] = [
    (
        truncated,
        "cut.geojson",
        None,
        "cannot read the geojson file (truncated or corrupt?): Failed to read GeoJSON data",
    ),
    (unknown_crs_in_file, "odd.shp", None, "unknown CRS in the file: missing CONVERSION node"),
    (no_crs, "bare.shp", None, "the file has no CRS and the config declares none"),
    (missing_mapped_field, "ok.gpkg", None, "field land_use: the source has no column 'LANDUSE' (columns: PID, USE)"),
    (out_of_area, "zone39.gpkg", "120101-001", "lie outside the area of use of EPSG:4548"),
    (empty, "none.geojson", None, "empty source: the file holds no features"),
]


@pytest.mark.slow  # builds on a published store (~1.5 s)
def test_bad_sources_stop_the_build_and_keep_the_release(store_url: str, tmp_path: Path) -> None:
    write_parcels(tmp_path / "good.gpkg")
    with open_store(store_url) as store:
        build(load_config(config_for(tmp_path, source("good.gpkg"))), store)
        releases, frame = store.releases(), store.read_frame("parcels")
        for make, file, feature, reason in BAD_SOURCES:
            case = tmp_path / make.__name__
            case.mkdir()
            with pytest.raises(BuildError) as caught:
                build(load_config(make(case)), store)
            error = caught.value
            assert (error.file, error.layer, error.feature) == (file, "parcels", feature), make.__name__
            assert reason in error.reason, (make.__name__, error.reason)
            assert str(error).startswith(f"{file}: layer parcels: "), str(error)
            assert store.releases() == releases and store.current_number() == 1, make.__name__
            pd.testing.assert_frame_equal(store.read_frame("parcels"), frame)


@pytest.mark.slow  # builds on a published store (~2 s)
def test_a_bad_source_after_a_layer_is_loaded_keeps_the_release(store_url: str, tmp_path: Path) -> None:
    """The store loads a layer while the build still reads its verifying sources and the next layers
    (cim/build/feed.py): a failure then drops what was loaded, and the current release stays."""
    write_parcels(tmp_path / "good.gpkg")
    truncated(tmp_path)  # cut.geojson
    verifying = source("good.gpkg") + source("cut.geojson")
    (tmp_path / "two_layers.yml").write_text(
        "city: Tianjin\nstorage_crs: EPSG:4490\nlayers:\n  parcels:\n    sources:\n" + source("good.gpkg")
        + "  landuse:\n    sources:\n" + source("cut.geojson").replace("parcel_id: PID, land_use: USE", "zoning_code: USE"),
        encoding="utf-8",
    )  # fmt: skip
    with open_store(store_url) as store:
        build(load_config(config_for(tmp_path, source("good.gpkg"))), store)
        releases, frame = store.releases(), store.read_frame("parcels")
        for config in (config_for(tmp_path, verifying), tmp_path / "two_layers.yml"):
            lines: list[str] = []
            with pytest.raises(BuildError) as caught:
                build(load_config(config), store, progress=Progress(lines.append))
            assert caught.value.file == "cut.geojson", str(caught.value)
            assert any(line.startswith("parcels: loading into") for line in lines), lines
            assert store.releases() == releases and store.current_number() == 1, config.name
            pd.testing.assert_frame_equal(store.read_frame("parcels"), frame)
        assert build(load_config(config_for(tmp_path, source("good.gpkg"))), store).release.number == 2


def test_unknown_declared_crs_is_refused_with_the_config(tmp_path: Path) -> None:
    write_parcels(tmp_path / "good.gpkg")
    for declared in ("EPSG:999999", "GCJ-03", "Beijing 54-ish"):
        with pytest.raises(BuildError) as caught:
            load_config(config_for(tmp_path, source("good.gpkg", crs=f"'{declared}'")))
        assert (caught.value.file, caught.value.layer) == ("good.gpkg", "parcels")
        assert caught.value.reason.startswith(f"unknown CRS {declared!r}")


#: per format: the file cut short, the file the error names, and its layer
TRUNCATED = {
    "shapefile": ("buildings_survey.shp", "buildings_survey.shp", "buildings"),
    "shapefile-dbf": ("buildings_survey.dbf", "buildings_survey.shp", "buildings"),
    "gpkg": ("buildings_cadastre.gpkg", "buildings_cadastre.gpkg", "buildings"),
    "geojson": ("parcels.geojson", "parcels.geojson", "parcels"),
    "flatgeobuf": ("roads.fgb", "roads.fgb", "roads"),
    "geoparquet": ("zoning.parquet", "zoning.parquet", "landuse"),
    "csv": ("pois_amap.csv", "pois_amap.csv", "pois"),
}


def test_a_prj_gdal_cannot_read_is_an_unknown_crs_unless_one_is_declared(tmp_path: Path) -> None:
    write_parcels(tmp_path / "junk.shp")
    (tmp_path / "junk.prj").write_text("GARBAGE")
    with pytest.raises(BuildError) as caught:
        prepare(load_config(config_for(tmp_path, source("junk.shp"))))
    assert caught.value.reason.startswith("unknown CRS in the file (junk.prj: 'GARBAGE')")
    (parcels,) = prepare(load_config(config_for(tmp_path, source("junk.shp", crs="EPSG:4490")))).draft.layers
    assert parcels.frame["parcel_id"].tolist() == ["120101-001", "120101-002"]


@pytest.mark.parametrize("fmt", [*TRUNCATED, "osm"])
def test_truncated_files_of_every_format(tmp_path: Path, fmt: str) -> None:
    config = write_city(tmp_path)
    data = tmp_path / "data"
    if fmt == "osm":
        import pyrosm

        pbf = Path(pyrosm.__file__).parent / "data" / "test.osm.pbf"
        (data / "kotka.osm.pbf").write_bytes(pbf.read_bytes()[:100_000])
        config = config_for(tmp_path, "      - path: data/kotka.osm.pbf\n", layer="buildings")
        named, layer = "kotka.osm.pbf", "buildings"
    else:
        cut, named, layer = TRUNCATED[fmt]
        content = (data / cut).read_bytes()
        end = len(content) * 2 // 3
        if fmt == "csv":  # cut inside the second data line, as an interrupted download would
            end = content.index(b"\n", content.index(b"\n") + 1) + 12
        (data / cut).write_bytes(content[:end])
    with pytest.raises(BuildError) as caught:
        prepare(load_config(config))
    error = caught.value
    assert (error.file, error.layer, error.feature) == (f"data/{named}", layer, None)
    assert "truncated" in error.reason, error.reason
    assert str(error) == f"data/{named}: layer {layer}: {error.reason}"


def test_coordinates_outside_the_area_of_use(tmp_path: Path) -> None:
    # lat/lon written where lon/lat belong: y = 117 is no latitude
    pd.DataFrame(
        {"PID": ["a", "b"], "USE": ["R2", "B1"], "lon": [39.1425, 39.1440], "lat": [117.1755, 117.1790]}
    ).to_csv(tmp_path / "swapped.csv", index=False)
    with pytest.raises(BuildError) as caught:
        prepare(load_config(config_for(tmp_path, source("swapped.csv", crs="EPSG:4326", lon="lon", lat="lat"))))
    assert caught.value.feature == "a" and "area of use of EPSG:4326" in caught.value.reason
    # GCJ-02 applies in China only: Helsinki coordinates declared as GCJ-02
    pd.DataFrame({"PID": ["h"], "wkt": ["POINT (24.94 60.17)"]}).to_csv(tmp_path / "helsinki.csv", index=False)
    config = config_for(tmp_path, "      - {path: helsinki.csv, crs: GCJ-02, wkt: wkt, id: PID}\n", layer="pois")
    with pytest.raises(BuildError) as caught:
        prepare(load_config(config))
    assert caught.value.feature == "h" and "area of use of GCJ-02" in caught.value.reason


# -- per-feature problems reject the feature, not the build ------------------------------------------


def test_reject_policy_wrong_type_and_bad_wkt_reject_features(tmp_path: Path) -> None:
    bowtie = shapely.Polygon([(117.1880, 39.1300), (117.1884, 39.1304), (117.1884, 39.1300), (117.1880, 39.1304)])
    rows = [
        ("ok", square(117.18, 39.13).wkt),
        ("bowtie", bowtie.wkt),
        ("point", "POINT (117.18 39.13)"),
        ("garbled", "POLYGON ((117.18 39.13, 117.19"),
    ]
    pd.DataFrame({"bid": [r[0] for r in rows], "wkt": [r[1] for r in rows]}).to_csv(tmp_path / "b.csv", index=False)
    config = tmp_path / "b.yml"
    config.write_text(
        "city: Tianjin\nstorage_crs: 4490\nlayers:\n  buildings:\n    invalid_geometry: reject\n"
        "    max_rejected_share: 0.75\n"  # 3 of the 4 are rejected on purpose (a hollow layer stops the build)
        "    sources:\n"
        "      - {path: b.csv, crs: 'EPSG:4490', wkt: wkt, id: bid}\n",
        encoding="utf-8",
    )
    prepared = prepare(load_config(config))
    (layer,) = prepared.draft.layers
    assert layer.spec.invalid_geometry == "reject" and layer.frame["source_id"].tolist() == ["ok"]
    found = {r.feature: (r.rule, r.action, r.reason) for r in prepared.report.records}
    assert found["bowtie"][:2] == ("geometry.invalid", "rejected")
    assert found["bowtie"][2].endswith("(the layer rejects invalid geometries)")
    assert found["point"] == ("geometry.type", "rejected", "Point where MultiPolygon is expected")
    assert found["garbled"] == ("geometry.missing", "rejected", "unparseable WKT 'POLYGON ((117.18 39.13, 117.19'")
