"""Shared fixtures: every store test runs on both backends (embedded DuckDB and PostGIS), and the
markers of the test tiers.

PostGIS comes from ``$CIM_TEST_POSTGIS`` (set by scripts/test) or the local server; each test gets
a fresh database cloned from a template with PostGIS. A missing server fails the run — set
``CIM_TEST_SKIP_POSTGIS=1`` to run the DuckDB half only. Helpers that are not fixtures (the app on a
socket, admin statements, test data) are in tests/support/.

Markers (registered in pyproject.toml; the fast tier is ``-m "not postgis and not browser and not slow"``):

- ``postgis``: needs the PostgreSQL server. Set here, on every test whose parameters include the
  ``"postgis"`` store (``store_url``, ``demo_store_url``, ``backend_store`` users, a ``backend`` param)
  or that uses ``postgis_template``/``new_postgis_db``; by hand on tests that connect otherwise.
- ``browser``: needs Chromium and MapLibre GL JS (npm). Set here on every user of ``chromium_path``.
- ``slow``: runs on the embedded store without system packages but takes long; by hand.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import pytest
from support.postgis import BACKENDS, SKIP_POSTGIS, TEMPLATE, admin, admin_url, backend_store
from support.server import LiveServer

from cim.store import LayerData, ReleaseDraft, open_store

_counter = itertools.count()
#: fixtures that need the PostgreSQL server whatever their parameters
POSTGIS_FIXTURES = {"postgis_template", "new_postgis_db"}
#: fixtures that start Chromium
BROWSER_FIXTURES = {"chromium_path"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need PostgreSQL (``postgis``) or Chromium (``browser``)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if names & POSTGIS_FIXTURES or any(isinstance(value, str) and value == "postgis" for value in params):
            item.add_marker(pytest.mark.postgis)
        if names & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._cim_exitstatus = int(exitstatus)  # type: ignore[attr-defined]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the test process with pytest's own status once everything is reported, without the
    interpreter's finalization: one full run (2026-12-04, after 2302 tests had passed) aborted there
    ("terminate called without an active exception", SIGABRT) while native libraries (DuckDB,
    Arrow, GDAL) tore down objects the session's shared stores and servers still held. The cause is
    not found yet (docs/reliability.md); servers and the CLI are not affected: they close their
    stores before they exit. ``CIM_TEST_FINALIZE=1`` lets the interpreter finalize as usual."""
    status = getattr(config, "_cim_exitstatus", None)
    if status is None or os.environ.get("CIM_TEST_FINALIZE") == "1":
        return
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@pytest.fixture(scope="session")
def postgis_template() -> Iterator[str]:
    if SKIP_POSTGIS:
        pytest.skip("CIM_TEST_SKIP_POSTGIS=1")
    try:
        admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        admin(f"CREATE DATABASE {TEMPLATE}")
        with psycopg.connect(admin_url(TEMPLATE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        pytest.fail(f"PostGIS test server unusable at {admin_url()}: {exc} (run ./scripts/test)")
    yield TEMPLATE
    admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


@pytest.fixture
def new_postgis_db(postgis_template: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh PostGIS databases (cloned from the template), dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"cim_t_{os.getpid()}_{next(_counter)}"
        admin(f"CREATE DATABASE {name} TEMPLATE {postgis_template}")
        made.append(name)
        return admin_url(name)

    yield make
    for name in made:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store URL of each backend."""
    if request.param == "duckdb":
        return str(tmp_path / "city.duckdb")
    return request.getfixturevalue("new_postgis_db")()


@pytest.fixture(scope="session")
def demo_layers() -> list[LayerData]:
    from layers.osm_demo import load_demo_layers

    return load_demo_layers()


@pytest.fixture(scope="session", params=BACKENDS)
def demo_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, demo_layers: list[LayerData]
) -> Iterator[str]:
    """A store (each backend) holding the demo city as release 1; shared by the session, read-only."""
    with backend_store(request, "demo", tmp_path_factory.mktemp("demo")) as url:
        with open_store(url) as store:
            store.publish(ReleaseDraft(layers=demo_layers, srid=4326))
            store.prepare_tiles()  # as `cim build` and `cim demo` do (PostGIS; nothing for DuckDB)
        yield url


@pytest.fixture(scope="session")
def live_server(demo_store_url: str) -> Iterator[LiveServer]:
    with LiveServer(demo_store_url) as server:
        yield server


@pytest.fixture(scope="session")
def api_client(demo_store_url: str):
    """An in-process HTTP client of the app over the demo store."""
    from fastapi.testclient import TestClient

    from ogcapi.app import create_app

    with TestClient(create_app(demo_store_url, server_url="http://testserver")) as client:
        yield client
