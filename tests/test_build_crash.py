"""``cim build`` killed with SIGKILL at every point of a build, on both stores.

The build runs as users run it (the ``cim`` console script, in a subprocess) with ``CIM_CRASH_AT``
naming a point (cim/faults.py) where it then kills itself — no ``finally``, no cleanup, as a power
cut or the OOM killer would. After each kill: the store opens; the release before the build is
still current and complete (every layer's count is what its table holds), or, once the switch has
happened, the new one is; a server (the app, via TestClient) answers items and tiles; and at the end
a normal build succeeds and nothing is left behind (no ``.partial`` or WAL file, no staged schema).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from support.corpus_builds import leftovers, parcels_config, write_parcels
from fastapi.testclient import TestClient
from test_cli_commands import CIM, cim_env
from support.tianjin import BUILDINGS, write_city
from support.tiles import counts, decode, tile_at, tile_path

from cim.build import load_config, prepare
from cim.faults import ENV
from cim.store import _shared, open_store
from ogcapi.app import create_app

#: what the first build publishes (the example config without water)
FIRST = {"buildings": 5, "parcels": 2, "roads": 2, "landuse": 2, "pois": 2}
#: what every later build publishes: the whole example
FULL = {**FIRST, "water": 2}
#: (point, the build's release becomes current, stores it exists in), in the order a build reaches them
POINTS = [
    ("build.read", False, ("duckdb", "postgis")),  # a source read, nothing loaded yet
    ("build.read:4", False, ("duckdb", "postgis")),  # a later source: the store is loading layers meanwhile
    ("publish.write", False, ("duckdb", "postgis")),  # DuckDB: .partial half written; PostGIS: schema half loaded
    ("publish.write:6", False, ("duckdb", "postgis")),  # every layer loaded, not yet recorded
    ("publish.switch", False, ("duckdb", "postgis")),  # complete, right before the switch
    ("build.switched", True, ("duckdb", "postgis")),  # switched; PostGIS tile geometry not yet prepared
    ("tiles.prepare", True, ("postgis",)),  # PostGIS: in the middle of the tile geometry
]
#: points of an incremental build (the layers of the first build carried over, cim/build/carry.py),
#: reached before those above: the points above are reached by full builds (``--full``)
CARRY_POINTS = [
    "publish.carry",  # DuckDB: a carried table copied into the .partial file; PostGIS: a view made
    "publish.carry:3",  # the third carried layer
]
TILE = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 14, *BUILDINGS["TJ-B002"].centroid.coords[0]))


def cim_build(
    cwd: Path, config: Path, store_url: str, crash_at: str | None = None, full: bool = False
) -> subprocess.CompletedProcess[str]:
    env = cim_env()
    env.pop(ENV, None)
    if crash_at is not None:
        env[ENV] = crash_at
    return subprocess.run(
        [str(CIM), "build", config.name, "--store", store_url, *(["--full"] if full else [])], cwd=cwd, env=env,
        capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def assert_current(store_url: str, number: int, layers: dict[str, int]) -> None:
    """Release ``number`` is current and complete: its layers, each count what its table holds."""
    with open_store(store_url) as store:
        assert store.current_number() == number
        assert {info.name: info.count for info in store.layers() if not info.spec.live} == layers  # live: warnings
        for name, count in layers.items():
            assert len(store.read_frame(name)) == count, name


def assert_served(store_url: str, layers: dict[str, int]) -> None:
    """The app on the store answers items of every layer, and a tile with the buildings in it."""
    try:
        with TestClient(create_app(store_url, server_url="http://testserver")) as client:
            for name, count in layers.items():
                response = client.get(f"/collections/{name}/items", params={"f": "json", "limit": 100})
                assert response.status_code == 200, (name, response.text)
                assert len(response.json()["features"]) == count, name
            response = client.get(TILE)
            assert response.status_code == 200, response.text
            assert counts(decode(response.content)).get("buildings", 0) >= 1
    finally:  # a new server each time: no release or layer list cached from before the crash
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()


def newest(store_url: str) -> int:
    with open_store(store_url) as store:
        return max(r.number for r in store.releases())


@pytest.mark.parametrize("backend", ["duckdb", "postgis"])
@pytest.mark.slow  # a `cim build` killed at every crash point (~30 s)
def test_a_build_killed_at_any_point_leaves_a_working_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store_url = str(tmp_path / "city.duckdb") if backend == "duckdb" else request.getfixturevalue("new_postgis_db")()
    config = write_city(tmp_path)
    first = config.with_name("first.yml")
    text = config.read_text(encoding="utf-8")
    first.write_text(text[: text.index("  water:")], encoding="utf-8")
    done = cim_build(tmp_path, first, store_url)
    assert done.returncode == 0, done.stderr
    current, layers = 1, FIRST
    for point in CARRY_POINTS:
        crashed = cim_build(tmp_path, config, store_url, crash_at=point)
        assert crashed.returncode == -signal.SIGKILL, (point, crashed.returncode, crashed.stderr)
        assert_current(store_url, current, layers)
        assert_served(store_url, layers)
    for point, switches, backends in POINTS:
        if backend not in backends:
            continue
        crashed = cim_build(tmp_path, config, store_url, crash_at=point, full=True)
        assert crashed.returncode == -signal.SIGKILL, (point, crashed.returncode, crashed.stderr)
        if switches:
            current, layers = newest(store_url), FULL
        assert_current(store_url, current, layers)
        assert_served(store_url, layers)
    done = cim_build(tmp_path, config, store_url)  # carries every layer over from the newest release
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert newest(store_url) > current
    assert_current(store_url, newest(store_url), FULL)
    assert_served(store_url, FULL)
    assert leftovers(store_url) == []


def test_the_raster_staging_of_a_killed_build_is_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build stages its raster layers' COGs in a temporary directory named with its pid; a build
    killed before removing it leaves it (GBs of COG for a city), so the next build removes the
    staging directories whose builds are gone — and only those."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f"cim-raster-{gone.pid}-x1"
    running = tmp_path / f"cim-raster-{os.getpid()}-x2"
    unnamed = tmp_path / "cim-raster-x3"  # not a pid: someone else's
    for directory in (stale, running, unnamed):
        directory.mkdir()
        (directory / "dem.tif").write_bytes(b"COG")
    write_parcels(tmp_path / "good.gpkg")
    prepare(load_config(parcels_config(tmp_path, "good.gpkg")))
    assert not stale.exists() and running.exists() and unnamed.exists()
