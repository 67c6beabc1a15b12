"""district-statistics (cim/analysis/statistics.py) on the planned city (tests/support/planning_city.py),
values checked by hand: district 120101 holds B1, B2, B3, B7 in release 1 (2 000 + 600 + 400 + 100 m²)
and B1, B2, B7, B8 in release 2 (B8 400 m²: the same 3 100 m²); 120102 B4, B5, B6 (20 000 + 40 000 + 100);
the primary road is 1 000 m in each district, the residential one 300 m in 120101; POIs: 2 amenity + 1
shop in 120101, 1 amenity in 120102. Both stores; the Python API and the process's run."""

from __future__ import annotations

import jsonschema
import pytest

import cim
from cim.errors import BadInput, NotFound
from cim.processes import get_process, no_progress
from support.planning_city import publish_planning_city
from support.postgis import BACKENDS, backend_store


@pytest.fixture(scope="module", params=BACKENDS)
def city_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with backend_store(request, "statistics", tmp_path_factory.mktemp("statistics")) as url:
        publish_planning_city(url, releases=2)
        yield url


@pytest.fixture
def city(city_url: str):
    with cim.open(city_url) as opened:
        yield opened


def approx(expected):
    """``expected`` with every float compared to within 1e-6 (areas are geodesic: 999 999.95 m² for the 1 km² zone)."""
    if isinstance(expected, dict):
        return {key: approx(value) for key, value in expected.items()}
    return pytest.approx(expected, rel=1e-6) if isinstance(expected, float) else expected


def run(city, inputs: dict) -> dict:
    process = get_process("district-statistics")
    for name, value in inputs.items():
        jsonschema.validate(value, process.inputs[name]["schema"])
    return process.run(city.store, inputs, no_progress)["statistics"]


EXPECTED_120101 = {
    "landuse": {"count": 1, "area_m2": 1_000_000.0},
    "parcels": {"count": 2, "area_m2": 320_000.0},
    "roads": {"count": 2, "length_m": 1300.0, "by_road_class": {"primary": {"count": 1, "length_m": 1000.0}, "residential": {"count": 1, "length_m": 300.0}}},
    "buildings": {"count": 4, "area_m2": 3100.0},
    "pois": {"count": 3, "by_category": {"amenity": {"count": 2}, "shop": {"count": 1}}},
}
EXPECTED_120102 = {
    "landuse": {"count": 1, "area_m2": 1_000_000.0},
    "parcels": {"count": 2, "area_m2": 320_000.0},
    "roads": {"count": 1, "length_m": 1000.0, "by_road_class": {"primary": {"count": 1, "length_m": 1000.0}}},
    "buildings": {"count": 3, "area_m2": 60_100.0},
    "pois": {"count": 1, "by_category": {"amenity": {"count": 1}}},
}


def test_district_statistics_of_release_1(city) -> None:
    stats = city.district_statistics(release=1)
    assert (stats["level"], stats["release"], stats["metric_crs"]) == ("district", 1, "EPSG:4548")
    assert [(d["code"], d["name"]) for d in stats["divisions"]] == [("120101", "和平区"), ("120102", "河东区")]
    assert stats["divisions"][0]["layers"] == approx(EXPECTED_120101)
    assert stats["divisions"][1]["layers"] == approx(EXPECTED_120102)
    assert run(city, {"release": 1}) == stats


def test_district_statistics_of_the_current_release(city) -> None:
    stats = run(city, {"level": "district", "codes": ["120101"]})
    assert stats["release"] == 2 and [d["code"] for d in stats["divisions"]] == ["120101"]
    # B3 removed, B8 added (400 m² each): still 4 buildings, 3 100 m²
    assert stats["divisions"][0]["layers"]["buildings"] == approx({"count": 4, "area_m2": 3100.0})
    city_level = city.district_statistics(level="city")
    assert [(d["code"], d["layers"]["buildings"]["count"], d["layers"]["roads"]["length_m"]) for d in city_level["divisions"]] == [("120100", 7, pytest.approx(2300.0, rel=1e-6))]


def test_district_statistics_errors(city) -> None:
    with pytest.raises(NotFound, match=r"no district '120199' in layer 'admin_divisions' \(district codes: 120101, 120102\)"):
        run(city, {"codes": ["120199"]})
    with pytest.raises(BadInput, match="unknown division level 'county'"):
        city.district_statistics(level="county")
    with pytest.raises(NotFound, match=r"no release 3 \(releases kept: 1, 2\)"):
        run(city, {"release": 3})
    assert city.district_statistics(level="street")["divisions"] == []
