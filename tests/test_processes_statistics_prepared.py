"""Totals per division prepared at publish (cim/store/sql/division_totals.py, table cim_division_totals
of each release) on the planned city (tests/support/planning_city.py), both stores: they equal the live
totals for every layer, level and release; an edit of a layer (or of the divisions) in the overlay makes
that layer totalled live again — with the edit counted — while a release asked for by number, read as
published, keeps its prepared totals. Hand-checked: P1..P4 are 160 000 m² each, two per district."""

from __future__ import annotations

from typing import Any

import pytest

from cim.analysis.statistics import district_statistics, metric_srid
from cim.store import Store, open_store
from cim.store.edits import Edit
from cim.store.sql.division_totals import (
    DIVISIONS, division_totals_statement, prepared_statement, release_metric_srid, totalled_layers, what_to_total,
)  # fmt: skip
from support.planning_city import PARCEL_AREA_M2, publish_planning_city
from support.postgis import BACKENDS, backend_store


@pytest.fixture(scope="module", params=BACKENDS)
def city_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with backend_store(request, "prepared", tmp_path_factory.mktemp("prepared")) as url:
        publish_planning_city(url, releases=2)
        yield url


def _infos(store: Store, release: int | None) -> list[Any]:
    return store.layers() if release is None else store.release_layers(release)


def prepared_and_live(store: Store, layer: str, level: str, release: int | None) -> tuple[list[tuple], list[tuple]]:
    """The prepared rows (marker first, when it answers) and the live rows of one question."""
    infos = {i.name: i for i in _infos(store, release)}
    info, divisions = infos[layer], infos[DIVISIONS]
    group_by, measure = what_to_total(info)
    srid = metric_srid(store, release)
    prepared = store._prepared_totals(  # type: ignore[attr-defined]
        release, lambda d: prepared_statement(d, info, divisions, level, None, group_by, measure, srid)
    )
    live = store._release_rows(  # type: ignore[attr-defined]
        (release,), lambda d: division_totals_statement(info, divisions, d[0], level, None, group_by, measure, srid)
    )
    return [tuple(r) for r in prepared], [tuple(r) for r in live]


def same(prepared: list[tuple], live: list[tuple]) -> bool:
    return [(r[0], r[1], int(r[2])) for r in prepared] == [(r[0], r[1], int(r[2])) for r in live] and all(
        (a[3] is None and b[3] is None) or a[3] == pytest.approx(b[3], rel=1e-9) for a, b in zip(prepared, live)
    )


@pytest.mark.parametrize("release", [1, 2, None])
def test_prepared_totals_equal_the_live_totals(city_url: str, release: int | None) -> None:
    with open_store(city_url) as store:
        infos = _infos(store, release)
        assert release_metric_srid(infos) == metric_srid(store, release) == 4548  # GK CM 117E, as prepared
        layers = [i.name for i in totalled_layers(infos)]
        assert layers == ["landuse", "parcels", "roads", "buildings", "pois"]
        for layer in layers:
            for level in ("city", "district", "street"):
                prepared, live = prepared_and_live(store, layer, level, release)
                assert prepared[:1] == [(None, None, 0, None)], (layer, level)  # the marker: prepared at publish
                assert same(prepared[1:], live), (layer, level, prepared, live)
        prepared, _ = prepared_and_live(store, "buildings", "district", release)
        # 120101: B1 B2 B3 B7 (release 1) or B1 B2 B7 B8 (release 2), 3 100 m² either way; 120102: B4 B5 B6
        assert [(r[0], r[2], round(r[3], 1)) for r in prepared[1:]] == [("120101", 4, 3100.0), ("120102", 3, 60100.0)]
        prepared, _ = prepared_and_live(store, "roads", "district", release)
        assert [(r[0], r[1], r[2], round(r[3], 3)) for r in prepared[1:]] == [
            ("120101", "primary", 1, 1000.0), ("120101", "residential", 1, 300.0), ("120102", "primary", 1, 1000.0),
        ]  # fmt: skip
        prepared, _ = prepared_and_live(store, "pois", "city", release)
        assert [(r[0], r[1], r[2], r[3]) for r in prepared[1:]] == [("120100", "amenity", 3, None), ("120100", "shop", 1, None)]


def test_a_question_not_prepared_is_totalled_live(city_url: str) -> None:
    with open_store(city_url) as store:
        infos = {i.name: i for i in store.layers()}
        info, divisions = infos["buildings"], infos[DIVISIONS]
        other_crs = store._prepared_totals(  # type: ignore[attr-defined]
            None, lambda d: prepared_statement(d, info, divisions, "district", None, None, "area", 32650)
        )
        grouped = store._prepared_totals(  # type: ignore[attr-defined]
            None, lambda d: prepared_statement(d, info, divisions, "district", None, "use", "area", 4548)
        )
        assert other_crs == [] and grouped == []  # no marker: not prepared so
        totals = store.division_totals("buildings", "district", None, "use", "area", 4548)
        assert [(t.code, t.group, t.count) for t in totals] == [
            ("120101", "residential", 4), ("120102", "office", 1), ("120102", "residential", 1), ("120102", "retail", 1),
        ]  # fmt: skip


@pytest.fixture(params=BACKENDS)
def edited_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with backend_store(request, "prepared_edit", tmp_path_factory.mktemp("prepared_edit")) as url:
        publish_planning_city(url, releases=1)
        yield url


def test_an_edit_makes_the_layer_totalled_live(edited_url: str) -> None:
    with open_store(edited_url) as store:
        assert prepared_and_live(store, "parcels", "district", None)[0][:1] == [(None, None, 0, None)]
        p1 = int(store.find_features("parcels", [("parcel_id", "P1")]).index[0])
        store.edit(Edit("parcels", "delete", "planner", p1))

        prepared, live = prepared_and_live(store, "parcels", "district", None)
        assert prepared[:1] != [(None, None, 0, None)]  # stale: no marker, so not used
        assert [(r[0], r[2], round(r[3], 1)) for r in live] == [("120101", 1, PARCEL_AREA_M2), ("120102", 2, 2 * PARCEL_AREA_M2)]
        stats = district_statistics(store)
        parcels = {d["code"]: d["layers"]["parcels"] for d in stats["divisions"]}
        assert parcels["120101"] == {"count": 1, "area_m2": pytest.approx(PARCEL_AREA_M2, rel=1e-6)}
        assert parcels["120102"] == {"count": 2, "area_m2": pytest.approx(2 * PARCEL_AREA_M2, rel=1e-6)}
        # the other layers still read their prepared totals
        assert prepared_and_live(store, "buildings", "district", None)[0][:1] == [(None, None, 0, None)]
        assert prepared_and_live(store, "landuse", "district", None)[0][:1] == [(None, None, 0, None)]
        # release 1 as published: prepared, P1 counted
        prepared, _ = prepared_and_live(store, "parcels", "district", 1)
        assert prepared[0] == (None, None, 0, None) and [(r[0], r[2]) for r in prepared[1:]] == [("120101", 2), ("120102", 2)]
        assert district_statistics(store, release=1)["divisions"][0]["layers"]["parcels"]["count"] == 2


def test_postgis_indexes_the_identity_of_every_layer(city_url: str) -> None:
    """building_history looks a feature up by source_id in every release: PostGIS indexes (source_id,
    source) at publish. (DuckDB scans 1,000,000 buildings in ~15 ms a release: it has no such index.)"""
    if not city_url.startswith("postgresql"):
        pytest.skip("the embedded store scans; the index is PostGIS's")
    import psycopg

    with psycopg.connect(city_url) as conn:
        rows = conn.execute(
            "SELECT schemaname, tablename FROM pg_indexes WHERE schemaname LIKE 'cim_r%%'"
            " AND indexdef LIKE %s ORDER BY 1, 2", ("%(source_id, source)%",)
        ).fetchall()
    layers = ["admin_divisions", "buildings", "landuse", "parcels", "pois", "roads"]
    assert rows == [(schema, layer) for schema in ("cim_r0001", "cim_r0002") for layer in layers]
