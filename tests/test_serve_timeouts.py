"""The time budget of a read, on both stores: a page that would run past ``limits().request_seconds``
(PostGIS: ``statement_timeout``) is cut with 503, ``Retry-After`` and an OGC exception saying so —
no database text — and the worker (DuckDB cursor, PostgreSQL connection) is free again at once.
Builds are not cut: the statement timeout is on the server's read connections only.

The slow request is a legal one (tests/support/slow_requests.py): a CQL2 S_DISJOINT against a many-sided
polygon over a large synthetic buildings layer, counted; the budget is lowered to make it too slow."""

from __future__ import annotations

from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from cim.errors import RequestTimeout
from cim.limits import limits
from cim.store import FeatureQuery, open_store, parse_filter
from support.slow_requests import heavy_items_path, publish_big, star

#: buildings in the synthetic layer: the heavy page takes seconds on either store
pytestmark = pytest.mark.slow  # each test publishes a large synthetic store (~8 s)


BUILDINGS = 150_000
#: the lowered budget, in seconds: the heavy page takes far longer (DuckDB ~1 s, PostgreSQL > 10 s),
#: a lookup by id far less (a new PostgreSQL connection's first statements load its catalog caches)
BUDGET = {"duckdb": 0.05, "postgis": 1.0}


def budget_of(url: str) -> float:
    return BUDGET["postgis" if url.startswith("postgresql") else "duckdb"]


def set_budget(monkeypatch: pytest.MonkeyPatch, seconds: float, statement_ms: int | None = None) -> None:
    monkeypatch.setenv("CIM_LIMIT_REQUEST_SECONDS", str(seconds))
    if statement_ms is not None:
        monkeypatch.setenv("CIM_LIMIT_STATEMENT_TIMEOUT_MS", str(statement_ms))
    limits.cache_clear()


@pytest.fixture
def big_store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # a statement timeout of 1 ms for the build: its COPY and index builds must not be cut
    set_budget(monkeypatch, budget_of(store_url), statement_ms=1)
    publish_big(store_url, BUILDINGS)
    set_budget(monkeypatch, budget_of(store_url), statement_ms=15_000)  # reads: the budget is the smaller
    yield store_url
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()
    monkeypatch.delenv("CIM_LIMIT_REQUEST_SECONDS")
    monkeypatch.delenv("CIM_LIMIT_STATEMENT_TIMEOUT_MS")
    limits.cache_clear()


def heavy_query() -> FeatureQuery:
    return FeatureQuery("buildings", limit=5, filter=parse_filter(f"S_DISJOINT(geometry, {star(300)}) AND floors > 2"),
                        sortby=(("height_m", False),))  # fmt: skip


def test_a_page_past_its_budget_is_cut_with_503(big_store: str) -> None:
    from ogcapi.app import create_app

    with TestClient(create_app(big_store, server_url="http://testserver")) as client:
        response = client.get(heavy_items_path(300))
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"].isdigit()
        body = response.json()
        assert body["code"] == "RequestTimeout"
        assert f"exceeded its time budget ({budget_of(big_store):g} s)" in body["description"]
        for internal in ("INTERRUPT", "Interrupted", "canceling statement", "statement timeout", "SELECT", "psycopg", "duckdb"):
            assert internal not in response.text
        # the worker answers the next request at once
        one = client.get("/collections/buildings/items/1")
        assert one.status_code == 200, one.text


def test_the_store_is_usable_right_after_a_cut(big_store: str) -> None:
    # one connection (PostGIS: a pool of one) and one thread (DuckDB: this thread's cursor)
    with open_store(big_store) as store:
        if hasattr(store, "_reads"):
            store._reads.resize(1, 1)
        with pytest.raises(RequestTimeout, match="time budget"):
            store.query(heavy_query())
        assert store.get_feature("buildings", 7)["id"] == 7
        with pytest.raises(RequestTimeout):
            store.query(heavy_query())
        assert store.query(FeatureQuery("buildings", limit=2, count=False)).features


def test_postgis_read_connections_carry_the_statement_timeout(big_store: str) -> None:
    if not big_store.startswith("postgresql"):
        pytest.skip("PostgreSQL's statement_timeout (the embedded store interrupts from its watchdog)")
    with open_store(big_store) as store:
        with store._reads.connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1s"  # the request budget
        with store._pool.connection() as conn:  # builds and edits: PostgreSQL's default, none
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"
