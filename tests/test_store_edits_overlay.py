"""Many edits: a reader in another process sees every one (both stores), and the embedded store's
overlay stays bounded on disk — compact versions, the old ones pruned, superseded ones detached by
readers (cim/store/duckdb/live.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cim.store import Edit, open_store
from test_store_edits_identity import city

pytestmark = pytest.mark.slow  # hundreds of edits, a reader in another process (~40 s)


EDITS = 200
#: a reader process: for each fid read on stdin, prints the parcel's land_use as it sees it now
READER = """
import sys
from cim.store import open_store
store = open_store(sys.argv[1])
for line in sys.stdin:
    print(store.get_feature("parcels", int(line))["properties"]["land_use"], flush=True)
"""


def test_another_process_sees_every_edit(store_url: str) -> None:
    with open_store(store_url) as store:
        store.publish(city("survey", [f"p{n}" for n in range(20)], 117.0))
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, store_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            for n in range(60):
                fid = 1 + n % 20
                value = f"U{n}"
                store.edit(Edit("parcels", "update", "planner", fid, {"properties": {"land_use": value}}))
                assert reader.stdin is not None and reader.stdout is not None
                reader.stdin.write(f"{fid}\n")
                reader.stdin.flush()
                # PostGIS readers may cache the edit generation for a second, never the rows
                assert reader.stdout.readline().strip() == value
        finally:
            reader.kill()
            reader.wait()


def test_the_embedded_overlay_stays_bounded(tmp_path: Path) -> None:
    url = str(tmp_path / "city.duckdb")
    with open_store(url) as store:
        store.publish(city("survey", [f"p{n}" for n in range(50)], 117.0))
        for n in range(EDITS):
            store.edit(Edit("parcels", "update", "planner", 1 + n % 50, {"properties": {"land_use": f"U{n}"}}))
            if n % 50 == 0:
                store.get_feature("parcels", 1)  # this process reads (attaches versions) too
        assert store.get_feature("parcels", 1 + (EDITS - 1) % 50)["properties"]["land_use"] == f"U{EDITS - 1}"
        assert len(store.edit_log(limit=1000)) == EDITS
    live = tmp_path / "city.duckdb.d" / "live"
    versions = sorted(live.glob("l*.duckdb"))
    total = sum(p.stat().st_size for p in live.iterdir() if not p.is_symlink())
    assert len(versions) <= 4, versions
    # one version holds 50 edited parcels and 200 log entries: well under 2 MB; a copy per edit of
    # a file that grows with every checkpoint came to several MB per version
    assert total < 4 * 2**20, total
