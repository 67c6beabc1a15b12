"""Every supported kind of CRS, embedded in the file or declared in the config, against control points:
true CGCS2000 lon/lat written in the source CRS (pyproj; prcoords' forward offsets for GCJ-02 and
BD-09) must come back within a metre — they come back within millimetres."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from support.tianjin import error_m, to_crs

from cim.build import build, load_config, prepare
from cim.store import open_store

#: control points (true CGCS2000 lon/lat) spread over the city
CONTROL = {"CP-1": (117.1700, 39.1200), "CP-2": (117.2000, 39.1500), "CP-3": (117.1855, 39.1342)}
EPSG_CODES = ["EPSG:4326", "EPSG:4490", "EPSG:4527", "EPSG:4548", "EPSG:3857"]
ALL_CRS = [*EPSG_CODES, "GCJ-02", "BD-09"]


def points_in(crs: str) -> list[shapely.Point]:
    return [to_crs(shapely.Point(lon, lat), crs) for lon, lat in CONTROL.values()]


def write_config(root: Path, source: str, storage: str = "EPSG:4490") -> Path:
    config = root / "city.yml"
    config.write_text(
        f"city: Tianjin\nstorage_crs: {storage}\nlayers:\n  pois:\n    sources:\n{source}", encoding="utf-8"
    )
    return config


def embedded_source(root: Path, crs: str) -> Path:
    """A GeoPackage whose own CRS is ``crs``."""
    frame = gpd.GeoDataFrame({"pid": list(CONTROL), "name": list(CONTROL)}, geometry=points_in(crs), crs=crs)
    pyogrio.write_dataframe(frame, root / "control.gpkg")
    return write_config(root, "      - path: control.gpkg\n        id: pid\n")


def declared_source(root: Path, crs: str, storage: str = "EPSG:4490") -> Path:
    """A CSV of x/y columns, its CRS declared in the config."""
    points = points_in(crs)
    pd.DataFrame({"pid": list(CONTROL), "x": [repr(p.x) for p in points], "y": [repr(p.y) for p in points]}).to_csv(
        root / "control.csv", index=False
    )
    source = f"      - path: control.csv\n        crs: {crs}\n        x: x\n        y: y\n        id: pid\n"
    return write_config(root, source, storage)


def stored_errors(frame: gpd.GeoDataFrame) -> dict[str, float]:
    lonlat = frame.to_crs(4490).set_index("source_id").geometry
    return {pid: error_m(lonlat[pid], shapely.Point(*CONTROL[pid])) for pid in CONTROL}


@pytest.mark.parametrize("crs", EPSG_CODES)
def test_crs_embedded_in_the_file(tmp_path: Path, crs: str) -> None:
    (pois,) = prepare(load_config(embedded_source(tmp_path, crs))).draft.layers
    errors = stored_errors(pois.frame)
    assert max(errors.values()) < 0.001, errors


@pytest.mark.parametrize("crs", ALL_CRS)
def test_crs_declared_in_the_config(tmp_path: Path, crs: str) -> None:
    prepared = prepare(load_config(declared_source(tmp_path, crs)))
    (pois,) = prepared.draft.layers
    errors = stored_errors(pois.frame)
    # pyproj round trips to the millimetre; prcoords' iterative inverse to a fraction of a millimetre
    assert max(errors.values()) < 0.001, errors
    assert prepared.report.sources[0].crs == crs


def test_declared_crs_overrides_the_file_and_says_so(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"pid": list(CONTROL)}, geometry=points_in("EPSG:4548"), crs="EPSG:4527"
    )  # wrong CRS label
    pyogrio.write_dataframe(frame, tmp_path / "mislabelled.gpkg")
    config = write_config(tmp_path, "      - path: mislabelled.gpkg\n        crs: EPSG:4548\n        id: pid\n")
    prepared = prepare(load_config(config))
    assert max(stored_errors(prepared.draft.layers[0].frame).values()) < 0.001
    (note,) = prepared.report.find(rule="crs.override")
    assert note.reason == "declared CRS EPSG:4548 overrides the file's EPSG:4527" and note.feature is None


def test_storage_in_a_gauss_kruger_zone(tmp_path: Path) -> None:
    """Stored as EPSG:4548 x/y (easting first) from GCJ-02 input; the catalog extent is still CRS84."""
    config = load_config(declared_source(tmp_path, "GCJ-02", storage="EPSG:4548"))
    with open_store(str(tmp_path / "gk.duckdb")) as store:
        build(config, store)
        stored = store.read_frame("pois").set_index("source_id").geometry
        info = store.layer("pois")
    assert info.srid == 4548 and stored.crs.to_epsg() == 4548
    to_gk = Transformer.from_crs("EPSG:4490", "EPSG:4548", always_xy=True)
    for pid, (lon, lat) in CONTROL.items():
        easting, northing = to_gk.transform(lon, lat)
        assert 400_000 < easting < 600_000 and stored[pid].distance(shapely.Point(easting, northing)) < 0.001
    minx, _, _, maxy = info.bbox  # the GK box's corners reach a few metres beyond the points
    assert minx == pytest.approx(117.17, abs=1e-4) and maxy == pytest.approx(39.15, abs=1e-4)
