"""Every one of the nine processes over HTTP on both stores, synchronously and as a job, on the planned
city's two releases (tests/support/planning_city.py): the two answers are the same document, and it
holds the hand-checked values of the planned city (release 2 is current: B2 24 m / 8 floors, B3
removed, B8 added)."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from cim.processes import PROCESS_IDS
from support.jobs import wait_until
from support.planning_city import geojson_box, geojson_point, lonlat, publish_planning_city
from support.postgis import BACKENDS, backend_store
from test_auth_access import bearer
from test_processes_api import make_client



def _features(doc: dict[str, Any], key: str = "features") -> list[dict[str, Any]]:
    return [f["properties"] for f in doc[key]["features"]]


def _division(doc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(d for d in doc["statistics"]["divisions"] if d["code"] == code)


#: process id -> (inputs, check of the results document)
CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "building-at-point": (
        {"point": geojson_point(110, 420)},
        lambda d: [(p["name"], p["parcel_id"], p["district_code"]) for p in _features(d)] == [("B1", "P1", "120101")],
    ),
    "buildings-in-area": (
        {"area": geojson_box(50, 300, 450, 700)},  # parcel P1: B1 and B2 (8 floors in release 2)
        lambda d: d["summary"]["totals"]["buildings"] == 2
        and d["summary"]["totals"]["floor_area_m2"] == pytest.approx(2000 * 10 + 600 * 8, rel=1e-6),
    ),
    "building-history": (
        {"source_id": "B2"},
        lambda d: [(r["release"], r["change"]) for r in d["history"]["releases"]] == [(1, "added"), (2, "changed")],
    ),
    "parcel-at-point": (
        {"point": geojson_point(110, 420)},
        lambda d: [(p["parcel_id"], p["zoning_code"], p["far_exceeded"]) for p in _features(d)] == [("P1", "R2", False)]
        and _features(d)[0]["far"] == pytest.approx((2000 * 10 + 600 * 8) / 160_000, rel=1e-6),
    ),
    "zoning-compliance": (
        {},
        lambda d: d["summary"]["violations"] == {"height": 2, "far": 1, "use": 0}
        and sorted((p["kind"], p.get("name") or p.get("parcel_id")) for p in _features(d))
        == [("far", "P4"), ("height", "B1"), ("height", "B4")],
    ),
    "landuse-by-district": (
        {},
        lambda d: sorted((r["code"], r["use"], round(r["area_m2"])) for r in d["table"])
        == [("120101", "residential", 1_000_000), ("120102", "commercial", 1_000_000)],
    ),
    "release-diff": (
        {"from_release": 1, "to_release": 2},
        lambda d: d["summary"]["layers"]["buildings"] == {"added": 1, "removed": 1, "changed": 1}
        and sorted((p["change"], p["source_id"]) for p in _features(d, "differences"))
        == [("added", "B8"), ("changed", "B2"), ("removed", "B3")],
    ),
    "district-statistics": (
        {},
        lambda d: (_division(d, "120101")["layers"]["buildings"]["count"], _division(d, "120102")["layers"]["buildings"]["count"]) == (4, 3)
        and _division(d, "120101")["layers"]["roads"]["length_m"] == pytest.approx(1300, abs=0.01),
    ),
    "measure": (
        {"geometry": {"type": "MultiPoint", "coordinates": [list(lonlat(0, 0)), list(lonlat(1000, 0))]}},
        lambda d: d["measurement"]["distance_m"] == pytest.approx(1000, abs=0.01),  # along the CM's parallel: GK scale 1
    ),
}


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from cim.processes import runner

    with pytest.MonkeyPatch.context() as mp, backend_store(request, "processes_http", tmp_path_factory.mktemp("p")) as url:
        publish_planning_city(url, releases=2)
        with make_client(url, mp) as client:
            yield client
            wait_until(runner.runner(client.app.state.store).idle, "the runner to stop")


def execute(api: TestClient, process_id: str, inputs: dict[str, Any], **headers: str) -> Any:
    body = json.dumps({"inputs": inputs, "response": "document"})
    return api.post(f"/processes/{process_id}/execution", content=body,
                    headers={"Content-Type": "application/json", **bearer("analyst", sub="planner-1"), **headers})


def test_every_process_is_covered() -> None:
    assert set(CASES) == set(PROCESS_IDS)


@pytest.mark.parametrize("process_id", PROCESS_IDS)
def test_sync_and_async_give_the_hand_checked_answer(api: TestClient, process_id: str) -> None:
    inputs, check = CASES[process_id]
    sync = execute(api, process_id, inputs)
    assert sync.status_code == 200, sync.text[:300]
    assert check(sync.json()), json.dumps(sync.json())[:800]

    submitted = execute(api, process_id, inputs, Prefer="respond-async")
    assert submitted.status_code == 201, submitted.text[:300]
    job = submitted.headers["Location"].removeprefix("http://testserver")
    owner = bearer("analyst", sub="planner-1")
    status = wait_until(lambda: (doc := api.get(job, headers=owner).json())["status"] in ("successful", "failed") and doc, job)
    assert status["status"] == "successful", status
    results = api.get(f"{job}/results", headers=owner)
    assert results.status_code == 200
    assert check(results.json())
    # the job's document is the synchronous one (but for the history's publication times, equal too)
    assert results.json() == sync.json()
