"""``cim build`` as users run it: a subprocess on the example config, then a bad source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_cli_commands import current, fails, ok, release_table
from support.tianjin import write_city


pytestmark = pytest.mark.slow  # runs `cim build` as a subprocess (~10 s)


def test_cim_build_publishes_writes_the_report_and_fails_in_one_line(tmp_path: Path) -> None:
    config = write_city(tmp_path)
    lines = ok(tmp_path, "build", config.name, "--store", "city.duckdb").splitlines()
    # not a terminal: plain progress lines per source and step, then the outcome
    assert "buildings · data/buildings_survey.shp: read" in lines
    assert "pois · data/pois_amap.csv: rectify (GCJ-02)" in lines
    assert "buildings · data/buildings_cadastre.gpkg: done, 4 of 4 features kept" in lines
    assert "buildings: cross-checking data/buildings_survey.shp with data/buildings_cadastre.gpkg" in lines
    assert lines[-2:] == [
        "release 1 is current: buildings 5, parcels 2, roads 2, landuse 2, pois 2, water 2",
        "QA: 8 findings; report in tianjin.qa/qa.md",
    ]
    report = json.loads((tmp_path / "tianjin.qa" / "qa.json").read_text(encoding="utf-8"))
    assert report["release"] == 1 and report["features"]["buildings"] == 5
    assert (tmp_path / "tianjin.qa" / "qa.md").read_text(encoding="utf-8").startswith("# QA report: Tianjin 天津市")
    rows = release_table(ok(tmp_path, "releases", "--store", "city.duckdb"))
    assert current(rows) == [1] and sorted(rows[1][1]) == ["buildings", "landuse", "parcels", "pois", "roads", "water"]

    # a mapped column the source lacks: one line naming file and layer, exit 1, release 1 stays
    config.write_text(
        config.read_text(encoding="utf-8").replace("height_m: HEIGHT", "height_m: HEIGHT_M"), encoding="utf-8"
    )
    line = fails(tmp_path, "build", config.name, "--store", "city.duckdb", "--report", "elsewhere")
    assert line.startswith(
        "error: data/buildings_survey.shp: layer buildings: field height_m: the source has no column 'HEIGHT_M'"
    )
    assert current(release_table(ok(tmp_path, "releases", "--store", "city.duckdb"))) == [1]
    assert not (tmp_path / "elsewhere").exists()
