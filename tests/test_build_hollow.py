"""A hollow layer is never published, and a bad geometry rejects its feature, not its file.

- A layer whose primary source loses every feature, or more than ``max_rejected_share`` of them, to
  the checks stops the build with a BuildError naming layer, file, how many of how many were
  rejected and the top reasons; nothing is published and the current release stays (both stores,
  single-process and distributed). ``allow_empty`` / ``max_rejected_share`` in the config (top level
  or per layer) let it through. A source without features is the same case.
- Rings of fewer than 4 points, unclosed rings, NaN coordinates, coordinates nested wrongly, unknown
  types: that feature is rejected with a QA record naming it and the reason; the rest builds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pyogrio
import pytest
from support.corpus_builds import OK_RING, polygon, shifted, write_geojson
from test_build_errors import config_for, source, write_parcels

from cim.build import build, load_config, prepare
from cim.build.cluster import connect, use_scale
from cim.build.distributed import Scale
from cim.errors import BuildError
from cim.store import open_store


def schemas(store_url: str) -> list[str]:
    with psycopg.connect(store_url) as conn:
        return sorted(r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cim_r%'"))


def assert_left_as_it_was(store_url: str, releases: list, frame: pd.DataFrame) -> None:
    """The store still has exactly the releases it had, the same current one, and nothing staged."""
    with open_store(store_url) as store:
        assert store.releases() == releases and store.current_number() == releases[-1].number
        pd.testing.assert_frame_equal(store.read_frame("parcels"), frame)
    if store_url.startswith("postgresql"):
        assert schemas(store_url) == [f"cim_r{r.number:04d}" for r in releases]
    else:
        assert not list(Path(store_url + ".d", "releases").glob("*.partial*"))


def with_keys(config: Path, top: str = "", layer: str = "") -> Path:
    """``config`` with loss keys added at the top level and under its layer."""
    text = config.read_text(encoding="utf-8")
    if top:
        text = text.replace("layers:\n", f"{top}\nlayers:\n", 1)
    if layer:
        text = text.replace("    sources:\n", f"    {layer}\n    sources:\n", 1)
    out = config.with_name(f"{config.stem}-{abs(hash((top, layer)))}.yml")
    out.write_text(text, encoding="utf-8")
    return out


@pytest.fixture
def released(store_url: str, tmp_path: Path) -> tuple[list, pd.DataFrame]:
    """Release 1 of good parcels in the store; (releases, parcels frame)."""
    write_parcels(tmp_path / "good.gpkg")
    with open_store(store_url) as store:
        build(load_config(config_for(tmp_path, source("good.gpkg"))), store)
        return store.releases(), store.read_frame("parcels")


@pytest.mark.slow  # builds on a published store (~2 s)
def test_a_layer_that_loses_every_feature_stops_the_build(store_url: str, tmp_path: Path, released) -> None:
    write_geojson(tmp_path / "nopid.geojson", [(None, polygon(shifted(i * 0.002))) for i in range(3)])
    config = config_for(tmp_path, source("nopid.geojson"))
    with open_store(store_url) as store, pytest.raises(BuildError) as caught:
        build(load_config(config), store, report_dir=tmp_path / "qa")
    error = caught.value
    assert (error.file, error.layer, error.feature) == ("nopid.geojson", "parcels", None)
    assert error.reason.startswith("all 3 features were rejected, the layer would be empty; top reasons: ")
    assert "attribute.required × 3 (e.g. feature #0: required field parcel_id is missing)" in error.reason
    assert "(allow_empty: true publishes it empty)" in error.reason
    assert_left_as_it_was(store_url, *released)
    # the QA report of the stopped build lists every rejected feature
    assert error.reason.endswith(f"; every rejected feature is in the QA report {tmp_path / 'qa' / 'qa.md'}")
    qa = json.loads((tmp_path / "qa" / "qa.json").read_text(encoding="utf-8"))
    assert qa["release"] is None and [i["feature"] for i in qa["items"] if i["action"] == "rejected"] == ["#0", "#1", "#2"]

    # allowed per layer, or for every layer: published empty
    for allowed in (with_keys(config, layer="allow_empty: true"), with_keys(config, top="allow_empty: true")):
        with open_store(store_url) as store:
            result = build(load_config(allowed), store)
            assert result.release.current and store.layer("parcels").count == 0
            assert len(result.report.find(rule="attribute.required", action="rejected")) == 3


@pytest.mark.slow  # builds on a published store (~4 s)
def test_a_layer_that_loses_more_than_its_share_stops_the_build(store_url: str, tmp_path: Path, released) -> None:
    rows = [("P-1", polygon(OK_RING))] + [(None, polygon(shifted(i * 0.002))) for i in (1, 2, 3)]
    write_geojson(tmp_path / "mostly.geojson", rows)
    config = config_for(tmp_path, source("mostly.geojson"))
    expected = "3 of 4 features were rejected (75 %), more than max_rejected_share 0.5 allows; top reasons: "
    for refused in (config, with_keys(config, top="max_rejected_share: 0.8", layer="max_rejected_share: 0.7")):
        with open_store(store_url) as store, pytest.raises(BuildError) as caught:
            build(load_config(refused), store)
        assert (caught.value.file, caught.value.layer) == ("mostly.geojson", "parcels")
        assert caught.value.reason.replace("0.7", "0.5").startswith(expected), caught.value.reason
        assert_left_as_it_was(store_url, *released)
    # a layer's own share wins over the top level's; exactly the share is still allowed
    for allowed in (
        with_keys(config, layer="max_rejected_share: 0.8"),
        with_keys(config, top="max_rejected_share: 0.75"),
        with_keys(config, top="max_rejected_share: 0.1", layer="max_rejected_share: 1"),
    ):
        with open_store(store_url) as store:
            result = build(load_config(allowed), store)
            assert store.read_frame("parcels")["parcel_id"].tolist() == ["P-1"]
        assert [r.feature for r in result.report.find(action="rejected")] == ["#1", "#2", "#3"]


@pytest.mark.slow  # builds on a published store (~2 s)
def test_an_empty_source_needs_allow_empty(store_url: str, tmp_path: Path, released) -> None:
    (tmp_path / "none.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    config = config_for(tmp_path, source("none.geojson"))
    with open_store(store_url) as store, pytest.raises(BuildError) as caught:
        build(load_config(config), store)
    assert caught.value.reason.startswith("empty source: the file holds no features (allow_empty: true")
    assert_left_as_it_was(store_url, *released)
    with open_store(store_url) as store:
        build(load_config(with_keys(config, layer="allow_empty: true")), store)
        assert store.layer("parcels").count == 0 and store.current_number() == 2


@pytest.mark.parametrize(
    ("top", "layer", "key", "reason"),
    [
        ("max_rejected_share: 1.5", "", "max_rejected_share", "expected a share between 0 and 1"),
        ("", "max_rejected_share: lots", "layers.parcels.max_rejected_share", "got 'lots'"),
        ("", "max_rejected_share: true", "layers.parcels.max_rejected_share", "got True"),
        ("allow_empty: 1", "", "allow_empty", "expected true or false, got 1"),
        ("", "allow_empty: 'yes'", "layers.parcels.allow_empty", "expected true or false, got 'yes'"),
    ],
)
def test_loss_keys_are_checked(tmp_path: Path, top: str, layer: str, key: str, reason: str) -> None:
    write_parcels(tmp_path / "good.gpkg")
    config = with_keys(config_for(tmp_path, source("good.gpkg")), top=top, layer=layer)
    with pytest.raises(BuildError) as caught:
        load_config(config)
    assert caught.value.file == config.name
    assert caught.value.reason.startswith(f"{key}: ") and reason in caught.value.reason, caught.value.reason


def test_loss_keys_do_not_apply_to_raster_layers(tmp_path: Path) -> None:
    config = tmp_path / "dem.yml"
    config.write_text(
        "city: T\nstorage_crs: 4490\nlayers:\n  dem:\n    allow_empty: true\n    sources:\n      - path: dem.tif\n"
    )
    with pytest.raises(BuildError, match="allow_empty does not apply to raster layers"):
        prepare(load_config(config))


@pytest.fixture(scope="module")
def workers() -> Iterator[Scale]:
    with connect(workers=2, rows_per_partition=1) as scale:
        yield scale


@pytest.mark.slow  # a local dask cluster (~4 s)
def test_the_distributed_build_stops_the_same_way(store_url: str, tmp_path: Path, released, workers: Scale) -> None:
    rows = [("P-1", polygon(OK_RING))] + [(None, polygon(shifted(i * 0.002))) for i in (1, 2, 3)]
    write_geojson(tmp_path / "mostly.geojson", rows)
    config = load_config(config_for(tmp_path, source("mostly.geojson")))
    with pytest.raises(BuildError) as single:
        prepare(config)
    with open_store(store_url) as store, use_scale(workers), pytest.raises(BuildError) as spread:
        build(config, store)
    assert str(spread.value) == str(single.value) and "3 of 4 features were rejected" in str(single.value)
    assert_left_as_it_was(store_url, *released)


# -- a bad geometry rejects its feature ---------------------------------------------------------------

#: (PID, geometry) of a file with two good parcels and broken ones, and per broken one its reason
BROKEN = [
    ("P-1", polygon(OK_RING)),
    ("P-2", polygon(shifted(0.002))),
    ("P-3", polygon([[117.18, 39.14], [117.181, 39.14]])),  # a ring of two points
    ("P-4", polygon(shifted(0.004)[:-1])),  # not closed
    ("P-5", {"type": "Polygon", "coordinates": shifted(0.006)}),  # nested one level too shallow
    ("P-6", {"type": "Polygonal", "coordinates": [shifted(0.008)]}),
    ("P-7", None),  # NaN literal (raw)
]
RAW = {"P-7": '{"type": "Polygon", "coordinates": [[[117.19, 39.14], [NaN, 39.14], [117.191, 39.141], [117.19, 39.14]]]}'}
REASONS = {
    "P-3": "ring 1 (the exterior) has 2 points: a ring needs at least 4, the last repeating the first",
    "P-4": "ring 1 (the exterior) is not closed: it ends at (117.179, 39.1432), not at its first point (117.179, 39.142)",
    "P-5": "ring 1 (the exterior), point 1: expected a position [x, y], got 117.181",
    "P-6": "unknown geometry type 'Polygonal'",
    "P-7": "NaN or infinite coordinate",
}


def built_records(store_url: str, config: Path) -> dict[str, tuple[str, str, str]]:
    with open_store(store_url) as store:
        result = build(load_config(with_keys(config, layer="max_rejected_share: 0.9")), store)
        assert store.read_frame("parcels")["parcel_id"].tolist() == ["P-1", "P-2"]
    return {r.feature: (r.rule, r.action, r.reason) for r in result.report.records}


def assert_rejected_with_reasons(records: dict[str, tuple[str, str, str]], expected: dict[str, str]) -> None:
    assert set(records) == set(expected), records
    for pid, reason in expected.items():
        rule, action, said = records[pid]
        assert (rule, action) == ("geometry.missing", "rejected"), (pid, records[pid])
        assert reason in said, (pid, said)


def test_bad_geometries_in_a_geojson_file_reject_their_features(store_url: str, tmp_path: Path) -> None:
    """GDAL reads the file; GEOS refuses the rings (so the geometries are decoded one by one), GDAL
    drops the wrongly nested and unknown ones (explained from the file), NaN is found after reading."""
    write_geojson(tmp_path / "broken.geojson", BROKEN, RAW)
    records = built_records(store_url, config_for(tmp_path, source("broken.geojson")))
    assert_rejected_with_reasons(records, REASONS)


@pytest.mark.slow  # builds on a published store (~2 s)
def test_a_geojson_file_gdal_refuses_is_read_feature_by_feature(store_url: str, tmp_path: Path) -> None:
    """A number GDAL cannot parse makes it refuse the whole file: the features are then read one by one."""
    raw = {**RAW, "P-8": '{"type": "Point", "coordinates": [1e400, 39.14]}'}
    write_geojson(tmp_path / "refused.geojson", [*BROKEN, ("P-8", None)], raw)
    with pytest.raises(Exception, match="Unrecognized number"):
        pyogrio.read_dataframe(tmp_path / "refused.geojson")
    records = built_records(store_url, config_for(tmp_path, source("refused.geojson")))
    assert_rejected_with_reasons(records, {**REASONS, "P-8": "NaN or infinite coordinate"})


def test_an_unclosed_ring_in_a_geopackage_rejects_its_feature(store_url: str, tmp_path: Path) -> None:
    write_geojson(tmp_path / "rings.geojson", BROKEN[:4])
    meta, table = pyogrio.read_arrow(tmp_path / "rings.geojson")
    pyogrio.write_arrow(table, tmp_path / "rings.gpkg", driver="GPKG", geometry_name=meta["geometry_name"],
                        geometry_type="Polygon", crs=meta["crs"])  # fmt: skip
    records = built_records(store_url, config_for(tmp_path, source("rings.gpkg")))
    assert_rejected_with_reasons(records, {k: REASONS[k] for k in ("P-3", "P-4")})


@pytest.mark.slow  # builds on a published store (~1.5 s)
def test_a_cut_off_geojson_file_is_still_a_file_error(tmp_path: Path) -> None:
    write_geojson(tmp_path / "cut.geojson", BROKEN, RAW)
    text = (tmp_path / "cut.geojson").read_bytes()
    (tmp_path / "cut.geojson").write_bytes(text[: len(text) // 2])
    with pytest.raises(BuildError) as caught:
        prepare(load_config(config_for(tmp_path, source("cut.geojson"))))
    assert (caught.value.file, caught.value.feature) == ("cut.geojson", None)
    assert caught.value.reason.startswith("cannot read the geojson file (truncated or corrupt?)")
