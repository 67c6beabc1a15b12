"""The change feed in the core (cim/sharing/changes.py, Store.change_list), on both stores: a
department holding release N reaches release M — and the current release with its API edits — by
applying the feed page after page; cursors, and bad input."""

from __future__ import annotations

import base64
import json

import pytest

import cim
from cim.errors import BadInput, LayerNotFound, NotFound, ReleaseGone
from cim.sharing.changes import CACHE, changes, iter_changes
from cim.store import Edit, ReleaseDraft, open_store
from support.change_feeds import apply_feature, assert_same_copy, copy_of, publish_three_releases, release_three
from support.planning_city import geojson_box
from support.postgis import BACKENDS, backend_store


@pytest.fixture(scope="module", params=BACKENDS)
def three_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The planned city with releases 1, 2 and 3 (support/change_feeds.py), only read."""
    with backend_store(request, "changes", tmp_path_factory.mktemp("changes")) as url:
        publish_three_releases(url)
        yield url


@pytest.fixture
def three(three_url: str):
    with open_store(three_url) as store:
        yield store


@pytest.fixture
def fresh_three(store_url: str):
    """Releases 1..3 for tests that edit or prune."""
    publish_three_releases(store_url)
    with open_store(store_url) as store:
        yield store


def _all_pages(store, layer: str, from_release: int, to_release: int | None, limit: int) -> list[dict]:
    features, cursor, to = [], None, to_release
    while True:
        page = changes(store, layer, from_release, to, limit=limit, cursor=cursor)
        features.extend(page.features)
        to = page.to_release
        cursor = page.next_cursor
        assert page.number_matched >= len(page.features)
        if cursor is None:
            return features
        assert len(page.features) == limit


@pytest.mark.parametrize("from_release,to_release", [(1, 3), (2, 3), (1, 2)])
@pytest.mark.parametrize("layer", ["buildings", "parcels"])
def test_department_reaches_release_m_by_applying_the_feed(three, layer, from_release, to_release) -> None:
    copy = copy_of(three.read_frame(layer, release=from_release))
    for feature in _all_pages(three, layer, from_release, to_release, limit=2):
        apply_feature(copy, feature)
    assert_same_copy(copy, copy_of(three.read_frame(layer, release=to_release)))


def test_what_the_feed_says_changed(three) -> None:
    feed = {f["properties"]["source_id"]: f for f in _all_pages(three, "buildings", 2, 3, limit=100)}
    assert {k: f["change"]["type"] for k, f in feed.items()} == {
        "B1": "changed", "B4": "changed", "B5": "removed", "B6": "removed", "B9": "added", "B10": "added", "B11": "added",
    }  # fmt: skip
    assert feed["B1"]["change"]["fields"] == ["geometry"]
    assert sorted(feed["B4"]["change"]["fields"]) == ["address", "height_m"]
    assert feed["B4"]["properties"]["address"] == "B4 新地址"
    # ids: in the later release, in the earlier one for removed features
    release3 = three.read_frame("buildings", release=3)
    release2 = three.read_frame("buildings", release=2)
    assert feed["B9"]["id"] == feed["B9"]["change"]["to"] == int(release3.index[release3["name"] == "B9"][0])
    assert feed["B9"]["change"]["from"] is None
    assert feed["B5"]["id"] == feed["B5"]["change"]["from"] == int(release2.index[release2["name"] == "B5"][0])
    assert feed["B5"]["change"]["to"] is None and feed["B5"]["properties"]["height_m"] == 59.0
    # default CRS of the core: the storage CRS (EPSG:4326 here, lon/lat)
    lon = feed["B9"]["geometry"]["coordinates"][0][0][0][0]
    assert 116 < lon < 118


def test_from_equal_to_is_empty_and_to_defaults_to_the_current_release(three) -> None:
    page = changes(three, "buildings", 2, 2)
    assert page.features == [] and page.number_matched == 0 and page.next_cursor is None
    page = changes(three, "buildings", 2)
    assert page.to_release == 3 and page.with_edits and page.number_matched == 7
    assert changes(three, "buildings", 3).number_matched == 0  # no edits over release 3


def test_cursors_reassemble_the_feed(three) -> None:
    whole = changes(three, "buildings", 1, 3, limit=1000).features
    for limit in (1, 2, 3, 5):
        CACHE.clear()  # a page asked for after the list was made again starts at the same place
        paged = _all_pages(three, "buildings", 1, 3, limit)
        assert [f["change"] for f in paged] == [f["change"] for f in whole]
    ids = [(f["change"]["from"], f["change"]["to"]) for f in whole]
    assert len(ids) == len(set(ids)) == 10  # B1, B2, B4 changed; B3, B5, B6 removed; B8..B11 added


def test_bad_and_foreign_cursors(three) -> None:
    page = changes(three, "buildings", 1, 3, limit=2)
    with pytest.raises(BadInput, match="another change feed"):
        changes(three, "buildings", 2, 3, limit=2, cursor=page.next_cursor)
    with pytest.raises(BadInput, match="another change feed"):
        changes(three, "parcels", 1, 3, limit=2, cursor=page.next_cursor)
    forged = base64.urlsafe_b64encode(json.dumps([1, "buildings", 1, 3, "x", 5, None, None]).encode()).decode().rstrip("=")
    for bad in ("", "!!", "a" * 5000, "bm90IGpzb24", forged, base64.urlsafe_b64encode(b"[1]").decode().rstrip("=")):
        with pytest.raises(BadInput, match="cursor"):
            changes(three, "buildings", 1, 3, cursor=bad)


def test_bad_input(three) -> None:
    with pytest.raises(BadInput, match="forward"):
        changes(three, "buildings", 3, 2)
    for bad in (-1, 0, 10**12, "2", 2.0, True):
        with pytest.raises(BadInput, match="release number"):
            changes(three, "buildings", bad, 3)
    with pytest.raises(BadInput, match="limit"):
        changes(three, "buildings", 1, 3, limit=0)
    with pytest.raises(NotFound, match=r"no release 7 \(releases kept: 1, 2, 3\)"):
        changes(three, "buildings", 1, 7)
    with pytest.raises(LayerNotFound, match="trees"):
        changes(three, "trees", 1, 3)


def test_pruned_release_is_gone_naming_those_kept(fresh_three) -> None:
    assert changes(fresh_three, "buildings", 1, 3).number_matched == 10  # its list now in the cache
    fresh_three.publish(ReleaseDraft(layers=release_three(), srid=4326), keep=2)  # release 4; 1 and 2 pruned
    with pytest.raises(ReleaseGone, match=r"releases kept: 3, 4"):
        changes(fresh_three, "buildings", 1, 3)
    with pytest.raises(ReleaseGone, match=r"release 1 .*pruned \(releases kept: 3, 4\)"):
        changes(fresh_three, "buildings", 1, 4)
    assert changes(fresh_three, "buildings", 3, 4).number_matched == 0


def test_feed_to_the_current_release_includes_api_edits(fresh_three) -> None:
    store = fresh_three
    fid_p1 = int(store.find_features("parcels", [("source_id", "P1")]).index[0])
    fid_p4 = int(store.find_features("parcels", [("source_id", "P4")]).index[0])
    copy = copy_of(store.read_frame("parcels", release=1))
    before = changes(store, "parcels", 1).number_matched
    store.edit(Edit("parcels", "update", "planner", fid_p1, {"properties": {"land_use": "G1"}}))
    store.edit(Edit("parcels", "delete", "planner", fid_p4, None))
    created = store.edit(Edit("parcels", "create", "planner", None, {
        "type": "Feature", "geometry": geojson_box(100, 100, 150, 150),
        "properties": {"parcel_id": "P9", "land_use": "R2", "area_m2": 2500.0, "source_id": "api-9"},
    }))  # fmt: skip
    page = changes(store, "parcels", 1)
    assert page.with_edits and page.number_matched == before + 3
    for feature in iter_changes(store, "parcels", 1, page_size=2):
        apply_feature(copy, feature)
    assert_same_copy(copy, copy_of(store.read_frame("parcels")))  # the current release as served
    feed = {f["properties"]["source_id"]: f for f in changes(store, "parcels", 3).features}
    assert {k: f["change"]["type"] for k, f in feed.items()} == {"P1": "changed", "P4": "removed", "api-9": "added"}
    assert feed["api-9"]["id"] == created and feed["P1"]["change"]["fields"][0] == "land_use"
    # a PATCH of properties only re-writes the geometry read back as GeoJSON (cim/store/edits.py), which
    # PostGIS writes with 9 decimals: the stored WKB then differs, and the feed says so
    assert feed["P1"]["change"]["fields"] in (["land_use"], ["land_use", "geometry"])
    # the feed to release 3 by number when it is current is the same; to a past release: no edits
    assert changes(store, "parcels", 3, 3).number_matched == 3
    assert changes(store, "parcels", 2, 2).number_matched == 0


def test_city_changes(three_url: str) -> None:
    with cim.open(three_url) as city:
        frame = city.changes("buildings", 2, 3, crs="EPSG:4548")
    assert sorted(frame["change"]) == ["added"] * 3 + ["changed"] * 2 + ["removed"] * 2
    assert frame.crs.to_epsg() == 4548 and 499_000 < frame.geometry.iloc[0].centroid.x < 503_000
    assert frame.set_index("source_id").loc["B1", "changed_fields"] == ["geometry"]


def test_raster_and_live_layers_have_no_feed(demo_store_url: str) -> None:
    with open_store(demo_store_url) as store:
        rasters = [i.name for i in store.layers() if i.spec.kind == "raster"]
        live = [i.name for i in store.layers() if i.spec.live]
        number = store.current_number()
        for name in rasters + live:
            with pytest.raises(BadInput, match="raster|live"):
                changes(store, name, number)
    assert rasters or live
