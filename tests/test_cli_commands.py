"""The ``cim`` console script, run as users run it: a subprocess in a scratch directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from support.postgis import POSTGIS_URL, SKIP_POSTGIS
from support.server import free_port

import cim

CIM = Path(sys.executable).parent / "cim"
DEMO_LAYERS = ["landuse", "water", "parcels", "roads", "admin_divisions", "buildings", "pois"]
RELEASE_LINE = re.compile(r"^([* ]) +(\d+)  (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  (.*)$")


def cim_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CIM_STORE"}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return env


def run(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CIM), *args], cwd=cwd, env=cim_env(), capture_output=True, text=True, timeout=timeout)


def ok(cwd: Path, *args: str, timeout: float = 300) -> str:
    result = run(cwd, *args, timeout=timeout)
    assert result.returncode == 0, f"cim {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def fails(cwd: Path, *args: str, timeout: float = 300) -> str:
    """Run ``cim args`` expecting exit 1 with exactly one ``error: ...`` line on stderr; that line."""
    result = run(cwd, *args, timeout=timeout)
    assert result.returncode == 1, f"cim {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def release_table(stdout: str) -> dict[int, tuple[bool, list[str]]]:
    """``cim releases`` output as {number: (current, layers)}."""
    rows = {}
    for line in stdout.splitlines():
        match = RELEASE_LINE.match(line)
        assert match, f"unexpected line in `cim releases` output: {line!r}"
        rows[int(match.group(2))] = (match.group(1) == "*", match.group(4).split(", "))
    return rows


def current(rows: dict[int, tuple[bool, list[str]]]) -> list[int]:
    return [number for number, (is_current, _) in rows.items() if is_current]


# -- help and errors ----------------------------------------------------------------------------------


@pytest.mark.slow  # `cim --help` in a subprocess
def test_help_lists_core_and_plugin_commands(tmp_path: Path) -> None:
    out = ok(tmp_path, "--help")
    commands = set(re.findall(r"^  (\w+) ", out.split("Commands:", 1)[1], re.MULTILINE))
    assert {"demo", "serve", "releases"} <= commands


def test_unknown_store_scheme(tmp_path: Path) -> None:
    line = fails(tmp_path, "releases", "--store", "foo.sqlite")
    assert "unknown store" in line and "foo.sqlite" in line


@pytest.mark.slow  # `cim` in a subprocess, waiting for a refused connection
def test_unreachable_postgres(tmp_path: Path) -> None:
    line = fails(tmp_path, "releases", "--store", "postgresql://postgres@127.0.0.1:1/nope", timeout=60)
    assert "cannot connect" in line


@pytest.fixture
def database_without_postgis() -> Iterator[str]:
    """A fresh database owned by postgres, without PostGIS, and a non-superuser URL for it."""
    if SKIP_POSTGIS:
        pytest.skip("CIM_TEST_SKIP_POSTGIS=1")
    admin = POSTGIS_URL.rsplit("/", 1)[0] + "/postgres"
    name = f"cim_nopostgis_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        created_role = not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'cim_nopriv'").fetchone()
        if created_role:
            conn.execute("CREATE ROLE cim_nopriv LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        conn.execute(f"CREATE DATABASE {name} OWNER postgres")
    parts = urlsplit(POSTGIS_URL)
    try:
        yield f"postgresql://cim_nopriv@{parts.hostname}:{parts.port or 5432}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if created_role:
                conn.execute("DROP ROLE IF EXISTS cim_nopriv")


@pytest.mark.postgis  # its own database on the server, without PostGIS (database_without_postgis)
def test_database_without_postgis(tmp_path: Path, database_without_postgis: str) -> None:
    line = fails(tmp_path, "releases", "--store", database_without_postgis, timeout=60)
    assert "PostGIS" in line
    # nothing was created in the database on the way
    admin = POSTGIS_URL.rsplit("/", 1)[0] + "/" + database_without_postgis.rsplit("/", 1)[1]
    with psycopg.connect(admin) as conn:
        assert not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
        assert not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'cim'").fetchone()


@pytest.mark.slow  # `cim serve` in a subprocess (~3 s)
def test_serve_empty_store(tmp_path: Path) -> None:
    line = fails(tmp_path, "serve", "--store", str(tmp_path / "empty.duckdb"), "--port", str(free_port()), timeout=120)
    assert "no release" in line
    assert not (tmp_path / "empty.duckdb").exists()


# -- releases on the embedded store (default ./cim.duckdb) --------------------------------------------


@pytest.mark.slow  # `cim demo` builds twice in subprocesses (~17 s)
def test_demo_builds_releases_and_rollback(tmp_path: Path) -> None:
    store = tmp_path / "cim.duckdb"
    assert "no releases yet" in ok(tmp_path, "releases")

    out = ok(tmp_path, "demo", "--build-only")
    assert "release 1 is current" in out
    assert store.is_symlink()
    rows = release_table(ok(tmp_path, "releases"))
    assert list(rows) == [1] and current(rows) == [1]
    assert rows[1][1] == DEMO_LAYERS

    assert "release 2 is current" in ok(tmp_path, "demo", "--build-only")
    rows = release_table(ok(tmp_path, "releases"))
    assert list(rows) == [1, 2] and current(rows) == [2]

    assert ok(tmp_path, "releases", "rollback", "1").strip() == "release 1 is current"
    rows = release_table(ok(tmp_path, "releases"))
    assert list(rows) == [1, 2] and current(rows) == [1]
    with cim.open(str(store)) as city:  # what readers see follows the rollback
        assert city.release is not None and city.release.number == 1
        assert len(city.read("buildings")) == city.info("buildings").count > 2500

    line = fails(tmp_path, "releases", "rollback", "99")
    assert "99" in line
    assert current(release_table(ok(tmp_path, "releases"))) == [1]  # a failed rollback changes nothing


def test_demo_build_into_postgis(tmp_path: Path, new_postgis_db: Callable[[], str]) -> None:
    url = new_postgis_db()
    assert "release 1 is current" in ok(tmp_path, "demo", "--build-only", "--store", url)
    rows = release_table(ok(tmp_path, "releases", "--store", url))
    assert list(rows) == [1] and current(rows) == [1]
    assert rows[1][1] == DEMO_LAYERS
    assert not (tmp_path / "cim.duckdb").exists()  # --store was honoured, not the default


@pytest.mark.slow  # `cim demo` serving in a subprocess (~6 s)
def test_demo_serves(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "out.log").open("w") as out, (tmp_path / "err.log").open("w") as err:
        proc = subprocess.Popen(
            [str(CIM), "demo", "--port", str(port)], cwd=tmp_path, env=cim_env(), stdout=out, stderr=err
        )
        try:
            ids = _wait_for_collections(proc, url, tmp_path, deadline=time.monotonic() + 30)
            assert set(DEMO_LAYERS) <= ids
            with httpx.Client(trust_env=False, timeout=30) as client:
                page = client.get(f"{url}/collections/buildings/items", params={"f": "json", "limit": 3}).json()
            assert len(page["features"]) == 3
            with cim.open(str(tmp_path / "cim.duckdb")) as city:  # a second reader while the server runs
                assert page["numberMatched"] == city.info("buildings").count > 2500
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)
    assert (tmp_path / "cim.duckdb").is_symlink()  # built into the default store of the working directory
    assert f"at {url}" in (tmp_path / "out.log").read_text()


def _wait_for_collections(proc: subprocess.Popen[bytes], url: str, logs: Path, deadline: float) -> set[str]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"cim demo exited {proc.returncode} before serving:\n"
                    f"{(logs / 'out.log').read_text()}\n{(logs / 'err.log').read_text()}"
                )
            try:
                response = client.get(f"{url}/collections", params={"f": "json"})
                if response.status_code == 200:
                    return {c["id"] for c in response.json()["collections"]}
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cim demo did not serve {url}/collections within 30 s:\n{(logs / 'err.log').read_text()}")
            time.sleep(0.2)


@pytest.mark.slow  # a real `cim serve --workers 2` (~19 s)
def test_serve_with_several_workers(tmp_path: Path) -> None:
    ok(tmp_path, "demo", "--build-only")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "out.log").open("w") as out, (tmp_path / "err.log").open("w") as err:
        proc = subprocess.Popen(
            [str(CIM), "serve", "--port", str(port), "--workers", "2"], cwd=tmp_path, env=cim_env(), stdout=out, stderr=err
        )
        try:
            ids = _wait_for_collections(proc, url, tmp_path, deadline=time.monotonic() + 30)
            assert set(DEMO_LAYERS) <= ids
            with httpx.Client(trust_env=False, timeout=30) as client:
                # links carry the public URL in every worker, not a default
                doc = client.get(f"{url}/collections/water/items", params={"limit": 2}).json()
            assert doc["numberMatched"] == 14
            assert all(link["href"].startswith(url) for link in doc["links"])
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_workers_answer_keep_alive_requests_without_nagle_delay() -> None:
    """uvicorn's multi-process socket lacked TCP_NODELAY (~40 ms per keep-alive response); ours sets it."""
    import socket as socket_module

    from ogcapi.server import TCPConfig

    config = TCPConfig("ogcapi.app:app_from_environment", factory=True, host="127.0.0.1", port=free_port(), workers=2)
    sock = config.bind_socket()
    try:
        assert sock.proto == socket_module.IPPROTO_TCP  # asyncio sets TCP_NODELAY only for these
    finally:
        sock.close()
