"""building-history and release-diff (cim/analysis/history.py) on the planned city with two releases
(tests/support/planning_city.py): from release 1 to 2, B2 goes from 18 m / 6 floors to 24 m / 8 floors,
B3 (in parcel P2) is removed, B8 (in P2) is added. Through the Python API and the processes' run with
JSON inputs, on both stores."""

from __future__ import annotations

import json

import jsonschema
import pytest
import shapely

import cim
from cim.errors import BadInput, LayerNotFound, NotFound
from cim.processes import get_process, no_progress
from support.planning_city import lonlat, publish_planning_city
from support.postgis import BACKENDS, backend_store


@pytest.fixture(scope="module", params=BACKENDS)
def city_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with backend_store(request, "history", tmp_path_factory.mktemp("history")) as url:
        publish_planning_city(url, releases=2)
        yield url


@pytest.fixture
def city(city_url: str):
    with cim.open(city_url) as opened:
        yield opened


def run(city, process_id: str, inputs: dict) -> dict:
    """The process run on JSON ``inputs``, after checking them against its input schemas."""
    process = get_process(process_id)
    for name, value in inputs.items():
        jsonschema.validate(value, process.inputs[name]["schema"])
    return process.run(city.store, inputs, no_progress)


def _p2() -> dict:
    """Parcel P2 (x 500550..500950, y 4330300..4330700) as a GeoJSON polygon in lon/lat."""
    return json.loads(shapely.to_geojson(shapely.box(*lonlat(550, 300), *lonlat(950, 700))))


def test_history_of_a_changed_building(city) -> None:
    history = city.building_history("B2")
    assert (history["layer"], history["source"], history["source_id"]) == ("buildings", "survey", "B2")
    first, second = history["releases"]
    assert (first["release"], first["present"], first["change"]) == (1, True, "added")
    assert (first["properties"]["height_m"], first["properties"]["floors"]) == (18.0, 6)
    assert (second["release"], second["present"], second["change"]) == (2, True, "changed")
    assert second["changes"] == {"height_m": {"old": 18.0, "new": 24.0}, "floors": {"old": 6, "new": 8}}
    # the footprint, 30 x 20 m at (500200, 4330400), in lon/lat
    footprint = shapely.geometry.shape(second["geometry"])
    assert footprint.contains(shapely.Point(lonlat(215, 410)))
    assert not footprint.contains(shapely.Point(lonlat(235, 410)))
    # the same through the process, with the source given
    assert run(city, "building-history", {"source_id": "B2", "source": "survey"})["history"] == history


def test_history_of_a_removed_and_an_added_building(city) -> None:
    removed = city.building_history({"source_id": "B3", "source": "survey"})["releases"]
    assert [(e["present"], e["change"]) for e in removed] == [(True, "added"), (False, "removed")]
    assert removed[0]["properties"]["use"] == "industrial"
    b8 = city.store.find_features("buildings", [("source_id", "B8")])
    fid = int(b8.index[0])  # B8's fid in the current release
    added = run(city, "building-history", {"fid": fid})["history"]
    assert added["source_id"] == "B8"
    assert [(e["present"], e["change"]) for e in added["releases"]] == [(False, None), (True, "added")]
    unchanged = city.building_history("B1")["releases"]
    assert [e["change"] for e in unchanged] == ["added", "unchanged"] and "changes" not in unchanged[1]


def test_history_errors(city) -> None:
    with pytest.raises(NotFound, match=r"no feature with source_id 'B99' in layer 'buildings' in any release kept \(1, 2\)"):
        city.building_history("B99")
    with pytest.raises(NotFound, match="no feature 999999"):
        city.building_history(999999)
    with pytest.raises(BadInput, match=r"source_id \(and source\) or its fid"):
        run(city, "building-history", {})
    with pytest.raises(LayerNotFound, match="no layer 'trees'"):
        city.building_history(1, layer="trees")


def test_release_diff(city) -> None:
    diff = city.release_diff(1, 2)
    assert diff.summary["buildings"] == {"added": 1, "removed": 1, "changed": 1}
    assert diff.summary["roads"] == {"added": 0, "removed": 0, "changed": 0}
    assert diff.totals() == {"added": 1, "removed": 1, "changed": 1}
    rows = diff.features.set_index("source_id")
    assert rows.loc["B2", "change"] == "changed" and list(rows.loc["B2", "fields"]) == ["height_m", "floors"]
    assert rows.loc["B3", "change"] == "removed" and rows.loc["B8", "change"] == "added"
    assert diff.features.crs.to_epsg() == 4326
    assert rows.loc["B8", "geometry"].contains(shapely.Point(lonlat(710, 410)))
    collection = diff.feature_collection()
    assert collection["type"] == "FeatureCollection" and collection["numberReturned"] == 3
    by_id = {f["id"]: f["properties"] for f in collection["features"]}
    assert by_id["buildings/survey/B2"]["fields"] == ["height_m", "floors"]
    assert by_id["buildings/survey/B3"]["change"] == "removed" and by_id["buildings/survey/B3"]["fid_to"] is None
    # the same through the process
    out = run(city, "release-diff", {"from_release": 1, "to_release": 2, "layers": ["buildings"]})
    assert out["summary"] == {"from_release": 1, "to_release": 2, "layers": {"buildings": {"added": 1, "removed": 1, "changed": 1}},
                              "totals": {"added": 1, "removed": 1, "changed": 1}}  # fmt: skip
    assert sorted(f["properties"]["change"] for f in out["differences"]["features"]) == ["added", "changed", "removed"]


def test_release_diff_in_an_area(city) -> None:
    diff = city.release_diff(1, 2, area=_p2())
    assert diff.summary["buildings"] == {"added": 1, "removed": 1, "changed": 0}
    assert sorted(diff.features["source_id"]) == ["B3", "B8"]
    out = run(city, "release-diff", {"from_release": 1, "to_release": 2, "area": _p2(), "layers": ["buildings", "pois"]})
    assert out["summary"]["layers"] == {"buildings": {"added": 1, "removed": 1, "changed": 0}, "pois": {"added": 0, "removed": 0, "changed": 0}}
    # the area in EPSG:4548 (x/y), P1 only: B2 changed
    p1 = {"type": "Polygon", "coordinates": [[[500050, 4330300], [500450, 4330300], [500450, 4330700], [500050, 4330700], [500050, 4330300]]]}
    out = run(city, "release-diff", {"from_release": 1, "to_release": 2, "area": p1, "crs": "http://www.opengis.net/def/crs/EPSG/0/4548"})
    assert out["summary"]["totals"] == {"added": 0, "removed": 0, "changed": 1}


def test_release_diff_edge_cases(city) -> None:
    same = city.release_diff(2, 2)
    assert same.totals() == {"added": 0, "removed": 0, "changed": 0} and len(same.features) == 0
    assert run(city, "release-diff", {"from_release": 1, "to_release": 1})["differences"]["features"] == []
    with pytest.raises(NotFound, match=r"no release 5 \(releases kept: 1, 2\)"):
        run(city, "release-diff", {"from_release": 1, "to_release": 5})
    with pytest.raises(LayerNotFound, match="no layer 'trees' in release 1 nor in release 2"):
        city.release_diff(1, 2, layers=["trees"])
    far = shapely.geometry.mapping(shapely.box(10, 10, 11, 11))
    with pytest.raises(BadInput, match="outside the city"):
        city.release_diff(1, 2, area=far)
    with pytest.raises(BadInput):
        city.release_diff(1, 2, area={"type": "Polygon", "coordinates": []})
