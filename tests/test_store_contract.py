"""The store contract, run against both backends: round-trips, queries, releases, failures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from cim.layerspec import FieldSpec, LayerSpec
from cim.errors import FeatureNotFound, InvalidQuery, LayerNotFound, NoRelease, StoreError
from cim.store import FeatureQuery, LayerData, ReleaseDraft, open_store
from support.citydata import building_frame, pois_frame
from layers.catalog import CATALOG

BUILDINGS = CATALOG["buildings"]
POIS = CATALOG["pois"]

@pytest.mark.parametrize("srid", [4326, 4490])
@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_geometry_and_attributes_round_trip(store_url: str, srid: int) -> None:
    frame = building_frame(srid)
    with open_store(store_url) as store:
        release = store.publish(ReleaseDraft([LayerData(BUILDINGS, frame)], srid=srid))
        assert release.number == 1 and release.current
        back = store.read_frame("buildings")
    assert back.crs.to_epsg() == srid
    assert list(back.index) == [1, 2, 3]
    for original, stored in zip(frame.geometry, back.geometry):
        assert shapely.equals_exact(original, stored, tolerance=1e-12)
    assert back.loc[1, "name"] == "鼓楼"
    assert back.loc[3, "height_m"] == 99.5
    assert pd.isna(back.loc[2, "height_m"]) and pd.isna(back.loc[2, "floors"])
    assert int(back.loc[3, "floors"]) == 30


ALL_TYPES = LayerSpec(
    name="permits",
    title="Permits",
    description="every field type",
    geometry_type="Point",
    fields=(
        FieldSpec("code", "string"),
        FieldSpec("floors", "integer"),
        FieldSpec("area_m2", "number"),
        FieldSpec("approved", "boolean"),
        FieldSpec("issued_on", "date"),
        FieldSpec("issued_at", "datetime"),
    ),
)


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_every_field_type_and_missing_values_round_trip(store_url: str) -> None:
    """Strings (non-ASCII too), integers beyond 32 bits, floats, booleans, dates and UTC datetimes,
    each also missing (None, NaN, NaT), come back as they went in (PostGIS loads by binary COPY)."""
    frame = gpd.GeoDataFrame(
        {
            "source": ["permits.csv"] * 3,
            "source_id": ["1", "2", "3"],
            "code": ["天津-1", None, "x"],
            "floors": pd.array([3, None, 2**40], dtype="Int64"),
            "area_m2": [12.5, float("nan"), -0.25],
            "approved": pd.array([True, None, False], dtype="boolean"),
            "issued_on": [date(2024, 2, 29), None, date(1999, 12, 31)],
            "issued_at": pd.to_datetime(["2024-06-01T08:30:00.123456+08:00", None, "1970-01-01T00:00:00Z"], utc=True, format="ISO8601"),
        },
        geometry=[shapely.Point(117.2, 39.1), shapely.Point(117.3, 39.2), shapely.Point(117.4, 39.3)],
        crs="EPSG:4490",
    )
    with open_store(store_url) as store:
        store.publish(ReleaseDraft([LayerData(ALL_TYPES, frame)], srid=4490))
        features = store.query(FeatureQuery("permits", limit=10)).features
    props = [{k: v for k, v in f["properties"].items() if k not in ("source", "source_id")} for f in features]
    assert props[0] == {"code": "天津-1", "floors": 3, "area_m2": 12.5, "approved": True,
                        "issued_on": "2024-02-29", "issued_at": props[0]["issued_at"]}
    assert datetime.fromisoformat(props[0]["issued_at"]) == datetime(2024, 6, 1, 0, 30, 0, 123456, tzinfo=UTC)
    assert all(v is None for v in props[1].values())
    assert props[2]["floors"] == 2**40 and props[2]["area_m2"] == -0.25 and props[2]["approved"] is False
    assert props[2]["issued_on"] == "1999-12-31"
    assert datetime.fromisoformat(props[2]["issued_at"]) == datetime(1970, 1, 1, tzinfo=UTC)
    assert [f["geometry"]["coordinates"] for f in features] == [[117.2, 39.1], [117.3, 39.2], [117.4, 39.3]]


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_layer_info_measures_extent_in_crs84(store_url: str) -> None:
    with open_store(store_url) as store:
        store.publish(ReleaseDraft([LayerData(BUILDINGS, building_frame(4490))], srid=4490))
        info = store.layer("buildings")
    assert info.srid == 4490 and info.count == 3
    minx, miny, maxx, maxy = info.bbox
    assert 117.17 < minx < maxx < 117.19 and 39.14 < miny < maxy < 39.15


@pytest.fixture
def tianjin_store(store_url: str):
    with open_store(store_url) as store:
        store.publish(ReleaseDraft([LayerData(BUILDINGS, building_frame(4490))], srid=4490))
        yield store


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_bbox_filter_and_counts(tianjin_store) -> None:
    page = tianjin_store.query(FeatureQuery("buildings", bbox=(117.17, 39.14, 117.177, 39.145)))
    assert [f["id"] for f in page.features] == [1]
    assert page.number_matched == 1
    everything = tianjin_store.query(FeatureQuery("buildings"))
    assert everything.number_matched == 3 and len(everything.features) == 3


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_equality_filter_sort_and_select(tianjin_store) -> None:
    page = tianjin_store.query(FeatureQuery("buildings", equals=(("use", "office"),)))
    assert [f["id"] for f in page.features] == [3]
    newest_first = tianjin_store.query(FeatureQuery("buildings", sortby=(("year_built", False),)))
    # unknown values last on both backends (their defaults differ)
    assert [f["id"] for f in newest_first.features] == [3, 1, 2]
    slim = tianjin_store.query(FeatureQuery("buildings", properties=("name",), skip_geometry=True))
    assert slim.features[0]["properties"] == {"name": "鼓楼"} and slim.features[0]["geometry"] is None


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_typed_filter_values_are_checked(tianjin_store) -> None:
    assert tianjin_store.query(FeatureQuery("buildings", equals=(("floors", "30"),))).number_matched == 1
    with pytest.raises(InvalidQuery, match="integer"):
        tianjin_store.query(FeatureQuery("buildings", equals=(("floors", "thirty"),)))
    with pytest.raises(InvalidQuery, match="unknown property"):
        tianjin_store.query(FeatureQuery("buildings", equals=(("colour", "red"),)))
    with pytest.raises(InvalidQuery, match="unknown property"):
        tianjin_store.query(FeatureQuery("buildings", sortby=(("colour", True),)))


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_paging_is_stable_and_complete(tianjin_store) -> None:
    ids = []
    for offset in range(0, 3):
        ids += [f["id"] for f in tianjin_store.query(FeatureQuery("buildings", limit=1, offset=offset)).features]
    assert ids == [1, 2, 3]
    assert tianjin_store.query(FeatureQuery("buildings", limit=5, offset=3)).features == []


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_reprojection_and_authority_axis_order(tianjin_store) -> None:
    lonlat = tianjin_store.get_feature("buildings", 1)["geometry"]["coordinates"][0][0][0]
    assert lonlat == pytest.approx([117.1760, 39.1425])  # shapely.box starts at (maxx, miny)
    latlon = tianjin_store.get_feature("buildings", 1, flip_axes=True)["geometry"]["coordinates"][0][0][0]
    assert latlon == [lonlat[1], lonlat[0]]
    # CGCS2000 / 3-degree Gauss-Krüger CM 117E (EPSG:4548): x = easting ~ 515 km, y = northing ~ 4333 km
    gk = tianjin_store.get_feature("buildings", 1, out_srid=4548)["geometry"]["coordinates"][0][0][0]
    expected = Transformer.from_crs(4490, 4548, always_xy=True).transform(*lonlat)
    assert gk == pytest.approx(list(expected), abs=0.01)
    page = tianjin_store.query(FeatureQuery("buildings", out_srid=4527, limit=1))
    x = page.features[0]["geometry"]["coordinates"][0][0][0][0]
    assert 39_500_000 < x < 39_600_000  # zone number 39 in the false easting


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_missing_feature_and_layer(tianjin_store) -> None:
    with pytest.raises(FeatureNotFound):
        tianjin_store.get_feature("buildings", 999)
    with pytest.raises(LayerNotFound):
        tianjin_store.query(FeatureQuery("nope"))


def test_empty_store_has_no_release(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.releases() == []
        with pytest.raises(NoRelease, match="no release"):
            store.layers()


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_releases_switch_rollback_and_prune(store_url: str) -> None:
    full = building_frame(4490)
    with open_store(store_url) as store:
        store.publish(ReleaseDraft([LayerData(BUILDINGS, full)], srid=4490, config={"v": 1}))
        reader = open_store(store_url)  # a second reader, like a running server
        assert reader.layer("buildings").count == 3
        store.publish(ReleaseDraft([LayerData(BUILDINGS, full.iloc[:2])], srid=4490, config={"v": 2}))
        assert [(r.number, r.current) for r in store.releases()] == [(1, False), (2, True)]
        assert store.releases()[1].config == {"v": 2}
        _eventually(lambda: reader.layer("buildings").count == 2)
        store.set_current(1)
        _eventually(lambda: reader.layer("buildings").count == 3)
        assert store.current_release().number == 1
        # pruning to one release never removes the current one
        store.publish(ReleaseDraft([LayerData(BUILDINGS, full.iloc[:1])], srid=4490), keep=1)
        assert [r.number for r in store.releases()] == [3]
        _eventually(lambda: reader.layer("buildings").count == 1)
        with pytest.raises(StoreError, match="no release 1"):
            store.set_current(1)
        reader.close()


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_failed_publish_leaves_current_release_untouched(store_url: str) -> None:
    with open_store(store_url) as store:
        store.publish(ReleaseDraft([LayerData(BUILDINGS, building_frame(4490))], srid=4490))
        broken = building_frame(4490).drop(columns=["height_m"])
        with pytest.raises(StoreError, match="height_m"):
            store.publish(ReleaseDraft([LayerData(POIS, pois_frame()), LayerData(BUILDINGS, broken)], srid=4490))
        assert [(r.number, r.current) for r in store.releases()] == [(1, True)]
        assert [i.name for i in store.layers() if not i.spec.live] == ["buildings"]
        # the next good build still works and gets the next number
        assert store.publish(ReleaseDraft([LayerData(POIS, pois_frame())], srid=4490)).number == 2


def _eventually(check, timeout: float = 3.0) -> None:
    """Readers may cache the current release briefly (PostGIS: 1 s); wait for them to follow."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("reader did not follow the release switch")
        time.sleep(0.1)
