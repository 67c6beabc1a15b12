"""Incremental builds (cim/build/carry.py): a layer whose sources and config are unchanged is carried
over from the current release — not read, not loaded again — on both stores; ``--full`` rebuilds it;
pruning the release that holds a carried layer keeps it readable and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
import shapely
from click.testing import CliRunner
from fastapi.testclient import TestClient
from support.corpus_builds import leftovers
from support.rasters import write_dem
from support.tianjin import BUILDINGS, write_city
from support.tiles import counts, decode, tile_at, tile_path

import cim.build.pipeline as pipeline
from cim.build import build, load_config
from cim.cli import cli
from cim.sharing.lineage import lineage as sharing_lineage
from cim.store import _shared, open_store
from ogcapi.app import create_app

LAYERS = ("buildings", "pois", "admin_divisions", "dem")
TILE = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 14, *BUILDINGS["TJ-B002"].centroid.coords[0]))


def write_inputs(root: Path) -> Path:
    """The Tianjin sources of buildings and POIs, two districts and the DEM; the config building them."""
    write_city(root)
    districts = gpd.GeoDataFrame(
        {"code": ["120101", "120102"], "name": ["和平区", "河东区"], "level": ["district", "district"]},
        geometry=[shapely.box(117.17, 39.12, 117.18, 39.16), shapely.box(117.18, 39.12, 117.20, 39.16)],
        crs="EPSG:4490",
    )
    districts.to_file(root / "data" / "districts.geojson", driver="GeoJSON")
    write_dem(root / "data" / "dem.tif")
    example = (root / "tianjin.yml").read_text(encoding="utf-8")
    head, layers = example.split("layers:\n")
    buildings = layers[layers.index("  buildings:") : layers.index("  parcels:")]
    pois = layers[layers.index("  pois:") : layers.index("  water:")]
    extra = (
        "  admin_divisions:\n    sources:\n      - path: data/districts.geojson\n        id: code\n\n"
        "  dem:\n    sources:\n      - path: data/dem.tif\n"
    )
    config = root / "city.yml"
    config.write_text(head.replace("keep: 5", "") + "layers:\n" + buildings + pois + extra, encoding="utf-8")
    return config


def add_poi(root: Path, name: str) -> None:
    path = root / "data" / "pois_amap.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    row = {**frame.iloc[0].to_dict(), "id": f"POI-{len(frame) + 1}", "名称": name}
    row["lng"] = str(float(row["lng"]) + 0.0003 * len(frame))  # a place of its own (not a duplicate)
    pd.concat([frame, pd.DataFrame([row])]).to_csv(path, index=False, encoding="utf-8")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The layers whose sources the build reads, in order."""
    seen: list[str] = []
    real = pipeline.read_source

    def recording(source, layer, allow_empty=False):  # type: ignore[no-untyped-def]
        seen.append(layer)
        return real(source, layer, allow_empty=allow_empty)

    monkeypatch.setattr(pipeline, "read_source", recording)
    return seen


def run_build(config: Path, store_url: str, **options):  # type: ignore[no-untyped-def]
    with open_store(store_url) as store:
        return build(load_config(config), store, **options)


def frames_equal(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    assert list(a.index) == list(b.index)
    assert shapely.to_wkb(a.geometry.to_numpy()).tolist() == shapely.to_wkb(b.geometry.to_numpy()).tolist()
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"), check_dtype=False)


def carried(release) -> dict[str, int | None]:  # type: ignore[no-untyped-def]
    return {name: entry["carried_from"] for name, entry in release.config["cim_build"]["layers"].items()}


def dem_path(store, number: int) -> str:  # type: ignore[no-untyped-def]
    return next(i.raster_path for i in store.release_layers(number) if i.name == "dem")


def served(store_url: str) -> None:
    """Items of every vector layer and a tile with the buildings in it, from the current release."""
    try:
        with TestClient(create_app(store_url, server_url="http://testserver")) as client:
            for name in ("buildings", "pois", "admin_divisions"):
                response = client.get(f"/collections/{name}/items", params={"f": "json"})
                assert response.status_code == 200, (name, response.text)
                assert response.json()["features"], name
            response = client.get(TILE)
            assert response.status_code == 200, response.text
            assert counts(decode(response.content)).get("buildings", 0) >= 1
    finally:
        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()


def test_only_the_changed_layer_is_read_and_the_rest_is_carried(store_url: str, tmp_path: Path, reads: list[str]) -> None:
    config = write_inputs(tmp_path)
    first = run_build(config, store_url)
    assert reads == ["buildings", "buildings", "pois", "admin_divisions"]  # (the raster has its own reader)
    assert all(entry is None for entry in carried(first.release).values())
    add_poi(tmp_path, "新的咖啡馆")
    reads.clear()
    second = run_build(config, store_url, report_dir=tmp_path / "qa")
    assert reads == ["pois"]
    with open_store(store_url) as store:
        releases = store.releases()
        assert [r.number for r in releases] == [1, 2] and releases[1].current
        assert set(releases[1].layers) == set(LAYERS)
        assert carried(releases[1]) == {"buildings": 1, "pois": None, "admin_divisions": 1, "dem": 1}
        for name in ("buildings", "admin_divisions"):
            frames_equal(store.read_frame(name, release=1), store.read_frame(name, release=2))
            frames_equal(store.read_frame(name, release=2), store.read_frame(name))
        assert len(store.read_frame("pois")) == len(store.read_frame("pois", release=1)) + 1
        before = {i.name: i for i in store.release_layers(1)}
        after = {i.name: i for i in store.release_layers(2)}
        assert after["buildings"].count == before["buildings"].count and after["buildings"].bbox == before["buildings"].bbox
        dem1, dem2 = Path(before["dem"].raster_path), Path(after["dem"].raster_path)  # type: ignore[arg-type]
        assert dem1 != dem2 and dem1.read_bytes() == dem2.read_bytes()
        assert os.stat(dem1).st_ino == os.stat(dem2).st_ino  # a hard link, not a copy
        # totals per division: copied with the divisions for the buildings, made anew for the POIs
        for release in (1, 2):
            assert store.division_totals("buildings", "district", release=release, measure="area")
        assert store.division_totals("buildings", "district", release=2) == store.division_totals("buildings", "district", release=1)
        pois1 = sum(t.count for t in store.division_totals("pois", "district", release=1))
        assert sum(t.count for t in store.division_totals("pois", "district", release=2)) == pois1 + 1
        qa = releases[1].qa
        assert qa["carried"] == {"buildings": 1, "admin_divisions": 1, "dem": 1}
        assert qa["features"]["buildings"] == before["buildings"].count
        assert qa["by_source"]["buildings/data/buildings_survey.shp"]["carried_from"] == 1
        assert qa["by_source"]["buildings/data/buildings_survey.shp"]["read"] == releases[0].qa["by_source"]["buildings/data/buildings_survey.shp"]["read"]
        assert [c for c in qa["crosschecks"] if c["layer"] == "buildings"] == releases[0].qa["crosschecks"]
        assert "dem" in qa["rasters"]
        assert qa["by_rule"]["build.carried"] == {"flagged": 3}
        assert qa["by_layer"]["buildings"] == {**releases[0].qa["by_layer"]["buildings"], "build.carried": {"flagged": 1}}
        lineage = sharing_lineage(releases[1], "buildings", {r.number: r for r in releases})
        assert lineage["builtInRelease"] == 1 and lineage["carriedFrom"] == 1
        assert releases[1].checksums == {**releases[0].checksums, "data/pois_amap.csv": releases[1].checksums["data/pois_amap.csv"]}
    assert "carried over from release 1" in (tmp_path / "qa" / "qa.md").read_text(encoding="utf-8")
    assert any(r.rule == "build.carried" and r.layer == "buildings" for r in second.report.records)
    served(store_url)


def test_a_changed_config_section_or_source_rebuilds_the_layer_and_full_rebuilds_all(
    store_url: str, tmp_path: Path, reads: list[str]
) -> None:
    config = write_inputs(tmp_path)
    run_build(config, store_url)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("fields: {name: NAME, use: USE,", "fields: {name: BLDG_ID, use: USE,"), encoding="utf-8")
    reads.clear()
    second = run_build(config, store_url)
    assert "buildings" in reads and "pois" not in reads
    assert carried(second.release)["buildings"] is None and carried(second.release)["pois"] == 1
    with open_store(store_url) as store:
        assert set(store.read_frame("buildings")["name"]) <= set(BUILDINGS)
    # the source's bytes
    districts = tmp_path / "data" / "districts.geojson"
    districts.write_text(districts.read_text(encoding="utf-8").replace("河东区", "河东"), encoding="utf-8")
    reads.clear()
    third = run_build(config, store_url)
    assert reads == ["admin_divisions"]
    assert carried(third.release) == {"buildings": 2, "pois": 1, "admin_divisions": None, "dem": 1}
    with open_store(store_url) as store:  # the divisions changed: the buildings' totals are made anew
        assert store.division_totals("buildings", "district", release=3) == store.division_totals("buildings", "district", release=2)
    # --full
    reads.clear()
    result = CliRunner().invoke(cli, ["build", str(config), "--store", store_url, "--full"])
    assert result.exit_code == 0, result.output
    assert sorted(reads) == sorted(["buildings", "buildings", "pois", "admin_divisions"])
    with open_store(store_url) as store:
        fourth = store.current_release()
        assert fourth is not None and fourth.number == 4
        assert set(carried(fourth).values()) == {None} and fourth.config["cim_build"]["full"] is True
        assert "carried" not in fourth.qa or fourth.qa["carried"] == {}
    reads.clear()
    result = CliRunner().invoke(cli, ["build", str(config), "--store", store_url])
    assert result.exit_code == 0, result.output
    assert reads == []


def test_a_source_file_seen_before_is_not_hashed_again_but_one_written_again_is(
    store_url: str, tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release records each source file (path, size, inode, mtime, ctime, sha256): a file that
    still matches is not read even for its hash; a file written again — same size, its old
    modification time put back — has a new ctime, so it is hashed, and its new bytes rebuild the layer."""
    import cim.build.carry as carry

    config = write_inputs(tmp_path)
    first = run_build(config, store_url)
    assert set(first.release.config["cim_build"]["files"]) == set(first.release.checksums)
    hashed: list[str] = []
    real = carry.sha256

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(carry, "sha256", counting)
    reads.clear()
    second = run_build(config, store_url)
    assert reads == [] and hashed == []
    assert carried(second.release) == {"buildings": 1, "pois": 1, "admin_divisions": 1, "dem": 1}
    assert second.release.checksums == first.release.checksums
    districts = tmp_path / "data" / "districts.geojson"
    before = districts.stat()
    text = districts.read_text(encoding="utf-8")
    districts.write_text(text.replace("河东区", "河西区"), encoding="utf-8")  # the same number of bytes
    os.utime(districts, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert districts.stat().st_size == before.st_size and districts.stat().st_mtime_ns == before.st_mtime_ns
    third = run_build(config, store_url)
    assert reads == ["admin_divisions"] and "districts.geojson" in hashed
    assert carried(third.release)["admin_divisions"] is None
    with open_store(store_url) as store:
        assert set(store.read_frame("admin_divisions")["name"]) == {"和平区", "河西区"}


def test_pruning_the_holding_release_keeps_carried_layers_and_leaves_nothing(
    store_url: str, tmp_path: Path, reads: list[str]
) -> None:
    config = write_inputs(tmp_path)
    run_build(config, store_url)
    with open_store(store_url) as store:
        buildings = store.read_frame("buildings")
    for n in range(2):
        add_poi(tmp_path, f"POI {n}")
        run_build(config, store_url)
    with open_store(store_url) as store:  # a chain: release 3 carries from where release 2 took it
        assert carried(store.releases()[2])["buildings"] == 1
    add_poi(tmp_path, "POI 3")
    run_build(config, store_url, keep=2)  # release 1, which holds the buildings, is pruned
    with open_store(store_url) as store:
        assert [r.number for r in store.releases()] == [3, 4]
        assert carried(store.releases()[1])["buildings"] == 1
        for release in (3, 4):
            frames_equal(store.read_frame("buildings", release=release), buildings)
        assert store.set_current(3).current
        frames_equal(store.read_frame("buildings"), buildings)
    served(store_url)
    with open_store(store_url) as store:
        assert store.set_current(4).current
        cogs = [Path(dem_path(store, n)) for n in (3, 4)]
    reads.clear()
    add_poi(tmp_path, "POI 4")
    fifth = run_build(config, store_url, keep=1)
    assert reads == ["pois"]
    assert carried(fifth.release)["buildings"] == 4  # release 1 is gone: carried from the base release
    with open_store(store_url) as store:
        assert [r.number for r in store.releases()] == [5]
        frames_equal(store.read_frame("buildings"), buildings)
        dem = Path(dem_path(store, 5))
    served(store_url)
    assert leftovers(store_url) == []
    if store_url.startswith("postgresql"):
        with psycopg.connect(store_url) as conn:
            schemas = [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cim_r%' ORDER BY 1")]
            assert schemas == ["cim_r0005"]
            kinds = dict(conn.execute(
                "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'cim_r0005' AND c.relname IN ('buildings', 'pois')"
            ).fetchall())  # fmt: skip
            assert kinds == {"buildings": "r", "pois": "r"}  # the table moved in as its holder went
        assert dem.is_file() and not any(cog.exists() for cog in cogs)
    else:
        files = sorted(p.name for p in (tmp_path / "city.duckdb.d" / "releases").iterdir())
        assert files == ["r0005.dem.tif", "r0005.duckdb", "r0005.json"]


@pytest.mark.postgis
def test_a_carried_layer_is_a_view_whose_reads_use_the_holding_tables_indexes(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store_url = request.getfixturevalue("new_postgis_db")()
    config = write_inputs(tmp_path)
    run_build(config, store_url)
    add_poi(tmp_path, "新的")
    run_build(config, store_url)
    with psycopg.connect(store_url) as conn:
        kind = conn.execute("SELECT relkind::text FROM pg_class WHERE oid = to_regclass('cim_r0002.buildings')").fetchone()
        assert kind == ("v",)
        conn.execute("SET enable_seqscan = off")  # a handful of rows: the point is that the index can serve the view
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT fid FROM cim_r0002.buildings WHERE geom && ST_MakeEnvelope(117.17, 39.14, 117.18, 39.15, 4490)"
        ))  # fmt: skip
        assert "cim_r0001" not in plan or "Index" in plan
        assert "Index" in plan and "buildings_geom_idx" in plan
        zooms = conn.execute("SELECT count(*) FROM cim.tile_geometry WHERE release = 2 AND layer = 'buildings'").fetchone()
        assert zooms is not None and zooms[0] > 0
