"""Bulk downloads on both stores (cim/sharing/downloads.py, download_cache.py): every format written
from the store's record batches and opened by GDAL (``ogrinfo``) and geopandas — the demo city (EPSG:4326)
and the planned city stored in CGCS2000 / Gauss-Krüger CM 117E (EPSG:4548) — with the same features,
fields, CRS and geometries as ``read_frame``. This machine's GDAL has no Parquet driver, so GeoParquet
is opened with geopandas, pyarrow and DuckDB and its ``geo`` metadata checked against GeoParquet 1.1.
Also: releases by number, edits making a new current file, pruned releases (410 and their files
removed), one build for concurrent requests, the CLI writing the same bytes."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from pyproj import CRS

import cim.sharing.download_cache as download_cache
from cim.errors import BadInput, LayerNotFound, NotFound, ReleaseGone
from cim.sharing.download_cache import DownloadCache
from cim.store import Edit, ReleaseDraft, open_store
from support.planning_city import publish_planning_city, release_layers
from support.postgis import BACKENDS, backend_store

FORMATS = ("gpkg", "parquet", "fgb")
GK = 4548
#: GeoParquet 1.1: the geometry type names allowed in ``geometry_types`` (each optionally with " Z")
GEOPARQUET_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection"}
OGR_TYPES = {"MultiPolygon": "Multi Polygon", "Polygon": "Polygon", "LineString": "Line String",
             "MultiLineString": "Multi Line String", "Point": "Point", "MultiPoint": "Multi Point"}  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def gk_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The planned city stored in EPSG:4548, releases 1 and 2 (read only)."""
    with backend_store(request, "downloads_gk", tmp_path_factory.mktemp("downloads_gk")) as url:
        publish_planning_city(url, srid=GK, releases=2)
        yield url


def read_back(path: Path, fmt: str) -> gpd.GeoDataFrame:
    """The file as geopandas reads it, ``fid`` a column (GeoPackage keeps it as the feature id)."""
    if fmt == "parquet":
        return gpd.read_parquet(path)
    frame = pyogrio.read_dataframe(path, fid_as_index=fmt == "gpkg")
    return frame.rename_axis("fid").reset_index() if fmt == "gpkg" else frame


def ogrinfo(path: Path) -> str:
    done = subprocess.run(["ogrinfo", "-so", "-al", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_file(store, layer: str, fmt: str, path: Path, release: int | None = None) -> None:
    """``path`` holds ``layer`` as ``read_frame`` reads it: count, fields, CRS, geometries."""
    info = store.layer(layer) if release is None else next(i for i in store.release_layers(release) if i.name == layer)
    expected = store.read_frame(layer, release=release).sort_index()
    frame = read_back(path, fmt).set_index("fid").sort_index()
    assert len(frame) == len(expected) == info.count
    fields = [f.name for f in info.fields]
    assert list(frame.columns) == [*fields, "geometry"]
    assert CRS.from_user_input(frame.crs).to_epsg() == info.srid
    assert list(frame.index) == list(expected.index)
    assert shapely.equals_exact(frame.geometry.values, expected.geometry.values, tolerance=1e-9).all()
    for name in fields:
        left, right = frame[name].tolist(), expected[name].tolist()
        assert [_plain(v) for v in left] == [_plain(v) for v in right], name
    if fmt != "parquet":
        text = ogrinfo(path)
        assert f"Layer name: {layer}" in text
        assert f"Feature Count: {info.count}" in text
        assert f"Geometry: {OGR_TYPES[info.spec.geometry_type]}" in text
        assert re.findall(r'ID\["EPSG",(\d+)\]\]\s*$', text.split("Data axis to CRS axis mapping")[0])[-1] == str(info.srid)
    else:
        check_geoparquet(path, info.srid, info.count, expected)


def _plain(value):
    """A value to compare across readers: None for any missing value, dates and times as text."""
    if value is None or (not isinstance(value, (str, bytes)) and pd.isna(value)):
        return None
    if hasattr(value, "isoformat"):
        return pd.Timestamp(value).isoformat()
    return value


def check_geoparquet(path: Path, srid: int, count: int, expected: gpd.GeoDataFrame) -> None:
    """The ``geo`` metadata by the rules of GeoParquet 1.1, and the file as pyarrow and DuckDB read it."""
    meta = pq.read_metadata(path)
    geo = json.loads(meta.metadata[b"geo"])
    assert geo["version"] == "1.1.0"
    primary = geo["primary_column"]
    assert primary in geo["columns"] and primary in meta.schema.names
    column = geo["columns"][primary]
    assert column["encoding"] == "WKB"
    assert meta.schema.column(meta.schema.names.index(primary)).physical_type == "BYTE_ARRAY"
    assert all(t.removesuffix(" Z") in GEOPARQUET_TYPES for t in column["geometry_types"])
    assert set(column["geometry_types"]) == set(expected.geometry.geom_type)
    assert CRS.from_json_dict(column["crs"]).to_epsg() == srid
    minx, miny, maxx, maxy = column["bbox"]
    assert [minx, miny, maxx, maxy] == pytest.approx(list(expected.total_bounds))
    assert column.get("edges", "planar") in ("planar", "spherical")
    assert meta.num_rows == count
    table = pq.read_table(path)
    assert table.num_rows == count and table.schema.field(primary).type == "binary"
    with duckdb.connect() as con:
        assert con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()[0] == count


@pytest.mark.parametrize("fmt", FORMATS)
def test_demo_layers_open_in_gdal_and_geopandas(demo_store_url: str, fmt: str, tmp_path: Path) -> None:
    with open_store(demo_store_url) as store:
        cache = DownloadCache(store, tmp_path / "cache")
        for layer in ("buildings", "roads", "pois"):
            download = cache.get(layer, fmt)
            assert download.path.name.startswith(f"r{store.current_number():04d}")
            assert download.sha256 == hashlib.sha256(download.path.read_bytes()).hexdigest()
            assert download.filename == f"{layer}-r{store.current_number()}.{fmt}"
            check_file(store, layer, fmt, download.path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_gauss_kruger_layers_and_past_release(gk_url: str, fmt: str, tmp_path: Path) -> None:
    with open_store(gk_url) as store:
        cache = DownloadCache(store, tmp_path / "cache")
        for layer in ("buildings", "parcels", "roads"):
            check_file(store, layer, fmt, cache.get(layer, fmt).path)
        one = cache.get("buildings", fmt, release=1)
        check_file(store, "buildings", fmt, one.path, release=1)
        assert sorted(read_back(one.path, fmt)["name"]) == ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]
        assert sorted(read_back(cache.get("buildings", fmt).path, fmt)["name"]) == ["B1", "B2", "B4", "B5", "B6", "B7", "B8"]


def test_bad_requests(gk_url: str, tmp_path: Path) -> None:
    with open_store(gk_url) as store:
        cache = DownloadCache(store, tmp_path)
        with pytest.raises(BadInput, match="gpkg, parquet, fgb"):
            cache.get("buildings", "shp")
        with pytest.raises(LayerNotFound):
            cache.get("nowhere", "gpkg")
        with pytest.raises(LayerNotFound):
            cache.get("nowhere", "gpkg", release=1)
        with pytest.raises(NotFound, match="releases kept: 1, 2"):
            cache.get("buildings", "gpkg", release=9)
    assert not list(tmp_path.rglob("*.gpkg"))


def test_edits_make_a_new_current_file_and_pruning_removes_old_ones(store_url: str, tmp_path: Path) -> None:
    publish_planning_city(store_url, srid=GK, releases=2)
    with open_store(store_url) as store:
        cache = DownloadCache(store, tmp_path)
        before = cache.get("parcels", "parquet")
        pinned = cache.get("parcels", "parquet", release=1)
        assert store.layer("parcels").spec.editable and re.fullmatch(r"r0002-g\d+\.parquet", before.path.name)
        fid = int(store.find_features("parcels", [("source_id", "P1")]).index[0])
        store.edit(Edit("parcels", "update", "planner", fid, {"properties": {"land_use": "G1"}}))
        after = cache.get("parcels", "parquet")
        assert after.sha256 != before.sha256 and after.path != before.path
        assert not before.path.exists()  # the older generation of the file just made is removed, with its lock
        assert not (before.path.parent / f".{before.path.name}.lock").exists()
        assert gpd.read_parquet(after.path).set_index("fid").loc[fid, "land_use"] == "G1"
        assert cache.get("parcels", "parquet", release=2).sha256 != after.sha256  # release 2 as published
        # release 3 keeping 2 releases: release 1 is pruned (410) and its files go with the next download
        store.publish(ReleaseDraft(layers=release_layers(GK, 2), srid=GK), keep=2)
        with pytest.raises(ReleaseGone, match="releases kept: 2, 3"):
            cache.get("parcels", "parquet", release=1)
        cache.get("buildings", "fgb")
        assert not pinned.path.exists() and not Path(str(pinned.path) + ".sha256").exists()


def test_concurrent_requests_build_once(gk_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    real = download_cache.write_download

    def counting(batches, fmt, path):
        writes.append(fmt.name)
        return real(batches, fmt, path)

    monkeypatch.setattr(download_cache, "write_download", counting)
    results: list = []
    errors: list = []
    with open_store(gk_url) as store:
        def fetch() -> None:
            try:
                results.append(DownloadCache(store, tmp_path).get("buildings", "gpkg"))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors and len(results) == 8 and writes == ["gpkg"]
    assert len({r.sha256 for r in results}) == 1
    assert not [p for p in (tmp_path / "buildings").iterdir() if p.name.startswith(".tmp-")]


def test_a_killed_writers_temp_file_is_cleaned(gk_url: str, tmp_path: Path) -> None:
    with open_store(gk_url) as store:
        folder = tmp_path / "roads"
        folder.mkdir()
        left = folder / ".tmp-r0002.fgb-999999-deadbeef.fgb"
        left.write_bytes(b"half a file")
        DownloadCache(store, tmp_path).get("roads", "fgb")
        assert not left.exists()


def test_cli_writes_the_same_file(gk_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cim.cli import cli as main

    monkeypatch.setenv("CIM_DOWNLOAD_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for fmt in FORMATS:
        out = tmp_path / f"b.{fmt}"
        result = runner.invoke(main, ["export", "features", "buildings", "--format", fmt, "--release", "1", "-o", str(out), "--store", gk_url])
        assert result.exit_code == 0, result.output
        with open_store(gk_url) as store:
            cached = DownloadCache(store).get("buildings", fmt, release=1)
        assert out.read_bytes() == cached.path.read_bytes()
        assert cached.sha256 in result.output
    result = runner.invoke(main, ["export", "features", "roads", "--format", "parquet", "--store", gk_url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "roads-r2.parquet").exists()
    result = runner.invoke(main, ["export", "features", "roads", "--format", "parquet", "--release", "5", "--store", gk_url])
    assert result.exit_code != 0 and "no release 5" in str(result.exception)


def test_layer_batches_stream_in_batches_of_the_size_asked(gk_url: str) -> None:
    with open_store(gk_url) as store:
        stream = store.layer_batches("buildings", release=1, rows=3)
        assert stream.release == 1 and stream.info.srid == GK
        sizes = [batch.num_rows for batch in stream.batches]
        assert sizes == [3, 3, 1]
        names = [f.name for f in store.layer("buildings").fields]
        assert stream.schema.names == ["fid", *names, "geometry"]
        assert str(stream.schema.field("geometry").type) == "binary"
        current = store.layer_batches("buildings", rows=1000)
        assert current.release == store.current_number() == 2
        table = current.reader().read_all()
        assert sorted(table.column("name").to_pylist()) == ["B1", "B2", "B4", "B5", "B6", "B7", "B8"]
        assert table.column("fid").to_pylist() == sorted(table.column("fid").to_pylist())
        with pytest.raises(LayerNotFound):
            store.layer_batches("nowhere")
        with pytest.raises(NotFound):
            store.layer_batches("buildings", release=7)
