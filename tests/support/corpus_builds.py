"""Build inputs for the shared corpus test: hostile or broken sources, each with the outcome it must have.

``CASES`` lists small named cases. Each writes its inputs (a build config and its sources) into a
directory; the build must then either stop with a :class:`~cim.errors.BuildError` whose message
contains ``error`` — and leave the store exactly as it was, nothing staged — or publish, holding the
QA ``records`` listed (rule, action, feature, part of the reason) and the ``features`` counts.
:func:`run_case` does all of that on a store that already has a release (so "left as it was" is a
real check). tests/test_api_corpus.py parametrises over ``CASES`` and both stores::

    @pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
    def test_build_inputs(case, store_url, tmp_path):
        run_case(case, store_url, tmp_path)
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely
from support.tianjin import square, to_crs

from cim.build import build, load_config
from cim.build.pipeline import BuildResult
from cim.errors import BuildError
from cim.store import open_store

#: a parcel's ring (lon/lat, CGCS2000 ≈ WGS84 here), and copies of it further east
OK_RING = [[117.1750, 39.1420], [117.1762, 39.1420], [117.1762, 39.1432], [117.1750, 39.1432], [117.1750, 39.1420]]


def shifted(dx: float) -> list[list[float]]:
    return [[x + dx, y] for x, y in OK_RING]


def polygon(ring: list) -> dict:
    return {"type": "Polygon", "coordinates": [ring]}


def write_geojson(path: Path, features: list[tuple[str | None, object]], raw: dict[str, str] | None = None) -> None:
    """A FeatureCollection of (PID, geometry) written as text; ``raw`` gives a geometry's JSON as
    literal text by PID (NaN, 1e400: what json.dumps would not write)."""
    parts = []
    for pid, geometry in features:
        text = raw[pid] if raw and pid in raw else json.dumps(geometry)
        properties = json.dumps({"PID": pid, "USE": "R2"})
        parts.append(f'{{"type": "Feature", "properties": {properties}, "geometry": {text}}}')
    path.write_text('{"type": "FeatureCollection", "features": [\n' + ",\n".join(parts) + "\n]}\n", encoding="utf-8")


def parcels_config(root: Path, path: str, layer: str = "", top: str = "", **keys: str) -> Path:
    """A config building the parcels layer from ``path`` (id PID, fields PID and USE); ``layer`` and
    ``top`` are extra YAML lines for the layer and the top level, ``keys`` extra source keys."""
    lines = ["city: Tianjin", "storage_crs: EPSG:4490", *([top] if top else []), "layers:", "  parcels:"]
    lines += [f"    {layer}"] if layer else []
    lines += ["    sources:", f"      - path: {path}", "        id: PID", "        fields: {parcel_id: PID, land_use: USE}"]
    lines += [f"        {k}: {v}" for k, v in keys.items()]
    config = root / "parcels.yml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def write_parcels(path: Path, crs: str = "EPSG:4490", driver: str | None = None, n: int = 2) -> None:
    """``n`` good parcels P-1... in ``crs`` with pyogrio (the format from the extension, or ``driver``)."""
    geoms = [to_crs(square(117.1755 + 0.002 * i, 39.1425), crs) for i in range(n)]
    frame = gpd.GeoDataFrame({"PID": [f"P-{i + 1}" for i in range(n)], "USE": ["R2"] * n}, geometry=geoms, crs=crs)
    pyogrio.write_dataframe(frame, path, driver=driver)


@dataclass(frozen=True)
class Case:
    name: str
    #: writes the inputs into a directory and returns the build config
    make: Callable[[Path], Path]
    #: the build must stop with a BuildError whose message contains this
    error: str | None = None
    #: the build must publish, with these QA records: (rule, action, feature, part of the reason)
    records: tuple[tuple[str, str, str | None, str], ...] = ()
    #: and these feature counts per layer
    features: dict[str, int] = field(default_factory=dict)


# -- the inputs ---------------------------------------------------------------------------------------


def all_rejected(root: Path) -> Path:
    write_geojson(root / "nopid.geojson", [(None, polygon(shifted(0.002 * i))) for i in range(3)])
    return parcels_config(root, "nopid.geojson")


def all_rejected_allowed(root: Path) -> Path:
    all_rejected(root)
    return parcels_config(root, "nopid.geojson", layer="allow_empty: true")


def mostly_rejected(root: Path) -> Path:
    write_geojson(root / "mostly.geojson", [("P-1", polygon(OK_RING))] + [(None, polygon(shifted(0.002 * i))) for i in (1, 2, 3)])
    return parcels_config(root, "mostly.geojson")


def mostly_rejected_allowed(root: Path) -> Path:
    mostly_rejected(root)
    return parcels_config(root, "mostly.geojson", top="max_rejected_share: 0.8")


def two_point_ring(root: Path) -> Path:
    write_geojson(root / "ring.geojson", [("P-1", polygon(OK_RING)), ("P-2", polygon([[117.18, 39.14], [117.181, 39.14]]))])
    return parcels_config(root, "ring.geojson")


def unclosed_ring_gpkg(root: Path) -> Path:
    """GDAL writes the unclosed ring as it is (it warns); GEOS refuses it on reading."""
    write_geojson(root / "open.geojson", [("P-1", polygon(OK_RING)), ("P-2", polygon(shifted(0.002)[:-1]))])
    meta, table = pyogrio.read_arrow(root / "open.geojson")
    pyogrio.write_arrow(table, root / "open.gpkg", driver="GPKG", geometry_name=meta["geometry_name"],
                        geometry_type="Polygon", crs=meta["crs"])  # fmt: skip
    return parcels_config(root, "open.gpkg")


def nan_coordinates(root: Path) -> Path:
    raw = {"P-2": '{"type": "Polygon", "coordinates": [[[117.18, 39.14], [NaN, 39.14], [117.181, 39.141], [117.18, 39.14]]]}'}
    write_geojson(root / "nan.geojson", [("P-1", polygon(OK_RING)), ("P-2", None)], raw)
    return parcels_config(root, "nan.geojson")


def nan_wkt(root: Path) -> Path:
    pd.DataFrame({"PID": ["P-1", "P-2"], "USE": ["R2", "B1"], "wkt": [shapely.Polygon(OK_RING).wkt, "POINT (NaN 39.1)"]}).to_csv(
        root / "nan.csv", index=False
    )
    return parcels_config(root, "nan.csv", crs="'EPSG:4490'", wkt="wkt")


def nested_wrongly(root: Path) -> Path:
    write_geojson(root / "nested.geojson", [("P-1", polygon(OK_RING)), ("P-2", {"type": "Polygon", "coordinates": shifted(0.002)})])
    return parcels_config(root, "nested.geojson")


def number_gdal_refuses(root: Path) -> Path:
    """One number GDAL cannot parse makes it refuse the whole file: read feature by feature instead."""
    raw = {"P-2": '{"type": "Polygon", "coordinates": [[[1e400, 39.14], [117.181, 39.14], [117.181, 39.141], [1e400, 39.14]]]}'}
    write_geojson(root / "big.geojson", [("P-1", polygon(OK_RING)), ("P-2", None)], raw)
    return parcels_config(root, "big.geojson")


def empty_file(root: Path) -> Path:
    (root / "zero.geojson").write_bytes(b"")
    return parcels_config(root, "zero.geojson")


def no_features(root: Path) -> Path:
    (root / "none.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    return parcels_config(root, "none.geojson")


def no_features_allowed(root: Path) -> Path:
    no_features(root)
    return parcels_config(root, "none.geojson", top="allow_empty: true")


def cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def truncated_geojson(root: Path) -> Path:
    write_parcels(root / "cut.geojson", driver="GeoJSON")
    cut(root / "cut.geojson")
    return parcels_config(root, "cut.geojson")


def truncated_gpkg(root: Path) -> Path:
    write_parcels(root / "cut.gpkg", n=200)
    cut(root / "cut.gpkg", 2 / 3)
    return parcels_config(root, "cut.gpkg")


def deeply_nested_json(root: Path) -> Path:
    """100,000 nested arrays: no JSON parser here may recurse that deep."""
    text = '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"PID": "P-1"}, "geometry": {"type": "Polygon", "coordinates": '
    (root / "deep.geojson").write_text(text + "[" * 100_000 + "]" * 100_000 + "}}]}")
    return parcels_config(root, "deep.geojson")


def wrong_zone(root: Path) -> Path:
    write_parcels(root / "zone39.gpkg", crs="EPSG:4527")  # Gauss-Krüger eastings with the zone prefix 39...
    return parcels_config(root, "zone39.gpkg", crs="EPSG:4548")  # ...declared as the zone without it


def swapped_axes(root: Path) -> Path:
    pd.DataFrame({"PID": ["P-1"], "USE": ["R2"], "lon": [39.1425], "lat": [117.1755]}).to_csv(root / "swapped.csv", index=False)
    return parcels_config(root, "swapped.csv", crs="EPSG:4326", lon="lon", lat="lat")


def duplicate_ids(root: Path) -> Path:
    write_geojson(root / "dups.geojson", [("P-1", polygon(OK_RING)), ("P-1", polygon(shifted(0.002))), ("P-3", polygon(OK_RING))])
    return parcels_config(root, "dups.geojson")


def shapefile(root: Path, name: str) -> Path:
    write_parcels(root / f"{name}.shp")
    return root / f"{name}.dbf"


def dbf_cut(root: Path) -> Path:
    cut(shapefile(root, "cut"), 0.8)
    return parcels_config(root, "cut.shp")


def dbf_garbage_header(root: Path) -> Path:
    dbf = shapefile(root, "garbage")
    data = dbf.read_bytes()
    dbf.write_bytes(data[:32] + b"\xff" * 64 + data[96:])  # field descriptors overwritten
    return parcels_config(root, "garbage.shp")


def dbf_fewer_records(root: Path) -> Path:
    """GDAL would read only the shapes the .dbf has records for, silently dropping the rest."""
    dbf = shapefile(root, "fewer")
    data = dbf.read_bytes()
    dbf.write_bytes(data[:4] + struct.pack("<I", 1) + data[8:])
    return parcels_config(root, "fewer.shp")


def no_prj(root: Path) -> Path:
    write_parcels(root / "bare.shp")
    (root / "bare.prj").unlink()
    return parcels_config(root, "bare.shp")


def unknown_key(root: Path) -> Path:
    write_parcels(root / "ok.gpkg")
    return parcels_config(root, "ok.gpkg", layer="max_rejected: 0.5")


def bad_share(root: Path) -> Path:
    write_parcels(root / "ok.gpkg")
    return parcels_config(root, "ok.gpkg", layer="max_rejected_share: 50%")


GEOMETRY = "geometry.missing"
CASES: list[Case] = [
    Case("all-rejected", all_rejected, error="parcels: all 3 features were rejected, the layer would be empty; top reasons: attribute.required × 3"),
    Case("all-rejected-allowed", all_rejected_allowed, records=(("attribute.required", "rejected", "#0", "parcel_id is missing"),), features={"parcels": 0}),
    Case("share-exceeded", mostly_rejected, error="3 of 4 features were rejected (75 %), more than max_rejected_share 0.5 allows"),
    Case("share-allowed", mostly_rejected_allowed, records=(("attribute.required", "rejected", "#3", "parcel_id is missing"),), features={"parcels": 1}),
    Case("two-point-ring", two_point_ring, records=((GEOMETRY, "rejected", "P-2", "ring 1 (the exterior) has 2 points"),), features={"parcels": 1}),
    Case("unclosed-ring-gpkg", unclosed_ring_gpkg, records=((GEOMETRY, "rejected", "P-2", "ring 1 (the exterior) is not closed"),), features={"parcels": 1}),
    Case("nan-coordinates", nan_coordinates, records=((GEOMETRY, "rejected", "P-2", "NaN or infinite coordinate"),), features={"parcels": 1}),
    Case("nan-wkt", nan_wkt, records=((GEOMETRY, "rejected", "P-2", "NaN or infinite coordinate"),), features={"parcels": 1}),
    Case("nested-wrongly", nested_wrongly, records=((GEOMETRY, "rejected", "P-2", "expected a position [x, y], got 117.17"),), features={"parcels": 1}),
    Case("gdal-refuses-a-number", number_gdal_refuses, records=((GEOMETRY, "rejected", "P-2", "NaN or infinite coordinate"),), features={"parcels": 1}),
    Case("empty-file", empty_file, error="zero.geojson: layer parcels: empty source: the file is empty"),
    Case("no-features", no_features, error="empty source: the file holds no features"),
    Case("no-features-allowed", no_features_allowed, features={"parcels": 0}),
    Case("truncated-geojson", truncated_geojson, error="cannot read the geojson file (truncated or corrupt?)"),
    Case("truncated-gpkg", truncated_gpkg, error="cut.gpkg: layer parcels: cannot read the gpkg file (truncated or corrupt?)"),
    Case("deeply-nested-json", deeply_nested_json, error="deep.geojson: layer parcels: cannot read the geojson file"),
    Case("wrong-gauss-krueger-zone", wrong_zone, error="lie outside the area of use of EPSG:4548"),
    Case("swapped-axes", swapped_axes, error="swapped.csv: layer parcels: feature P-1: coordinates (39.1425, "),
    Case("duplicate-ids", duplicate_ids, records=(("duplicate.id", "flagged", "P-1", "used by an earlier feature"), ("duplicate.geometry", "removed", "P-3", "")), features={"parcels": 2}),
    Case("dbf-cut", dbf_cut, error="cut.dbf is truncated"),
    Case("dbf-garbage-header", dbf_garbage_header, error="garbage.dbf is corrupt: its header does not describe its records"),
    Case("dbf-fewer-records", dbf_fewer_records, error="fewer.dbf has 1 records but fewer.shx indexes 2 shapes"),
    Case("shapefile-without-prj", no_prj, error="the file has no CRS and the config declares none"),
    Case("unknown-config-key", unknown_key, error="parcels.yml: layers.parcels: unknown keys ['max_rejected']"),
    Case("share-not-a-number", bad_share, error="parcels.yml: layers.parcels.max_rejected_share: expected a share between 0 and 1"),
]  # fmt: skip


# -- running a case -----------------------------------------------------------------------------------


def leftovers(store_url: str) -> list[str]:
    """What a build that failed or died may leave behind and a later one must clear: staged release
    files or schemas, DuckDB write-ahead logs, temporary symlinks."""
    if store_url.startswith("postgresql"):
        with psycopg.connect(store_url) as conn:
            staged = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cim_r%' "
                "AND nspname NOT IN (SELECT schema FROM cim.release)"
            ).fetchall()
        return [name for (name,) in staged]
    store = Path(store_url)
    releases = store.parent / f"{store.name}.d" / "releases"
    found = [p.name for p in releases.iterdir() if p.suffix in (".partial", ".wal")] if releases.is_dir() else []
    return found + [p.name for p in store.parent.glob(f".{store.name}.*.link")]


def run_case(case: Case, store_url: str, tmp_path: Path) -> BuildResult | BuildError:
    """Build ``case`` into ``store_url`` (after a first, good release) and check its outcome; returns
    the build's result or its error."""
    good, inputs = tmp_path / "good", tmp_path / case.name
    good.mkdir(parents=True)
    inputs.mkdir(parents=True)
    write_parcels(good / "good.gpkg")
    with open_store(store_url) as store:
        build(load_config(parcels_config(good, "good.gpkg")), store)
        releases, frame = store.releases(), store.read_frame("parcels")
    if case.error is not None:
        with open_store(store_url) as store, pytest.raises(BuildError) as caught:
            build(load_config(case.make(inputs)), store)
        assert case.error in str(caught.value), f"{case.name}: {caught.value}"
        with open_store(store_url) as store:
            assert store.releases() == releases and store.current_number() == releases[-1].number, case.name
            pd.testing.assert_frame_equal(store.read_frame("parcels"), frame)
        assert leftovers(store_url) == [], case.name
        return caught.value
    with open_store(store_url) as store:
        result = build(load_config(case.make(inputs)), store)
        assert result.release.current and result.release.number == releases[-1].number + 1, case.name
        assert {name: store.layer(name).count for name in case.features} == case.features, case.name
    found = [(r.rule, r.action, r.feature, r.reason) for r in result.report.records]
    for rule, action, feature, reason in case.records:
        assert any(f[:3] == (rule, action, feature) and reason in f[3] for f in found), (case.name, found)
    return result
