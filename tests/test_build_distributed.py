"""The distributed build (``--workers N`` / ``--dask-scheduler ADDR``): the same layers, feature ids and
QA report as the single-process build, on both stores; the same one-line error for a bad source.

Partitions of one feature (``rows_per_partition=1``) make every source of the small fixture city go
through the cluster and every spatial partition border fall between two of its features.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from distributed import Client, LocalCluster
from test_cli_commands import fails, ok
from support.tianjin import write_city

from cim.build import build, load_config, prepare
from cim.build.config import CrossCheckConfig
from cim.build.crosscheck import Side, match_sources
from cim.build.cluster import connect, open_scale, use_scale
from cim.build.distributed import Scale
from cim.build.partitions import hilbert_order, partition_count, spatial_partitions
from cim.build.progress import Progress
from cim.cli import main
from cim.errors import BuildError
from cim.layerspec import FieldSpec, LayerSpec
from cim.store import open_store

LAYERS = ["buildings", "parcels", "roads", "landuse", "pois", "water"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A LocalCluster of two worker processes for the module (shut down after it)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(scope="module")
def workers() -> Iterator[Scale]:
    """What ``cim build --workers 2`` builds on: a LocalCluster of 2 processes, here for the module."""
    with connect(workers=2, rows_per_partition=1) as scale:
        yield scale


def frames(store_url: str) -> dict[str, gpd.GeoDataFrame]:
    with open_store(store_url) as store:
        return {name: store.read_frame(name) for name in LAYERS}


def assert_same_layers(single: dict[str, gpd.GeoDataFrame], spread: dict[str, gpd.GeoDataFrame]) -> None:
    """Same fids, same attributes (values and dtypes), geometries WKB-identical."""
    assert list(single) == list(spread)
    for name in single:
        a, b = single[name], spread[name]
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"), obj=name)
        ga, gb = a.geometry.to_numpy(), b.geometry.to_numpy()
        assert (shapely.to_wkb(ga) == shapely.to_wkb(gb)).all(), name
        assert shapely.equals_exact(ga, gb, tolerance=1e-9).all(), name


def qa_items(report_dir: Path) -> tuple[list[dict], dict]:
    report = json.loads((report_dir / "qa.json").read_text(encoding="utf-8"))
    summary = {k: v for k, v in report.items() if k not in ("items", "created", "release", "report")}
    return report["items"], summary


@pytest.mark.slow  # a local dask cluster (~10 s)
def test_workers_build_the_same_layers_and_qa_report(store_url: str, tmp_path: Path, workers: Scale) -> None:
    config = load_config(write_city(tmp_path))
    with open_store(store_url) as store:
        single = build(config, store, report_dir=tmp_path / "qa1")
    expected = frames(store_url)
    assert workers.workers == 2
    with open_store(store_url) as store, use_scale(workers):
        spread = build(config, store, report_dir=tmp_path / "qa2", full=True)  # (unchanged: else carried over)
    assert spread.release.number == 2 and spread.release.current
    assert_same_layers(expected, frames(store_url))
    # the same QA records in the same order, the same counts and cross-check results
    assert spread.report.records == single.report.records and len(single.report.records) == 8
    assert spread.report.sources == single.report.sources
    assert spread.report.crosschecks == single.report.crosschecks
    assert qa_items(tmp_path / "qa2") == qa_items(tmp_path / "qa1")
    with open_store(store_url) as store:
        first, second = store.releases()
    assert {k: v for k, v in first.qa.items() if k not in ("created", "report")} == {
        k: v for k, v in second.qa.items() if k not in ("created", "report")
    }
    assert first.checksums == second.checksums


@pytest.mark.slow  # an external dask scheduler and `cim build` (~13 s)
def test_cli_on_an_external_scheduler(tmp_path: Path, cluster: LocalCluster) -> None:
    config, store_url = write_city(tmp_path), str(tmp_path / "city.duckdb")
    with open_store(store_url) as store:
        build(load_config(config), store, report_dir=tmp_path / "qa1")
    expected = frames(store_url)
    address = cluster.scheduler_address
    lines = ok(
        tmp_path, "build", config.name, "--store", store_url, "--report", "qa2", "--full",
        "--dask-scheduler", address, "--partition-rows", "1",
    ).splitlines()  # fmt: skip
    # progress still says what happens per source and step, and how it was partitioned
    assert f"dask: {address}, 2 workers, up to 1 features a partition" in lines
    survey, cadastre = "buildings · data/buildings_survey.shp", "data/buildings_cadastre.gpkg"
    assert f"{survey}: partition (7 spatial partitions by Hilbert distance, 2 workers)" in lines
    assert "pois · data/pois_amap.csv: rectify (GCJ-02, per partition)" in lines
    assert f"{survey}: 7 of 7 partitions done" in lines
    assert f"buildings · {cadastre}: done, 4 of 4 features kept" in lines
    assert f"buildings: matching in 4 spatial partitions of {cadastre} (halo 0 m) on 2 workers" in lines
    assert lines[-2:] == [
        "release 2 is current: buildings 5, parcels 2, roads 2, landuse 2, pois 2, water 2",
        "QA: 8 findings; report in qa2/qa.md",
    ]
    assert_same_layers(expected, frames(store_url))
    assert qa_items(tmp_path / "qa2") == qa_items(tmp_path / "qa1")
    # the work ran on the scheduler's workers
    assert {"conform_part", "to_metric", "match_part"} <= set(cluster.scheduler.task_prefixes)


def put_pois_outside_china(config: Path) -> None:
    """POI-2 and an added POI-4 get coordinates outside the area of use of GCJ-02 (Helsinki)."""
    path = config.parent / "data" / "pois_amap.csv"
    pois = pd.read_csv(path, dtype=str, keep_default_na=False)
    pois.loc[pois["id"] == "POI-2", ["lng", "lat"]] = ["24.94", "60.17"]
    extra = pois[pois["id"] == "POI-1"].assign(id="POI-4", lng="25.0", lat="60.2")
    pd.concat([pois, extra]).to_csv(path, index=False, encoding="utf-8")


@pytest.mark.slow  # `cim build --workers` as a subprocess (~15 s)
def test_a_bad_source_fails_the_distributed_build_with_the_same_line(store_url: str, tmp_path: Path) -> None:
    config = write_city(tmp_path)
    with open_store(store_url) as store:
        build(load_config(config), store)
        before = store.releases()
    put_pois_outside_china(config)
    with pytest.raises(BuildError) as single:
        prepare(load_config(config))
    assert str(single.value).startswith("data/pois_amap.csv: layer pois: feature POI-2: coordinates (24.94, 60.17) lie")
    assert "(2 features)" in str(single.value)
    # cim build --workers 2: the same line, exit 1, and release 1 stays current
    spread = fails(tmp_path, "build", config.name, "--store", store_url, "--workers", "2", "--partition-rows", "1")
    assert spread == f"error: {single.value}"
    with open_store(store_url) as store:
        assert store.releases() == before and store.current_number() == 1


def test_a_build_error_raised_on_a_worker_keeps_file_layer_and_feature(client: Client) -> None:
    def fail(part: int) -> int:
        if part >= 2:
            raise BuildError(f"bad part {part}", file="data/x.shp", layer="roads", feature=f"F-{part}")
        return part

    scale = Scale(client, rows_per_partition=1)
    assert scale._run(fail, [0, 1]) == [0, 1]
    with pytest.raises(BuildError) as caught:
        scale._run(fail, [0, 3, 2])
    error = caught.value
    assert str(error) == "data/x.shp: layer roads: feature F-3: bad part 3"
    assert (error.file, error.layer, error.feature, error.reason) == ("data/x.shp", "roads", "F-3", "bad part 3")


def test_options_and_small_sources() -> None:
    assert [partition_count(n, 1000) for n in (1, 999, 1000, 1001, 25_000)] == [1, 1, 1, 2, 25]
    with open_scale() as scale:
        assert scale is None
    with pytest.raises(BuildError, match="not both"):
        with open_scale(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass


@pytest.mark.slow  # `cim build` subprocesses waiting on an unreachable scheduler (~20 s)
def test_cli_refuses_workers_with_a_scheduler_and_an_unreachable_scheduler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_city(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["build", config.name, "--workers", "2", "--dask-scheduler", "tcp://127.0.0.1:9"])
    assert exited.value.code == 2 and "Error: give --workers or --dask-scheduler, not both" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["build", config.name, "--store", "city.duckdb", "--dask-scheduler", "tcp://127.0.0.1:9"])
    assert exited.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: cannot connect to the dask scheduler tcp://127.0.0.1:9: ")
    with open_store("city.duckdb") as store:
        assert store.releases() == []


# -- the pieces: Hilbert partitions, dedupe across partitions, cross-checks across borders ----------


def test_hilbert_partitions_keep_identical_geometries_together() -> None:
    rng = np.random.default_rng(7)
    points = shapely.points(rng.uniform(117.1, 117.3, 50), rng.uniform(39.0, 39.2, 50))
    geoms = np.concatenate([points, points[:5], [None, shapely.Point()]])
    order = hilbert_order(geoms)
    assert sorted(order) == list(range(len(geoms)))
    assert set(order[:2]) == {55, 56}  # missing and empty first
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    for i in range(5):  # a repeated geometry has the same Hilbert distance: next to its original
        assert abs(rank[i] - rank[50 + i]) == 1
    runs = spatial_partitions(geoms, 4)
    assert [len(r) for r in runs] == [15, 14, 14, 14]
    assert sorted(np.concatenate(runs)) == list(range(len(geoms)))
    assert all((np.diff(r) > 0).all() for r in runs)


def test_dedupe_and_ids_across_partitions_are_exact(tmp_path: Path, workers: Scale) -> None:
    """Duplicates (same point, same id, both) scattered through a source, in partitions of 3."""
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(117.15, 117.25, 40), rng.uniform(39.10, 39.16, 40)
    rows = [
        {"id": f"P-{i}", "name": f"poi {i}", "lng": f"{x:.7f}", "lat": f"{y:.7f}"}
        for i, (x, y) in enumerate(zip(lon, lat))
    ]
    for i in (3, 17, 28, 39):  # same place, other id, later in the file
        rows.append({**rows[i], "id": f"D-{i}", "name": "again"})
    for i in (5, 11):  # same id elsewhere
        rows.append({**rows[i], "lng": "117.2", "lat": f"{39.11 + i / 1000:.4f}"})
    rows.append({**rows[0], "lng": "n/a"})
    pd.DataFrame(rows).sample(frac=1, random_state=1).to_csv(tmp_path / "pois.csv", index=False)
    config = tmp_path / "pois.yml"
    config.write_text(
        "city: T\nstorage_crs: EPSG:4490\nlayers:\n  pois:\n    sources:\n"
        "      - {path: pois.csv, crs: GCJ-02, lon: lng, lat: lat, id: id, fields: {name: name}}\n",
        encoding="utf-8",
    )
    single = prepare(load_config(config))
    with use_scale(Scale(workers.client, rows_per_partition=3)):
        spread = prepare(load_config(config))
    rules = [r.rule for r in single.report.records]
    assert rules.count("duplicate.geometry") == 4 and rules.count("duplicate.id") == 2
    assert spread.report.records == single.report.records
    (a,), (b,) = single.draft.layers, spread.draft.layers
    pd.testing.assert_frame_equal(pd.DataFrame(a.frame), pd.DataFrame(b.frame))


def sides(kind: str, seed: int) -> tuple[Side, Side]:
    """Two sources of one layer in EPSG:4490 with near misses, exact ties and features on every border."""
    rng = np.random.default_rng(seed)
    n = 120
    x, y = rng.uniform(117.10, 117.14, n), rng.uniform(39.10, 39.13, n)
    d = 2e-5  # about 2 m
    if kind == "points":
        a = shapely.points(x, y)
        b = shapely.points(x + rng.normal(0, d * 1.5, n), y + rng.normal(0, d * 1.5, n))
        # two equal primary points: equidistant, the tie is broken by the lower position
        a = np.concatenate([a, shapely.points([117.2, 117.2], [39.2, 39.2])])
        b = np.concatenate([b, shapely.points([117.20001], [39.2])])
    elif kind == "lines":
        a = shapely.linestrings(np.stack([np.stack([x, y], 1), np.stack([x + 3e-4, y + 2e-4], 1)], 1))
        bend = d * rng.uniform(-12, 12, n)  # the far end up to about 12 m off: some lines match, some not
        b = shapely.linestrings(np.stack([np.stack([x + d, y], 1), np.stack([x + 3e-4 + bend, y + 2e-4], 1)], 1))
    else:
        a = shapely.box(x, y, x + 3e-4, y + 2e-4)
        b = shapely.box(x + rng.uniform(-2e-4, 2e-4, n), y, x + 3e-4, y + 2e-4)
        twin = shapely.box(117.2, 39.2, 117.2003, 39.2002)
        a = np.concatenate([a, [twin, twin]])  # two equal primaries: the same IoU, the first one wins
        b = np.concatenate([b, [twin]])
    frame = lambda g, p: gpd.GeoDataFrame(
        {"source_id": [f"{p}{i}" for i in range(len(g))], "height_m": np.arange(len(g), dtype=float)},
        geometry=gpd.GeoSeries(g, crs=4490),
    )
    return Side("a.gpkg", frame(a, "A")), Side("b.gpkg", frame(b, "B"))


@pytest.mark.parametrize("kind, geometry_type", [("points", "Point"), ("lines", "LineString"), ("polygons", "Polygon")])
def test_partitioned_crosscheck_matches_across_borders(client: Client, kind: str, geometry_type: str) -> None:
    spec = LayerSpec("things", "Things", "", geometry_type=geometry_type, fields=(FieldSpec("height_m", "number"),))
    primary, secondary = sides(kind, seed=len(kind))
    config = CrossCheckConfig(min_iou=0.5, max_distance_m=5.0)
    expected = match_sources(spec, primary, secondary, config)
    matched = (expected.primary >= 0).sum()
    assert 0 < matched < len(secondary.frame)  # some match, some do not
    lines: list[str] = []
    with use_scale(Scale(client, rows_per_partition=7)) as scale:
        assert scale is not None
        got = scale.match(spec, primary, secondary, config, Progress(lines.append))
    assert got is not None and lines == [
        f"things: matching in 18 spatial partitions of b.gpkg (halo {0 if kind == 'polygons' else 5} m) on 2 workers"
    ]
    np.testing.assert_array_equal(got.primary, expected.primary)
    assert got.why_not == expected.why_not
    if kind != "lines":
        assert got.primary[-1] == len(primary.frame) - 2  # the tie went to the lower position
