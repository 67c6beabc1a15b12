"""The embedded store's readers and its overlay versions: DuckDB keeps one database instance per file
in a process, so the reader a release switch replaced (still finishing its requests) and the new
reader of the same release file share what is attached to it. Both attaching the next overlay
version at once made one of them fail ("database ... already exists": a 503 in the load test)."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from cim.store.duckdb import spatial
from cim.store.duckdb.live import ReaderOverlays


def test_two_readers_of_one_release_file_attach_each_overlay_version_once(tmp_path: Path) -> None:
    release = tmp_path / "r0001.duckdb"
    duckdb.connect(str(release)).close()
    readers = [ReaderOverlays(spatial.connect(release, read_only=True)) for _ in range(2)]
    for number in range(1, 31):
        version = tmp_path / f"l{number:06d}.duckdb"
        with duckdb.connect(str(version)) as con:
            con.execute("CREATE TABLE buildings (fid BIGINT, deleted BOOLEAN)")
        start = threading.Barrier(len(readers))
        errors: list[BaseException] = []

        def show(overlays: ReaderOverlays) -> None:
            start.wait()
            try:
                view = overlays.show(version)
                assert view.alias == f"cim_live_{version.stem}" and view.columns == {"buildings": {"fid", "deleted"}}
            except BaseException as exc:  # noqa: BLE001 - reported below, with the version
                errors.append(exc)

        threads = [threading.Thread(target=show, args=(overlays,)) for overlays in readers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"version {number}: {errors[0]!r}"
