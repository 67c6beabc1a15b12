"""The layer catalog's records (cim/sharing/records.py) on both stores: the lineage of a layer built
from an authoritative source and a verifying one, the records' search (text in Chinese and English,
bbox, datetime over two releases, type, externalIds, ids, sortby, paging), ``city.catalog`` and
``cim catalog``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner
from support.catalog_city import CADASTRE, POIS, SURVEY, CatalogCity, build_catalog_city, file_sha256
from support.postgis import BACKENDS, backend_store

import cim
from cim.errors import BadInput, NotFound
from cim.sharing.commands import catalog
from cim.sharing.lineage import lineage
from cim.sharing.records import catalog_records, find_record, parse_record_id
from cim.sharing.records_search import MAX_TERMS, RecordQuery, search, sort_keys, terms
from cim.store import TimeInterval, open_store


@pytest.fixture(scope="module", params=BACKENDS)
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogCity]:
    with backend_store(request, "records", tmp_path_factory.mktemp("records")) as url:
        yield build_catalog_city(url, tmp_path_factory.mktemp("tianjin"))


@pytest.fixture(scope="module")
def records(city: CatalogCity) -> list[dict]:
    with open_store(city.url) as store:
        return catalog_records(store, "http://example.test")


def _ids(found: list[dict]) -> list[str]:
    return [r["id"] for r in found]


def test_one_record_per_built_layer_per_release(records: list[dict]) -> None:
    layers = {"buildings", "parcels", "roads", "landuse", "pois", "water"}
    assert sorted(_ids(records)) == sorted(f"{layer}@r{n}" for layer in layers for n in (1, 2))
    assert not any(r["properties"]["layer"] == "warnings" for r in records)  # a live layer has no build
    assert _ids(records)[0].endswith("@r2")  # newest release first


def test_record_core_properties(records: list[dict], city: CatalogCity) -> None:
    rec = next(r for r in records if r["id"] == "buildings@r2")
    assert rec["type"] == "Feature" and rec["conformsTo"] == ["http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"]
    p = rec["properties"]
    assert p["type"] == "dataset" and p["title"] == "Buildings"
    assert {"建筑物", "building"} <= set(p["keywords"])
    assert p["themes"][0]["concepts"][0]["id"] == "时空基础"
    assert p["featureCount"] == 5 and p["crs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    assert {f["mediaType"] for f in p["formats"]} == {"application/geopackage+sqlite3", "application/vnd.apache.parquet", "application/flatgeobuf"}
    ring = rec["geometry"]["coordinates"][0]
    assert 117.17 < ring[0][0] < ring[2][0] < 117.20 and 39.12 < ring[0][1] < ring[2][1] < 39.15
    # time: release 2 is the newest since it was made; release 1 was from its creation until then
    first, second = (c.isoformat() for c in city.created)
    assert rec["time"]["interval"] == [second, ".."]
    assert next(r for r in records if r["id"] == "buildings@r1")["time"]["interval"] == [first, second]


def test_lineage_of_a_layer_with_an_authoritative_and_a_verifying_source(records: list[dict], city: CatalogCity) -> None:
    lineage = next(r for r in records if r["id"] == "buildings@r2")["properties"]["lineage"]
    survey, cadastre = lineage["sources"]
    assert (survey["path"], survey["file"], survey["format"], survey["role"]) == (SURVEY, "buildings_survey.shp", "shapefile", "authoritative")
    assert (cadastre["path"], cadastre["format"], cadastre["role"]) == (CADASTRE, "gpkg", "verifies")
    # CRS: the survey's from its .prj (nothing declared); the cadastre's declared in the config and in the file
    assert (survey["declaredCrs"], survey["embeddedCrs"], survey["crs"]) == (None, "EPSG:4548", "EPSG:4548")
    assert (cadastre["declaredCrs"], cadastre["embeddedCrs"], cadastre["crs"]) == ("EPSG:4527", "EPSG:4527", "EPSG:4527")
    assert survey["sha256"] == file_sha256(city.root / SURVEY) == city.second[SURVEY]
    assert cadastre["sha256"] == file_sha256(city.root / CADASTRE)
    # the Shapefile's sidecars are part of its source, each with its checksum
    assert {f["name"] for f in survey["files"]} >= {SURVEY, "data/buildings_survey.dbf", "data/buildings_survey.prj"}
    assert all(f["sha256"] == file_sha256(city.root / f["name"]) for f in survey["files"])
    assert (survey["featuresRead"], survey["featuresKept"]) == (7, 5)
    assert (cadastre["featuresRead"], cadastre["featuresFilteredOut"], cadastre["featuresKept"]) == (4, 1, 4)
    assert "crosscheck" not in survey
    check = cadastre["crosscheck"]
    assert (check["compared"], check["matched"], check["matchedShare"]) == (4, 3, 0.75)
    assert (check["missingInAuthoritative"], check["conflicts"], check["verifies"]) == (1, 1, SURVEY)
    assert check["tolerance"] == {"minIoU": 0.5, "maxDistanceMetres": 5.0, "tolerances": {"height_m": 3.0}}
    assert cadastre["findings"] == {"crosscheck.missing_in_primary": 1}
    assert lineage["qa"]["byRule"] == {
        "crosscheck.conflict": {"flagged": 1},
        "crosscheck.missing_in_primary": {"flagged": 1},
        "duplicate.geometry": {"removed": 1},
        "geometry.invalid": {"rejected": 1, "repaired": 1},
    }
    assert lineage["qa"]["findings"] == 5
    assert lineage["configFile"] == "tianjin.yml" and lineage["builtInRelease"] == 2
    assert lineage["config"]["crosscheck"] == {"min_iou": 0.5, "tolerances": {"height_m": 3}}
    assert [s["path"] for s in lineage["config"]["sources"]] == [SURVEY, CADASTRE]
    assert lineage["buildTime"].startswith(city.created[1].strftime("%Y-%m-%d"))
    assert "carriedFrom" not in lineage


def test_links_of_current_and_past_records(records: list[dict]) -> None:
    now = {(link["rel"], link["href"]) for link in next(r for r in records if r["id"] == "buildings@r2")["links"]}
    base = "http://example.test"
    assert ("self", f"{base}/collections/catalog/items/buildings@r2") in now
    assert ("describes", f"{base}/collections/buildings") in now
    assert ("items", f"{base}/collections/buildings/items") in now
    assert ("http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", f"{base}/collections/buildings/tiles") in now
    assert ("related", f"{base}/collections/buildings/changes?from=1&to=2") in now
    assert {href for rel, href in now if rel == "enclosure"} == {
        f"{base}/collections/buildings/downloads/{fmt}" for fmt in ("gpkg", "parquet", "fgb")
    }
    past = next(r for r in records if r["id"] == "buildings@r1")["links"]
    assert {link["href"] for link in past if link["rel"] == "enclosure"} == {
        f"{base}/collections/buildings/downloads/{fmt}?release=1" for fmt in ("gpkg", "parquet", "fgb")
    }
    assert not any(link["rel"] in ("describes", "items", "related") for link in past)  # not served now; no earlier release
    types = {link["title"].rsplit(" ", 1)[-1]: link["type"] for link in past if link["rel"] == "enclosure"}
    assert types == {"GeoPackage": "application/geopackage+sqlite3", "GeoParquet": "application/vnd.apache.parquet", "FlatGeobuf": "application/flatgeobuf"}


@pytest.mark.parametrize(
    ("q", "layers"),
    [
        ("建筑", {"buildings"}),  # a part of 建筑物
        ("BUILDING", {"buildings"}),
        ("兴趣点 water", {"pois", "water"}),  # any term
        ("规划管控", {"parcels", "landuse"}),  # the theme
        ("buildings_cadastre", {"buildings"}),  # a source file
        ("nothing-like-this", set()),
    ],
)
def test_search_by_text(records: list[dict], q: str, layers: set[str]) -> None:
    found, matched = search(records, RecordQuery(terms=terms(q), limit=100))
    assert {r["properties"]["layer"] for r in found} == layers and matched == len(found)


def test_search_by_bbox_datetime_type_ids(records: list[dict], city: CatalogCity) -> None:
    def ids(**kw) -> list[str]:
        return sorted(_ids(search(records, RecordQuery(limit=100, **kw))[0]))

    assert ids(bbox=(117.17, 39.12, 117.20, 39.15)) == sorted(_ids(records))
    assert ids(bbox=(10.0, 10.0, 11.0, 11.0)) == []
    assert ids(bbox=(170.0, 39.0, 117.18, 40.0)) == sorted(_ids(records))  # across the antimeridian
    first, second = city.created
    between = first + (second - first) / 2
    assert {i.split("@")[1] for i in ids(interval=TimeInterval(between, between))} == {"r1"}
    assert {i.split("@")[1] for i in ids(interval=TimeInterval(second + timedelta(days=1), None))} == {"r2"}
    assert {i.split("@")[1] for i in ids(interval=TimeInterval(first - timedelta(days=1), first - timedelta(hours=1)))} == set()
    assert {i.split("@")[1] for i in ids(interval=TimeInterval(None, second))} == {"r1", "r2"}
    assert ids(types=("dataset",)) == sorted(_ids(records)) and ids(types=("service",)) == []
    assert ids(ids=("pois@r1", "roads@r2", "nope@r1")) == ["pois@r1", "roads@r2"]


def test_external_ids_find_the_records_built_from_a_file(records: list[dict], city: CatalogCity) -> None:
    def ids(*values: str) -> list[str]:
        return sorted(_ids(search(records, RecordQuery(external_ids=values, limit=100))[0]))

    assert ids(city.second[SURVEY]) == ["buildings@r1", "buildings@r2"]  # unchanged between the builds
    assert ids(f"sha256:{city.first[POIS]}") == ["pois@r1"]
    assert ids(city.second[POIS].upper()) == ["pois@r2"]
    assert ids("md5:" + city.second[POIS]) == []


def test_sortby_and_paging(records: list[dict]) -> None:
    titles = [r["properties"]["title"] for r in search(records, RecordQuery(sortby=sort_keys("title,-release"), limit=100))[0]]
    assert titles == sorted(titles, key=str.casefold)
    down = search(records, RecordQuery(sortby=sort_keys("-count,+layer"), limit=100))[0]
    counts = [r["properties"]["featureCount"] for r in down]
    assert counts == sorted(counts, reverse=True)
    by_release = _ids(search(records, RecordQuery(sortby=sort_keys("+release,layer"), limit=100))[0])
    assert by_release[:6] == sorted(i for i in by_release if i.endswith("@r1"))
    pages = [search(records, RecordQuery(sortby=sort_keys("layer,release"), limit=5, offset=o)) for o in (0, 5, 10)]
    assert [len(p) for p, _ in pages] == [5, 5, 2] and all(m == 12 for _, m in pages)
    assert sum((_ids(p) for p, _ in pages), []) == _ids(search(records, RecordQuery(sortby=sort_keys("layer,release"), limit=100))[0])


def test_bounds_of_the_query() -> None:
    with pytest.raises(BadInput, match="q has 10240 characters"):
        terms("x" * 10240)
    with pytest.raises(BadInput, match=f"at most {MAX_TERMS}"):
        terms(" ".join(f"t{i}" for i in range(MAX_TERMS + 1)))
    with pytest.raises(BadInput, match="sortables are"):
        sort_keys("height")
    for bad in ("buildings", "buildings@r0", "buildings@r01", "Buildings@r1", "../x@r1", "b@r1@r2", "a" * 100 + "@r1"):
        with pytest.raises(NotFound):
            parse_record_id(bad)
    assert str(parse_record_id("admin_divisions@r12")) == "admin_divisions@r12"


def test_find_record(city: CatalogCity) -> None:
    with open_store(city.url) as store:
        assert find_record(store, "pois@r1")["properties"]["release"] == 1
        with pytest.raises(NotFound, match="no built layer 'dem'"):
            find_record(store, "dem@r1")
        with pytest.raises(NotFound, match="no release 7"):
            find_record(store, "pois@r7")


def test_city_catalog(city: CatalogCity) -> None:
    with cim.open(city.url) as c:
        assert _ids(c.catalog()) == [f"{layer}@r2" for layer in ("landuse", "water", "parcels", "roads", "buildings", "pois")]
        assert _ids(c.catalog(q="兴趣点", all_releases=True)) == ["pois@r2", "pois@r1"]
        assert _ids(c.catalog(external_ids=[city.first[POIS]], all_releases=True)) == ["pois@r1"]
        assert _ids(c.catalog(release=1, sortby="-count", limit=1)) == ["buildings@r1"]
        assert len(c.catalog(datetime=city.created[0], all_releases=True)) == 6


def test_cim_catalog_command(city: CatalogCity) -> None:
    runner = CliRunner()
    table = runner.invoke(catalog, ["--store", city.url, "-q", "building"], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "buildings@r2" in table.output and "buildings_survey.shp" in table.output and "verifies" in table.output
    assert "buildings@r1" not in table.output  # the current release unless told
    out = runner.invoke(catalog, ["--store", city.url, "--all", "--json", "--external-id", city.first[POIS]])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["type"] == "FeatureCollection" and doc["numberMatched"] == 1
    assert doc["features"][0]["id"] == "pois@r1"
    assert doc["features"][0]["properties"]["lineage"]["sources"][0]["declaredCrs"] == "GCJ-02"
    assert doc["features"][0]["links"][0]["href"] == "/collections/catalog/items/pois@r1"
    bad = runner.invoke(catalog, ["--store", city.url, "--bbox", "1,2,3"])
    assert bad.exit_code != 0 and "--bbox" in str(bad.exception)
    assert runner.invoke(catalog, ["--store", city.url, "--release", "1", "--all"]).exit_code == 2


def test_records_hold_no_feature_values(records: list[dict]) -> None:
    """A record carries counts, extents, checksums and config; never an attribute value of a feature."""
    text = json.dumps(records, ensure_ascii=False)
    for value in ("鼓楼", "Tower A", "咖啡馆", "海河", "120101-001"):  # names and ids in the sources
        assert value not in text


def test_a_carried_layer_has_the_lineage_of_the_release_that_built_it(city: CatalogCity) -> None:
    """An incremental build records ``cim_build.layers.<name>.carried_from`` and reads nothing of a
    carried layer: its record says so and takes the sources, QA and config of the release that built it."""
    with open_store(city.url) as store:
        first, second = store.releases()
    by_source = {k: v for k, v in second.qa["by_source"].items() if not k.startswith("buildings/")}
    carried = replace(
        second,
        config={**second.config, "cim_build": {"layers": {"buildings": {"carried_from": 1}}}},
        qa={**second.qa, "by_source": by_source, "crosschecks": [], "by_layer": {}},
    )
    result = lineage(carried, "buildings", {1: first, 2: carried})
    assert result["carriedFrom"] == 1 and result["builtInRelease"] == 1 and "carried over unchanged from release 1" in result["carried"]
    assert [s["role"] for s in result["sources"]] == ["authoritative", "verifies"]
    assert result["sources"][0]["sha256"] == city.first[SURVEY]
    assert result["sources"][1]["crosscheck"]["matched"] == 3 and result["qa"]["findings"] == 5
    # the release that built it pruned away: the record still says where the layer was carried from
    alone = lineage(carried, "buildings", {2: carried})
    assert alone["carriedFrom"] == 1 and alone["sources"] == [] and "no longer kept" in alone["carried"]
