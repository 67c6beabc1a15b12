"""Edits follow a feature's stable identity (source, source_id), not its fid, on both stores: a
release that gives fids 1 and 2 to other features leaves those untouched and reports the edits it
cannot take as conflicts; a rebuild that renumbers features carries the edit to its feature; a
rollback brings edits back onto the old release's features (cim/store/rebase.py)."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner

from cim.cli import cli
from cim.store import FeatureQuery, LayerData, ReleaseDraft, Store, open_store
from cim.store.edits import FIRST_CREATED_FID, Edit, InvalidFeature
from layers.catalog import CATALOG


def city(source: str, ids: list[str], x0: float) -> ReleaseDraft:
    """A release of parcels with the given source ids, numbered 1.. in that order."""
    frame = gpd.GeoDataFrame(
        {"parcel_id": [f"{source}-{i}" for i in ids], "land_use": ["R2"] * len(ids), "area_m2": [100.0] * len(ids),
         "plot_ratio": [1.5] * len(ids), "source": [source] * len(ids), "source_id": ids},
        geometry=[shapely.MultiPolygon([shapely.box(x0 + n * 0.01, 39.1, x0 + n * 0.01 + 0.005, 39.105)]) for n in range(len(ids))],
        crs=4326,
    )  # fmt: skip
    return ReleaseDraft(layers=[LayerData(CATALOG["parcels"], frame)], srid=4326)


def features(store: Store) -> dict[int, tuple[str, str]]:
    """fid -> (source_id, land_use) of every parcel readers see."""
    page = store.query(FeatureQuery("parcels", limit=100))
    return {f["id"]: (f["properties"]["source_id"], f["properties"]["land_use"]) for f in page.features}


def update(store: Store, fid: int, land_use: str) -> None:
    store.edit(Edit("parcels", "update", "planner", fid, {"properties": {"land_use": land_use}}))


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_edits_of_another_city_do_not_touch_the_new_citys_features(store_url: str) -> None:
    with open_store(store_url) as store:
        store.publish(city("city-a", ["a1", "a2", "a3"], 117.0))
        update(store, 1, "M1")
        store.edit(Edit("parcels", "delete", "planner", 2))
        assert features(store) == {1: ("a1", "M1"), 3: ("a3", "R2")}

        store.publish(city("city-b", ["b1", "b2"], 121.0))
        assert features(store) == {1: ("b1", "R2"), 2: ("b2", "R2")}  # visible and untouched
        assert store.query(FeatureQuery("parcels")).number_matched == 2
        assert store.get_feature("parcels", 2)["properties"]["land_use"] == "R2"
        conflicts = sorted(store.edit_conflicts(), key=lambda c: c.source_id)
        assert [(c.layer, c.source, c.source_id, c.action) for c in conflicts] == [
            ("parcels", "city-a", "a1", "edit"), ("parcels", "city-a", "a2", "delete"),
        ]  # fmt: skip
        assert "release 2 has no feature with source 'city-a' and source_id 'a1'" in conflicts[0].reason
        assert "feature 1 of release 1" in conflicts[0].reason

    listed = CliRunner().invoke(cli, ["releases", "--store", store_url])
    assert listed.exit_code == 0, listed.output
    assert "2 edit(s) not applied to the current release" in listed.output
    assert "source_id='a2'" in listed.output and "delete" in listed.output


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_a_renumbering_rebuild_carries_the_edit_to_its_feature(store_url: str) -> None:
    with open_store(store_url) as store:
        store.publish(city("survey", ["p1", "p2", "p3"], 117.0))
        update(store, 1, "M1")  # p1
        store.edit(Edit("parcels", "delete", "planner", 2))  # p2
        created = store.edit(Edit("parcels", "create", "planner", None, {
            "type": "Feature", "properties": {"parcel_id": "new", "land_use": "G1"},
            "geometry": {"type": "Polygon", "coordinates": [[[117.5, 39.1], [117.6, 39.1], [117.6, 39.2], [117.5, 39.1]]]},
        }))  # fmt: skip
        assert created >= FIRST_CREATED_FID

        store.publish(city("survey", ["p0", "p3", "p2", "p1"], 117.0))  # p1 is fid 4 now, p2 fid 3
        seen = features(store)
        assert seen == {1: ("p0", "R2"), 2: ("p3", "R2"), 4: ("p1", "M1"), created: (None, "G1")}
        assert store.edit_conflicts() == []
        # later edits of the renumbered feature land on it
        update(store, 4, "B1")
        assert features(store)[4] == ("p1", "B1")


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_rollback_brings_edits_back_onto_the_old_features(store_url: str) -> None:
    with open_store(store_url) as store:
        store.publish(city("city-a", ["a1", "a2", "a3"], 117.0))
        update(store, 1, "M1")
        store.edit(Edit("parcels", "delete", "planner", 2))
        store.publish(city("city-b", ["b1", "b2"], 121.0))
        update(store, 2, "G1")  # b2, an edit of the new city
        assert features(store) == {1: ("b1", "R2"), 2: ("b2", "G1")}

        store.set_current(1)
        assert features(store) == {1: ("a1", "M1"), 3: ("a3", "R2")}
        assert [(c.source_id, c.action) for c in store.edit_conflicts()] == [("b2", "edit")]

        store.set_current(2)
        assert features(store) == {1: ("b1", "R2"), 2: ("b2", "G1")}
        assert sorted(c.source_id for c in store.edit_conflicts()) == ["a1", "a2"]


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_an_edit_cannot_change_the_identity_it_is_followed_by(store_url: str) -> None:
    with open_store(store_url) as store:
        store.publish(city("survey", ["p1"], 117.0))
        with pytest.raises(InvalidFeature, match="source_id"):
            store.edit(Edit("parcels", "update", "planner", 1, {"properties": {"source_id": "p9"}}))
        # a replace that leaves them out keeps them
        store.edit(Edit("parcels", "replace", "planner", 1, {
            "type": "Feature", "properties": {"parcel_id": "x", "land_use": "B1"},
            "geometry": {"type": "Polygon", "coordinates": [[[117.0, 39.1], [117.01, 39.1], [117.01, 39.11], [117.0, 39.1]]]},
        }))  # fmt: skip
        assert store.get_feature("parcels", 1)["properties"]["source_id"] == "p1"


@pytest.mark.slow  # a build of the Tianjin city (~8 s)
def test_the_build_report_records_the_conflicts(store_url: str, tmp_path) -> None:
    from cim.build import build, load_config
    from support.tianjin import write_city

    config = load_config(write_city(tmp_path / "tianjin"))
    with open_store(store_url) as store:
        store.publish(city("city-b", ["b1", "b2"], 121.0))
        update(store, 1, "M1")
        result = build(config, store, report_dir=tmp_path / "qa")
        records = [r for r in result.report.records if r.rule == "edits.conflict"]
        assert [(r.layer, r.source, r.feature) for r in records] == [("parcels", "city-b", "b1")]
        assert "no feature with source 'city-b' and source_id 'b1'" in records[0].reason
    assert "edits.conflict" in (tmp_path / "qa" / "qa.json").read_text()


def test_an_edit_outlasts_release_switches_that_come_between(new_postgis_db, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostGIS: an edit that finds its release switched (and the overlay re-based) under it reads the
    current release again and retries, up to EDIT_ATTEMPTS times; after that the switch's error (503)."""
    from cim.store.postgis import store as postgis_store
    from cim.store.postgis.live import ReleaseChanged

    real = postgis_store.apply_edit
    switches = {"left": postgis_store.EDIT_ATTEMPTS - 1}

    def switched(*args, **kwargs):
        if switches["left"] > 0:
            switches["left"] -= 1
            raise ReleaseChanged("release 2 became current during the edit; try again")
        return real(*args, **kwargs)

    monkeypatch.setattr(postgis_store, "apply_edit", switched)
    with open_store(new_postgis_db()) as store:
        store.publish(city("city-a", ["a1", "a2"], 117.0))
        update(store, 1, "M1")
        assert switches["left"] == 0 and features(store)[1] == ("a1", "M1")
        switches["left"] = postgis_store.EDIT_ATTEMPTS
        with pytest.raises(ReleaseChanged):
            update(store, 2, "M1")
        assert features(store)[2] == ("a2", "R2")
