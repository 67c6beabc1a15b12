"""An OSM PBF source (pyrosm's bundled extract of Karhula, Kotka) as the buildings of a city, and the
table formats' other geometry spellings (plain Parquet with coordinate columns)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pyrosm
import pytest
import shapely

from cim.build import build, load_config, prepare
from cim.build.readers import sha256
from cim.errors import BuildError
from cim.store import open_store

PBF = Path(pyrosm.__file__).parent / "data" / "test.osm.pbf"
CONFIG = """city: Karhula (Kotka)
storage_crs: {storage}
layers:
  buildings:
    sources:
      - path: kotka.osm.pbf
        fields: {{use: building, floors: "building:levels", height_m: height}}
"""


@pytest.fixture
def kotka(tmp_path: Path) -> Path:
    shutil.copy(PBF, tmp_path / "kotka.osm.pbf")
    config = tmp_path / "kotka.yml"
    config.write_text(CONFIG.format(storage="EPSG:4326"), encoding="utf-8")
    return config


def test_osm_buildings_are_built_with_element_ids(kotka: Path) -> None:
    raw = pyrosm.OSM(str(PBF)).get_buildings()
    with open_store(str(kotka.parent / "kotka.duckdb")) as store:
        result = build(load_config(kotka), store)
        stored = store.read_frame("buildings").set_index("source_id")
    report = result.report
    dropped = report.find(action="rejected") + report.find(action="removed")
    assert len(stored) + len(dropped) == len(raw) and len(stored) > 2000
    assert all(re.fullmatch(r"(way|relation)/\d+", i) for i in stored.index)
    assert stored["source"].unique().tolist() == ["kotka.osm.pbf"]
    # the same footprints pyrosm reads, in the same place (EPSG:4326 in, EPSG:4326 stored); the
    # self-intersecting ones repaired, touching the same points
    raw = raw.set_index(raw["osm_type"] + "/" + raw["id"].astype(str))
    repaired = {r.feature for r in report.find(rule="geometry.invalid", action="repaired")}
    assert repaired and repaired <= set(stored.index)
    for osm_id in [*stored.index[:200], *sorted(repaired)]:
        geom, kept = raw.loc[osm_id, "geometry"], stored.loc[osm_id, "geometry"]
        if osm_id in repaired:
            assert kept.is_valid and shapely.hausdorff_distance(kept.boundary, geom.boundary) < 1e-9
        else:
            expected = shapely.multipolygons([geom]) if geom.geom_type == "Polygon" else geom
            assert shapely.equals_exact(shapely.normalize(kept), shapely.normalize(expected), tolerance=1e-12)
    # mapped tags: building -> use, building:levels -> floors (name maps by its own name)
    assert stored["use"].notna().all() and stored["floors"].notna().any()
    assert stored["name"].notna().any()
    (absent,) = report.find(rule="field.absent")
    assert absent.reason == "tag 'height' occurs nowhere in the extract"
    assert result.release.checksums == {"kotka.osm.pbf": sha256(PBF)}


def test_osm_outside_the_storage_crs_area_is_refused(kotka: Path) -> None:
    kotka.write_text(CONFIG.format(storage="EPSG:4490"), encoding="utf-8")  # CGCS2000 covers China only
    with pytest.raises(BuildError) as caught:
        prepare(load_config(kotka))
    assert caught.value.file == "kotka.osm.pbf" and caught.value.layer == "buildings"
    assert "outside the area of use of EPSG:4490" in caught.value.reason and caught.value.feature.startswith("way/")


def test_plain_parquet_with_coordinate_columns(tmp_path: Path) -> None:
    pd.DataFrame(
        {"pid": ["a", "b"], "名称": ["鼓楼", "天津站"], "x": [117.1757, 117.2100], "y": [39.1427, 39.1350]}
    ).to_parquet(tmp_path / "pois.parquet")
    config = tmp_path / "pois.yml"
    config.write_text(
        "city: Tianjin\nstorage_crs: EPSG:4490\nlayers:\n  pois:\n    sources:\n"
        "      - {path: pois.parquet, crs: 'EPSG:4490', x: x, y: y, id: pid, fields: {name: 名称}}\n",
        encoding="utf-8",
    )
    (pois,) = prepare(load_config(config)).draft.layers
    assert pois.frame["name"].tolist() == ["鼓楼", "天津站"]
    assert [(p.x, p.y) for p in pois.frame.geometry] == [(117.1757, 39.1427), (117.21, 39.135)]
    # without coordinate columns a plain Parquet file is not GeoParquet
    config.write_text(config.read_text(encoding="utf-8").replace(", x: x, y: y", ""), encoding="utf-8")
    with pytest.raises(BuildError, match="not a GeoParquet file"):
        prepare(load_config(config))
