"""Raster layers through ``cim build`` on both stores: GeoTIFF → COG in EPSG:3857 beside the release,
georeferencing, checksums and QA, declared CRSs, bad inputs, failed publishes and pruning."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from support.rasters import (
    DEM_NODATA,
    HILL,
    NODATA_BLOCK,
    PIXEL_M,
    dem_origin,
    elevation_at,
    raster_config,
    write_dem,
    write_ortho,
)

from cim.build import build, load_config, prepare
from cim.build.readers import sha256
from cim.errors import BuildError, StoreError
from cim.store import open_store
from cim.store.rasters import postgis_raster_dir

TO_MERCATOR = Transformer.from_crs("EPSG:4490", "EPSG:3857", always_xy=True)


@pytest.fixture(autouse=True)
def raster_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the PostGIS store keeps its COGs in these tests."""
    monkeypatch.setenv("CIM_RASTER_DIR", str(tmp_path / "rasters"))
    return tmp_path / "rasters"


def cog_files(store_url: str, raster_dir: Path) -> list[str]:
    """Every COG the store holds (release directory, or the PostGIS raster directory)."""
    where = Path(store_url + ".d") / "releases" if store_url.endswith(".duckdb") else raster_dir
    return sorted(p.name for p in where.glob("*.tif")) if where.is_dir() else []


def _dem_case(root: Path, name: str, **write) -> Path:
    """``root`` with a DEM written as ``data/<name>``."""
    (root / "data").mkdir(parents=True)
    write_dem(root / "data" / name, **write)
    return root


def sample(path: str, lon: float, lat: float) -> float:
    """Band 1 at a CGCS2000 lon/lat, interpolated bilinearly between pixel centres (nodata if any of
    the four is nodata)."""
    with rasterio.open(path) as src:
        col, row = ~src.transform @ TO_MERCATOR.transform(lon, lat)
        c0, r0 = int(np.floor(col - 0.5)), int(np.floor(row - 0.5))
        block = src.read(1, window=((r0, r0 + 2), (c0, c0 + 2))).astype("float64")
        if src.nodata is not None and (block == src.nodata).any():
            return float(src.nodata)
    fx, fy = col - 0.5 - c0, row - 0.5 - r0
    top = block[0, 0] * (1 - fx) + block[0, 1] * fx
    bottom = block[1, 0] * (1 - fx) + block[1, 1] * fx
    return float(top * (1 - fy) + bottom * fy)


@pytest.mark.slow  # a raster build (~2 s)
def test_rasters_become_cogs_of_the_release(store_url: str, tmp_path: Path, raster_dir: Path) -> None:
    config = raster_config(tmp_path / "city")
    with open_store(store_url) as store:
        result = build(load_config(config), store, report_dir=tmp_path / "qa")
        infos = {info.name: info for info in store.layers() if not info.spec.live}
        release = store.current_release()
    assert set(infos) == {"dem", "imagery"} and release is not None and release.number == 1
    for name, info in infos.items():
        assert (info.srid, info.count) == (3857, 0)
        west, south, east, north = info.bbox
        assert 117.15 < west < east < 117.21 and 39.12 < south < north < 39.16, (name, info.bbox)
        path = Path(info.raster_path)
        assert path.is_absolute() and path.is_file()
        assert oct(path.stat().st_mode & 0o777) == "0o444"
        if store_url.endswith(".duckdb"):
            assert path.parent == Path(store_url + ".d").resolve() / "releases" and path.name == f"r0001.{name}.tif"
        else:
            assert path.parent == raster_dir and path.name.startswith("cim_r0001-") and path.name.endswith(f".{name}.tif")
        with rasterio.open(path) as cog:  # a valid COG: tiled, with overviews, in EPSG:3857
            assert cog.driver == "GTiff" and cog.crs.to_epsg() == 3857
            assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert cog.block_shapes[0] == (256, 256) and cog.overviews(1) == [2]
            assert cog.profile["tiled"] and cog.compression.name.lower() == "deflate"
    with rasterio.open(infos["dem"].raster_path) as dem:
        assert dem.count == 1 and dem.dtypes[0] == "float32" and dem.nodata == DEM_NODATA
    with rasterio.open(infos["imagery"].raster_path) as image:
        assert image.count == 4 and image.colorinterp[3].name == "alpha"
    # checksums and QA in the release, as for vector sources
    assert release.checksums == {
        "data/dem.tif": sha256(tmp_path / "city/data/dem.tif"),
        "data/ortho.tif": sha256(tmp_path / "city/data/ortho.tif"),
    }
    dem_qa = release.qa["rasters"]["dem"]
    assert dem_qa["crs"] == "EPSG:4548" and dem_qa["nodata_fraction"] == pytest.approx(NODATA_BLOCK**2 / 400**2)
    assert dem_qa["min"] >= 5.0 and dem_qa["max"] == pytest.approx(105.0, abs=0.05)
    assert release.qa["rasters"]["imagery"]["nodata_fraction"] == 0.0
    assert release.qa["by_rule"] == {"raster.nodata": {"flagged": 1}}
    (record,) = result.report.find(rule="raster.nodata")
    assert (record.layer, record.source) == ("dem", "data/dem.tif") and "9.00 % of 160000 pixels" in record.reason
    report = json.loads((tmp_path / "qa" / "qa.json").read_text(encoding="utf-8"))
    assert report["rasters"]["dem"]["overviews"] == [2]
    assert "## Rasters" in (tmp_path / "qa" / "qa.md").read_text(encoding="utf-8")


@pytest.mark.slow  # a raster build (~2 s)
def test_georeferencing_puts_known_heights_at_known_places(tmp_path: Path) -> None:
    config = raster_config(tmp_path / "city")
    with open_store(str(tmp_path / "geo.duckdb")) as store:
        build(load_config(config), store)
        dem = store.layer("dem").raster_path
        image = store.layer("imagery").raster_path
    for lon, lat in (HILL, (117.1850, 39.1370), (117.1700, 39.1450)):
        assert sample(dem, lon, lat) == pytest.approx(elevation_at(lon, lat), abs=0.1), (lon, lat)
    # the nodata block at the north-west corner stays nodata
    west, north = dem_origin()
    corner = Transformer.from_crs("EPSG:4548", "EPSG:4490", always_xy=True).transform(
        west + NODATA_BLOCK * PIXEL_M / 2, north - NODATA_BLOCK * PIXEL_M / 2
    )
    assert sample(dem, *corner) == DEM_NODATA
    # the orthophoto's red rises to the east, green to the south, blue is constant
    with rasterio.open(image) as src:
        x, y = TO_MERCATOR.transform(117.180, 39.140)  # the middle of the image
        red, green, blue, alpha = next(src.sample([(x, y)]))
    assert abs(int(red) - 127) <= 3 and abs(int(green) - 127) <= 3 and (blue, alpha) == (128, 255)


def test_a_declared_crs_reads_a_file_without_one_and_overrides_a_wrong_one(tmp_path: Path) -> None:
    bare = _dem_case(tmp_path / "bare", "bare.tif", crs=None)
    config = raster_config(bare, dem="data/bare.tif", ortho=None, extra="crs: EPSG:4548")
    prepared = prepare(load_config(config))
    try:
        assert prepared.report.rasters["dem"]["crs"] == "EPSG:4548"
        assert not prepared.report.find(rule="crs.override")
    finally:
        prepared.discard()
    wrong = _dem_case(tmp_path / "wrong", "wrong.tif", crs="EPSG:4547")
    prepared = prepare(load_config(raster_config(wrong, dem="data/wrong.tif", ortho=None, extra="crs: EPSG:4548")))
    try:
        (note,) = prepared.report.find(rule="crs.override")
        assert note.reason == "declared CRS EPSG:4548 overrides the file's EPSG:4547"
        staged = Path(prepared.draft.layers[0].raster_path)
        assert sample(str(staged), *HILL) == pytest.approx(elevation_at(*HILL), abs=0.1)
    finally:
        prepared.discard()
    assert not staged.exists()


def test_nodata_from_the_config_when_the_file_has_none(tmp_path: Path) -> None:
    root = _dem_case(tmp_path / "city", "plain.tif", nodata=None)
    prepared = prepare(load_config(raster_config(root, dem="data/plain.tif", ortho=None, extra="nodata: -9999")))
    try:
        assert prepared.report.rasters["dem"]["nodata_fraction"] == pytest.approx(NODATA_BLOCK**2 / 400**2)
        assert prepared.report.rasters["dem"]["min"] > 0
    finally:
        prepared.discard()


# -- bad inputs: (name, make the source and return the config, file, reason) --------------------------


def no_crs(root: Path) -> Path:
    return raster_config(_dem_case(root, "bare.tif", crs=None), dem="data/bare.tif", ortho=None)


def unknown_crs(root: Path) -> Path:
    _dem_case(root, "local.tif", crs='LOCAL_CS["made up",UNIT["metre",1]]')
    return raster_config(root, dem="data/local.tif", ortho=None)


def truncated(root: Path) -> Path:
    _dem_case(root, "cut.tif")
    data = (root / "data" / "cut.tif").read_bytes()
    (root / "data" / "cut.tif").write_bytes(data[: len(data) // 2])
    return raster_config(root, dem="data/cut.tif", ortho=None)


def not_a_tiff(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "junk.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    return raster_config(root, dem="data/junk.tif", ortho=None)


def empty_file(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "empty.tif").write_bytes(b"")
    return raster_config(root, dem="data/empty.tif", ortho=None)


def missing(root: Path) -> Path:
    return raster_config(root, dem="data/nowhere.tif", ortho=None)


def outside_area(root: Path) -> Path:
    # EPSG:4548 eastings (around 500 000) declared as the zone-prefixed EPSG:4527 (39 500 000)
    return raster_config(_dem_case(root, "gk.tif"), dem="data/gk.tif", ortho=None, extra="crs: EPSG:4527")


def three_band_dem(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    write_ortho(root / "data" / "rgb.tif")
    return raster_config(root, dem="data/rgb.tif", ortho=None)


def all_nodata(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    west, north = dem_origin()
    with rasterio.open(
        root / "data" / "void.tif", "w", driver="GTiff", width=64, height=64, count=1, dtype="float32",
        crs="EPSG:4548", transform=from_origin(west, north, 10, 10), nodata=-9999,
    ) as dst:
        dst.write(np.full((1, 64, 64), -9999, dtype="float32"))
    return raster_config(root, dem="data/void.tif", ortho=None)


def offset_crs(root: Path) -> Path:
    return raster_config(_dem_case(root, "gcj.tif", crs=None), dem="data/gcj.tif", ortho=None, extra="crs: GCJ-02")


BAD_RASTERS: list[tuple[Callable[[Path], Path], str, str]] = [
    (no_crs, "data/bare.tif", "the file has no CRS and the config declares none"),
    (unknown_crs, "data/local.tif", "unknown CRS in the file (Engineering CRS 'made up')"),
    (truncated, "data/cut.tif", "cannot read the GeoTIFF's pixels (truncated or corrupt?)"),
    (not_a_tiff, "data/junk.tif", "cannot read the GeoTIFF (truncated or corrupt?)"),
    (empty_file, "data/empty.tif", "empty source: the file is empty"),
    (missing, "data/nowhere.tif", "file not found"),
    (outside_area, "data/gk.tif", "lie outside the area of use of EPSG:4527"),
    (three_band_dem, "data/rgb.tif", "a DEM has one band of heights; the file has 3"),
    (all_nodata, "data/void.tif", "empty source: every pixel is nodata"),
    (offset_crs, "data/gcj.tif", "GCJ-02 rasters cannot be rectified"),
]


@pytest.mark.slow  # several raster builds (~9 s)
def test_bad_rasters_stop_the_build_and_keep_the_release(store_url: str, tmp_path: Path, raster_dir: Path) -> None:
    with open_store(store_url) as store:
        build(load_config(raster_config(tmp_path / "good")), store)
        releases, layers, files = store.releases(), store.layers(), cog_files(store_url, raster_dir)
        for make, file, reason in BAD_RASTERS:
            with pytest.raises(BuildError) as caught:
                build(load_config(make(tmp_path / make.__name__)), store)
            error = caught.value
            assert (error.file, error.layer) == (file, "dem"), make.__name__
            assert reason in error.reason, (make.__name__, error.reason)
            assert str(error).startswith(f"{file}: layer dem: ") and "\n" not in str(error)
            assert store.releases() == releases and store.layers() == layers, make.__name__
            assert cog_files(store_url, raster_dir) == files, make.__name__
        for path in (info.raster_path for info in layers if info.spec.kind == "raster"):
            assert Path(path).is_file()


@pytest.mark.parametrize(
    ("yaml", "reason"),
    [
        ("  dem:\n    sources:\n      - path: data/dem.tif\n        fields: {height: h}\n", "keys ['fields'] do not apply"),
        ("  dem:\n    sources:\n      - path: data/dem.tif\n      - path: data/dem.tif\n        name: again\n",
         "a raster layer takes exactly one source"),
        ("  dem:\n    sources:\n      - path: data/dem.geojson\n", "a raster layer needs a GeoTIFF source"),
        ("  parcels:\n    sources:\n      - path: data/dem.tif\n", "is a raster (geotiff) but parcels is a vector layer"),
        ("  dem:\n    sources:\n      - path: data/dem.tif\n        crs: EPSG:999999\n", "unknown CRS 'EPSG:999999'"),
        ("  dem:\n    sources:\n      - path: data/dem.tif\n        nodata: none\n", "nodata: expected a number"),
    ],
)
def test_raster_config_mistakes_are_refused(tmp_path: Path, yaml: str, reason: str) -> None:
    (tmp_path / "data").mkdir()
    write_dem(tmp_path / "data" / "dem.tif")
    config = tmp_path / "bad.yml"
    config.write_text(f"city: Tianjin\nstorage_crs: EPSG:4490\nlayers:\n{yaml}", encoding="utf-8")
    with pytest.raises(BuildError) as caught:
        prepare(load_config(config))
    assert reason in str(caught.value)


@pytest.mark.slow  # raster builds (~5 s)
def test_a_failed_publish_removes_its_cogs_and_keeps_the_release(store_url: str, tmp_path: Path, raster_dir: Path) -> None:
    with open_store(store_url) as store:
        build(load_config(raster_config(tmp_path / "one")), store)
        releases, files = store.releases(), cog_files(store_url, raster_dir)
        prepared = prepare(load_config(raster_config(tmp_path / "two")))
        try:
            # the DEM (drawn above the imagery) is installed second: make it fail after the imagery
            dem = next(layer for layer in prepared.draft.layers if layer.spec.name == "dem")
            Path(dem.raster_path).unlink()
            with pytest.raises(StoreError, match="raster layer 'dem'"):
                store.publish(prepared.draft)
        finally:
            prepared.discard()
        assert store.releases() == releases and store.current_number() == 1
        assert cog_files(store_url, raster_dir) == files
        assert sample(store.layer("dem").raster_path, *HILL) == pytest.approx(elevation_at(*HILL), abs=0.1)


@pytest.mark.slow  # several raster releases (~7 s)
def test_pruning_a_release_removes_its_cogs(store_url: str, tmp_path: Path, raster_dir: Path) -> None:
    config = load_config(raster_config(tmp_path / "city"))
    with open_store(store_url) as store:
        paths = []
        for _ in range(3):
            build(config, store, keep=2)
            paths.append({info.name: info.raster_path for info in store.layers() if info.spec.kind == "raster"})
        assert [r.number for r in store.releases()] == [2, 3]
        assert len(cog_files(store_url, raster_dir)) == 4
        assert not any(Path(p).exists() for p in paths[0].values())
        assert all(Path(p).exists() for p in [*paths[1].values(), *paths[2].values()])
        store.set_current(2)  # a rollback reads release 2's own COG
        assert store.layer("dem").raster_path == paths[1]["dem"]


@pytest.mark.slow  # `cim build` in a subprocess (~23 s)
def test_vector_and_raster_layers_in_one_cim_build(tmp_path: Path) -> None:
    from test_cli_commands import ok, release_table
    from support.tianjin import write_city

    config = write_city(tmp_path)
    write_dem(tmp_path / "data" / "dem.tif")
    write_ortho(tmp_path / "data" / "ortho.tif")
    text = config.read_text(encoding="utf-8")
    text += "\n  dem:\n    sources:\n      - path: data/dem.tif\n  imagery:\n    sources:\n      - path: data/ortho.tif\n"
    config.write_text(text, encoding="utf-8")
    lines = ok(tmp_path, "build", config.name, "--store", "city.duckdb").splitlines()
    assert "dem · data/dem.tif: cog (EPSG:4548 → EPSG:3857)" in lines
    assert "dem · data/dem.tif: done, 400 × 400 px, 9.0 % no data" in lines
    rows = release_table(ok(tmp_path, "releases", "--store", "city.duckdb"))
    assert {"dem", "imagery", "buildings"} <= set(rows[1][1])
    assert sorted(p.name for p in (tmp_path / "city.duckdb.d" / "releases").glob("*.tif")) == [
        "r0001.dem.tif", "r0001.imagery.tif"
    ]
    with open_store(str(tmp_path / "city.duckdb")) as store:
        assert store.layer("buildings").count == 5 and store.layer("dem").srid == 3857


def test_postgis_raster_directory_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CIM_RASTER_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert postgis_raster_dir("postgresql://u:secret@db.example:6543/city") == tmp_path / "share/cim/rasters/db.example_6543_city"
    monkeypatch.setenv("CIM_RASTER_DIR", "/srv/cim/rasters")
    assert postgis_raster_dir("postgresql://u@db/city") == Path("/srv/cim/rasters")


@pytest.mark.slow  # a raster build (~3 s)
def test_the_python_api_points_raster_readers_at_the_cog(tmp_path: Path) -> None:
    import cim
    from cim.errors import InvalidQuery

    url = str(tmp_path / "api.duckdb")
    with open_store(url) as store:
        build(load_config(raster_config(tmp_path / "city")), store)
    with cim.open(url) as city:
        assert set(city.layers) - {"warnings"} == {"dem", "imagery"}  # warnings: the live layer
        with pytest.raises(InvalidQuery, match="raster layer"):
            city.read("dem")
        assert sample(city.info("dem").raster_path, *HILL) == pytest.approx(elevation_at(*HILL), abs=0.1)
