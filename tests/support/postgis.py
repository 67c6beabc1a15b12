"""The PostGIS test server: its URL, admin statements, and per-test databases.

``$CIM_TEST_POSTGIS`` (set by scripts/test) or the local server; ``CIM_TEST_SKIP_POSTGIS=1`` runs the
DuckDB half only (the PostGIS fixtures skip). Names are per process, so concurrent runs on one
server do not drop each other's databases.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

POSTGIS_URL = os.environ.get("CIM_TEST_POSTGIS", "postgresql://postgres@127.0.0.1:5432/cim_test")
SKIP_POSTGIS = os.environ.get("CIM_TEST_SKIP_POSTGIS") == "1"
#: the two stores every store test runs on (the ``postgis`` marker follows the ``"postgis"`` param)
BACKENDS = ["duckdb", "postgis"]
#: the session's template database (PostGIS installed), cloned for every test database
TEMPLATE = f"cim_test_template_{os.getpid()}"


def admin_url(database: str = "postgres") -> str:
    """The URL of ``database`` on the test server, as the admin user."""
    base = POSTGIS_URL.rsplit("/", 1)[0]
    return f"{base}/{database}"


def admin(sql: str) -> None:
    """Run one statement (CREATE/DROP DATABASE ...) on the server's ``postgres`` database."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql)


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
    admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    admin(f"CREATE DATABASE {database} TEMPLATE {template}")
    url = admin_url(database)
    try:
        yield url
    finally:
        from cim.store import _shared

        shared = _shared.pop(url, None)
        if shared is not None:
            shared.close()
        admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
