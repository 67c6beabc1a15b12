"""Encryption at rest of the embedded store (DuckDB database encryption, key in ``$CIM_DUCKDB_KEY``):
a store built, edited and served with the key keeps no feature text in plain form in any file it
wrote (release files, edits-overlay versions); opening it without the key, or with another one, is a
clear StoreError — also for the server at start — and a key set for a plain store says so."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient

from cim.errors import StoreError
from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG
from test_auth_access import PARCEL_TILE, bearer, client
from test_api_edits import OTHER

pytestmark = pytest.mark.slow  # builds, edits and serves encrypted stores; several publishes (~9 s)


KEY = "h6 test key: 'quoted' and long enough"
#: feature text that must not be found in any file in plain form
BUILT = "H6-SECRET-PARCEL-7731"
EDITED = "H6-SECRET-EDIT-4419"


def parcels(name: str) -> LayerData:
    frame = gpd.GeoDataFrame(
        {"parcel_id": [name, "H6-OTHER"], "land_use": ["R2", "B1"], "area_m2": [10.0, 20.0],
         "plot_ratio": [1.0, 2.0], "source": ["survey"] * 2, "source_id": ["s1", "s2"]},
        geometry=[shapely.MultiPolygon([shapely.box(117.174 + i * 0.002, 39.142, 117.175 + i * 0.002, 39.143)]) for i in range(2)],
        crs=4326,
    )  # fmt: skip
    return LayerData(CATALOG["parcels"], frame)


def files_of(url: str) -> list[Path]:
    store = Path(url)
    return sorted({p for p in [store.resolve(), *store.with_name(store.name + ".d").rglob("*.duckdb")] if p.is_file()})


def plain_text_in(url: str, *needles: str) -> set[str]:
    found = set()
    for path in files_of(url):
        data = path.read_bytes()
        found |= {n for n in needles if n.encode() in data}
    return found


def close_shared(url: str) -> None:
    from cim.store import _shared

    shared = _shared.pop(url, None)
    if shared is not None:
        shared.close()


def test_a_plain_store_shows_its_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: without a key the check below does find the text."""
    monkeypatch.delenv("CIM_DUCKDB_KEY", raising=False)
    url = str(tmp_path / "plain.duckdb")
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[parcels(BUILT)], srid=4326))
    assert plain_text_in(url, BUILT) == {BUILT}


def test_built_edited_and_served_encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIM_DUCKDB_KEY", KEY)
    url = str(tmp_path / "secret.duckdb")
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[parcels(BUILT)], srid=4326))
        store.publish(ReleaseDraft(layers=[parcels(BUILT)], srid=4326))  # a second release, the first kept
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [OTHER]},
               "properties": {"parcel_id": EDITED, "land_use": "R2", "source": "survey", "source_id": "h6-e"}}  # fmt: skip
    with client(url, monkeypatch) as app:
        created = app.post("/collections/parcels/items", json=feature, headers=bearer("editor"))
        assert created.status_code == 201, created.text[:300]
        names = {f["properties"]["parcel_id"] for f in app.get("/collections/parcels/items").json()["features"]}
        assert {BUILT, EDITED} <= names
        tile = app.get(PARCEL_TILE)
        assert tile.status_code == 200 and tile.content
    close_shared(url)
    written = files_of(url)
    assert len([p for p in written if "releases" in p.parts]) == 2 and any("live" in p.parts for p in written)
    assert plain_text_in(url, BUILT, EDITED) == set()
    # a new process, with the key: everything reads back
    with open_store(url) as store:
        assert store.current_number() == 2
        assert len(store.read_frame("parcels")) == 3


def test_without_or_with_a_wrong_key_a_clear_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIM_DUCKDB_KEY", KEY)
    url = str(tmp_path / "secret.duckdb")
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[parcels(BUILT)], srid=4326))
    monkeypatch.delenv("CIM_DUCKDB_KEY")
    with pytest.raises(StoreError, match="it is encrypted: set CIM_DUCKDB_KEY"):
        open_store(url).layers()
    monkeypatch.setenv("CIM_DUCKDB_KEY", "not the key")
    with pytest.raises(StoreError, match="CIM_DUCKDB_KEY is not the key it was encrypted with"):
        open_store(url).layers()
    # the server does not start on it (a StoreError, not a crash)
    monkeypatch.delenv("CIM_DUCKDB_KEY")
    from ogcapi.app import create_app

    with pytest.raises(StoreError, match="encrypted"):
        TestClient(create_app(url, server_url="http://testserver"))
    close_shared(url)


def test_a_key_for_a_plain_store_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIM_DUCKDB_KEY", raising=False)
    url = str(tmp_path / "plain.duckdb")
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=[parcels(BUILT)], srid=4326))
    monkeypatch.setenv("CIM_DUCKDB_KEY", KEY)
    with pytest.raises(StoreError, match="not encrypted"):
        open_store(url).layers()
