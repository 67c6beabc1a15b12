"""Time on both stores: a layer with a temporal field gets a temporal extent, the ``datetime``
parameter filters on it, and the CQL2 temporal functions work on instants and intervals."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any, Iterator

import geopandas as gpd
import pytest
import shapely

from cim.layerspec import FieldSpec, LayerSpec
from cim.store import LayerData, ReleaseDraft, open_store
from support.postgis import BACKENDS, admin, admin_url

PERMITS = LayerSpec(
    name="permits",
    title="Building permits",
    description="Construction permits (建设工程规划许可) with their issue time and validity",
    geometry_type="Point",
    fields=(
        FieldSpec("permit_no", "string", "Permit number", required=True),
        FieldSpec("issued", "datetime", "When the permit was issued"),
        FieldSpec("valid_from", "date", "First day of validity"),
        FieldSpec("valid_to", "date", "Last day of validity"),
    ),
    temporal_field="issued",
)
#: permit_no, issued, valid_from, valid_to
ROWS = [
    ("P1", datetime(2023, 3, 1, 9, 0, tzinfo=UTC), date(2023, 3, 1), date(2023, 12, 31)),
    ("P2", datetime(2024, 1, 15, 10, 30, tzinfo=UTC), date(2024, 2, 1), date(2024, 6, 30)),
    ("P3", datetime(2024, 6, 1, 0, 0, tzinfo=UTC), date(2024, 6, 1), date(2025, 5, 31)),
    ("P4", datetime(2024, 6, 1, 23, 59, tzinfo=UTC), date(2024, 7, 1), date(2024, 7, 31)),
    ("P5", None, None, None),
]
ITEMS = "/collections/permits/items"


@pytest.fixture(scope="module", params=BACKENDS)
def permits_store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A store of each backend holding the permits layer (shared by this module, read-only)."""
    if request.param == "duckdb":
        yield str(tmp_path_factory.mktemp("permits") / "permits.duckdb")
        return
    name = f"cim_permits_{os.getpid()}"
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name} TEMPLATE {request.getfixturevalue('postgis_template')}")
    yield admin_url(name)
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def client(permits_store_url: str) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from ogcapi.app import create_app

    store_url = permits_store_url

    frame = gpd.GeoDataFrame(
        {
            "permit_no": [r[0] for r in ROWS],
            "issued": [r[1] for r in ROWS],
            "valid_from": [r[2] for r in ROWS],
            "valid_to": [r[3] for r in ROWS],
            "source": ["survey"] * len(ROWS),
            "source_id": [r[0] for r in ROWS],
        },
        geometry=[shapely.Point(117.17 + i * 0.001, 39.14) for i in range(len(ROWS))],
        crs=4326,
    )
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=[LayerData(PERMITS, frame)], srid=4326))
    with TestClient(create_app(store_url, server_url="http://testserver")) as test_client:
        yield test_client
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def permits(client: Any, **params: Any) -> list[str]:
    response = client.get(ITEMS, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["numberMatched"] == doc["numberReturned"]
    return sorted(f["properties"]["permit_no"] for f in doc["features"])


def test_collection_has_a_temporal_extent(client) -> None:
    extent = client.get("/collections/permits", params={"f": "json"}).json()["extent"]
    ((begin, end),) = extent["temporal"]["interval"]
    assert begin.startswith("2023-03-01T09:00:00") and end.startswith("2024-06-01T23:59:00")
    queryables = client.get("/collections/permits/queryables", params={"f": "json"}).json()
    assert queryables["properties"]["issued"]["format"] == "date-time"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-15T10:30:00Z", ["P2"]),
        ("2024-06-01", ["P3", "P4"]),  # a date: the whole day
        ("2024-01-01T00:00:00Z/2024-06-01T12:00:00Z", ["P2", "P3"]),
        ("2024-01-01/2024-06-01", ["P2", "P3", "P4"]),
        ("2024-01-01T00:00:00Z/..", ["P2", "P3", "P4"]),
        ("../2024-01-01T00:00:00Z", ["P1"]),
        ("/2024-01-01T00:00:00Z", ["P1"]),
    ],
)
def test_datetime_parameter(client, value: str, expected: list[str]) -> None:
    assert permits(client, datetime=value) == expected


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-06-01T25:00:00Z", "2024-06-01/2023-01-01", "../..", "a/b/c"])
def test_invalid_datetime_is_400(client, value: str) -> None:
    response = client.get(ITEMS, params={"datetime": value})
    assert response.status_code == 400, response.text
    assert "datetime" in response.json()["description"]


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ("issued > TIMESTAMP('2024-01-01T00:00:00Z')", ["P2", "P3", "P4"]),
        ("valid_from = DATE('2024-06-01')", ["P3"]),
        ("T_AFTER(issued, TIMESTAMP('2024-01-15T10:30:00Z'))", ["P3", "P4"]),
        ("T_BEFORE(issued, DATE('2024-01-01'))", ["P1"]),
        ("T_EQUALS(issued, TIMESTAMP('2024-01-15T10:30:00Z'))", ["P2"]),
        ("T_DURING(issued, INTERVAL('2024-01-01T00:00:00Z', '2024-12-31T00:00:00Z'))", ["P2", "P3", "P4"]),
        ("T_INTERSECTS(issued, INTERVAL('2024-06-01T00:00:00Z', '..'))", ["P3", "P4"]),
        ("T_INTERSECTS(INTERVAL(valid_from, valid_to), DATE('2024-06-15'))", ["P2", "P3"]),
        ("T_DISJOINT(INTERVAL(valid_from, valid_to), INTERVAL('2024-01-01', '2024-12-31'))", ["P1"]),
        ("T_DURING(INTERVAL(valid_from, valid_to), INTERVAL('2024-01-01', '2024-12-31'))", ["P2", "P4"]),
        ("T_CONTAINS(INTERVAL(valid_from, valid_to), DATE('2024-07-15'))", ["P3", "P4"]),
        ("T_OVERLAPS(INTERVAL(valid_from, valid_to), INTERVAL('2024-05-01', '2024-09-30'))", ["P2"]),
        ("T_OVERLAPPEDBY(INTERVAL(valid_from, valid_to), INTERVAL('2024-05-01', '2024-09-30'))", ["P3"]),
        ("T_STARTS(INTERVAL(valid_from, valid_to), INTERVAL('2024-07-01', '2024-12-31'))", ["P4"]),
        ("T_STARTEDBY(INTERVAL(valid_from, valid_to), INTERVAL('2024-06-01', '2024-06-30'))", ["P3"]),
        ("T_FINISHES(INTERVAL(valid_from, valid_to), INTERVAL('2023-01-01', '2023-12-31'))", ["P1"]),
        ("T_FINISHEDBY(INTERVAL(valid_from, valid_to), INTERVAL('2024-03-01', '2024-06-30'))", ["P2"]),
        ("T_MEETS(INTERVAL(valid_from, valid_to), DATE('2024-06-30'))", ["P2"]),
        ("T_METBY(INTERVAL(valid_from, valid_to), DATE('2024-07-01'))", ["P4"]),
        ("T_METBY(INTERVAL(valid_from, valid_to), INTERVAL('2024-01-01', '2024-06-01'))", ["P3"]),
        ("T_EQUALS(INTERVAL(valid_from, valid_to), INTERVAL('2024-07-01', '2024-07-31'))", ["P4"]),
    ],
)
def test_cql2_temporal_functions(client, cql: str, expected: list[str]) -> None:
    assert permits(client, filter=cql) == expected


def test_datetime_and_filter_combine(client) -> None:
    assert permits(client, datetime="2024-01-01/2024-12-31", filter="T_AFTER(valid_to, DATE('2024-07-01'))") == ["P3", "P4"]
