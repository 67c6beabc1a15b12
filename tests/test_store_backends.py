"""Store backends are plug-ins: open_store finds them by URL scheme in the ``cim.stores`` entry
points (pyproject.toml), and refuses an unknown scheme naming those installed."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from cim.errors import StoreError
from cim.store import Store, backends, open_store
from cim.store.duckdb import DuckDBStore
from cim.store.postgis import PostgisStore


def test_both_backends_are_entry_points() -> None:
    found = {ep.name: ep.load() for ep in entry_points(group="cim.stores")}
    assert found == {"duckdb": DuckDBStore, "postgresql": PostgisStore}
    assert all(issubclass(cls, Store) for cls in found.values())
    assert backends() == ["duckdb", "postgresql"]


def test_duckdb_paths_and_urls(tmp_path: Path) -> None:
    path = tmp_path / "city.duckdb"
    for url in (str(path), f"duckdb://{path}", f"DUCKDB://{path}"):
        with open_store(url) as store:
            assert isinstance(store, DuckDBStore)
            assert store.path == path
            assert store.tile_cache_dir() == tmp_path / "city.duckdb.d" / "tiles"


@pytest.mark.parametrize(
    "url, given",
    [
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgres://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql+psycopg://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
    ],
)
def test_postgres_schemes_open_the_postgis_backend(monkeypatch: pytest.MonkeyPatch, url: str, given: str) -> None:
    opened: list[str] = []

    def fake_init(self: PostgisStore, url: str, pool_size: int = 10) -> None:
        opened.append(url)

    monkeypatch.setattr(PostgisStore, "__init__", fake_init)  # no database: only which backend, with what URL
    assert isinstance(open_store(url), PostgisStore)
    assert opened == [given]


@pytest.mark.parametrize("url", ["foo://bar/baz", "x.txt", "mysql://u@h/db", "city.sqlite"])
def test_unknown_store_lists_the_installed_backends(url: str) -> None:
    with pytest.raises(StoreError, match="unknown store") as refused:
        open_store(url)
    assert url in str(refused.value)
    assert "store backends installed: duckdb, postgresql" in str(refused.value)


def test_postgis_tiles_have_no_default_disk_cache() -> None:
    assert object.__new__(PostgisStore).tile_cache_dir() is None  # memory only, unless $CIM_TILE_CACHE
