"""Shared fixtures: every store test runs on both backends (embedded DuckDB and PostGIS).

PostGIS comes from ``$CIM_TEST_POSTGIS`` (set by scripts/test) or the local server; each test gets
a fresh database cloned from a template with PostGIS. A missing server fails the run — set
``CIM_TEST_SKIP_POSTGIS=1`` to run the DuckDB half only.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest
import uvicorn

from cim.store import LayerData, ReleaseDraft, open_store

POSTGIS_URL = os.environ.get("CIM_TEST_POSTGIS", "postgresql://postgres@127.0.0.1:5432/cim_test")
SKIP_POSTGIS = os.environ.get("CIM_TEST_SKIP_POSTGIS") == "1"
BACKENDS = ["duckdb", "postgis"]
# per process, so that concurrent test runs on one server do not drop each other's template
_TEMPLATE = f"cim_test_template_{os.getpid()}"
_counter = itertools.count()


def _admin_url(database: str = "postgres") -> str:
    base = POSTGIS_URL.rsplit("/", 1)[0]
    return f"{base}/{database}"


def _admin(sql: str) -> None:
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def postgis_template() -> Iterator[str]:
    if SKIP_POSTGIS:
        pytest.skip("CIM_TEST_SKIP_POSTGIS=1")
    try:
        _admin(f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)")
        _admin(f"CREATE DATABASE {_TEMPLATE}")
        with psycopg.connect(_admin_url(_TEMPLATE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        pytest.fail(f"PostGIS test server unusable at {POSTGIS_URL}: {exc} (run ./scripts/test)")
    yield _TEMPLATE
    _admin(f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)")


@pytest.fixture
def new_postgis_db(postgis_template: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh PostGIS databases (cloned from the template), dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"cim_t_{os.getpid()}_{next(_counter)}"
        _admin(f"CREATE DATABASE {name} TEMPLATE {postgis_template}")
        made.append(name)
        return _admin_url(name)

    yield make
    for name in made:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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


@contextlib.contextmanager
def backend_store(request: pytest.FixtureRequest, name: str, directory: Path) -> Iterator[str]:
    """An empty store URL of ``request.param``'s backend for a long-lived fixture: a DuckDB file in
    ``directory``, or a PostGIS database ``cim_<name>_<pid>`` cloned from the template; the database
    (and the process's shared store on it) is dropped afterwards."""
    if request.param == "duckdb":
        yield str(directory / f"{name}.duckdb")
        return
    template = request.getfixturevalue("postgis_template")
    database = f"cim_{name}_{os.getpid()}"
    _admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    _admin(f"CREATE DATABASE {database} TEMPLATE {template}")
    url = _admin_url(database)
    try:
        yield url
    finally:
        from cim.store import _shared

        shared = _shared.pop(url, None)
        if shared is not None:
            shared.close()
        _admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``cim serve``'s app on a real socket in a background thread, for real HTTP clients."""

    def __init__(self, store_url: str) -> None:
        from ogcapi.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(store_url, server_url=self.url)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(demo_store_url: str) -> Iterator[LiveServer]:
    with LiveServer(demo_store_url) as server:
        yield server


@contextlib.contextmanager
def app_client(store_url: str) -> Iterator[Any]:
    """A TestClient of the app over ``store_url`` (``client.store_url`` is set); the process's shared
    store on that URL is closed afterwards, so the test's database or file can be dropped."""
    from fastapi.testclient import TestClient

    from cim.store import _shared
    from ogcapi.app import create_app

    try:
        with TestClient(create_app(store_url, server_url="http://testserver")) as client:
            client.store_url = store_url  # type: ignore[attr-defined]
            yield client
    finally:
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()


@pytest.fixture(scope="session")
def api_client(demo_store_url: str):
    """An in-process HTTP client of the app over the demo store."""
    from fastapi.testclient import TestClient

    from ogcapi.app import create_app

    with TestClient(create_app(demo_store_url, server_url="http://testserver")) as client:
        yield client
