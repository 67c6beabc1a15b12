"""Tag parsing and conforming source features to a layer spec."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from cim.build.normalise import concat, conform, to_geometry_type
from layers.catalog import CATALOG
from layers.osm_tags import address, coalesce, first_key, parse_bool, parse_int, parse_metres, parse_number, parse_year

SQUARE = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])


def test_parse_metres() -> None:
    raw = pd.Series(["12", "12 m", "12.5", "12,5", " 7.25 metres", "40'", "12 ft", "approx 9", "", None, "-3"])
    expected = [12.0, 12.0, 12.5, 12.5, 7.25, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan]
    assert parse_metres(raw).dtype == "float64"
    np.testing.assert_array_equal(parse_metres(raw).to_numpy(), expected)


def test_parse_numbers_ints_years() -> None:
    assert parse_number(pd.Series(["3", "3.5", "two", None])).tolist()[:2] == [3.0, 3.5]
    lanes = parse_int(pd.Series(["2", " 4 ", "2;3", "2.5", None]))
    assert str(lanes.dtype) == "Int64"
    assert lanes.tolist() == [2, 4, pd.NA, pd.NA, pd.NA]
    years = parse_year(pd.Series(["1887", "1998-05-17", "1890s", "before 1939", "1865;1890", None]))
    assert years.tolist() == [1887, 1998, pd.NA, pd.NA, pd.NA, pd.NA]


def test_parse_bool() -> None:
    oneway = parse_bool(pd.Series(["yes", "no", "-1", "True", "0", "maybe", None]))
    assert str(oneway.dtype) == "boolean"
    assert oneway.tolist() == [True, False, True, True, False, pd.NA, pd.NA]


def test_address_coalesce_first_key() -> None:
    frame = pd.DataFrame(
        {
            "addr:street": ["Annankatu", "Annankatu", None],
            "addr:housenumber": ["13", None, "5"],
            "amenity": [None, "cafe", None],
            "shop": ["bakery", "books", None],
        }
    )
    assert address(frame).tolist() == ["Annankatu 13", "Annankatu", None]
    key, value = first_key(frame, ("amenity", "shop", "tourism"))
    assert key.tolist() == ["shop", "amenity", None]
    assert value.tolist() == ["bakery", "cafe", None]
    merged = coalesce(pd.Series([None, "a", None]), pd.Series(["x", "y", None]))
    assert merged.tolist() == ["x", "a", None]


def test_to_geometry_type_promotes_and_drops() -> None:
    geoms = np.array([SQUARE, MultiPolygon([SQUARE]), Point(0, 0), Polygon(), None, LineString([(0, 0), (1, 1)])], dtype=object)
    out = to_geometry_type(geoms, "MultiPolygon")
    assert [g.geom_type if g is not None else None for g in out] == ["MultiPolygon", "MultiPolygon", None, None, None, None]
    assert out[0].equals(MultiPolygon([SQUARE]))
    lines = to_geometry_type(geoms, "MultiLineString")
    assert [g is not None for g in lines] == [False] * 5 + [True]
    points = to_geometry_type(geoms, "Point")
    assert [g is not None for g in points] == [False, False, True, False, False, False]


def test_conform_builds_the_exact_schema() -> None:
    spec = CATALOG["landuse"]
    index = pd.Index([10, 11, 12])
    geometry = gpd.GeoSeries([SQUARE, SQUARE, LineString([(0, 0), (1, 1)])], index=index, crs=4326)
    values = {"use": pd.Series(["residential", None, "industrial"], index=index), "height_limit_m": pd.Series(["24", "x", "1"], index=index)}
    frame = conform(spec, values, geometry, "test", pd.Series(["way/1", "way/2", "way/3"], index=index))
    # the second lacks the required use, the third is a line
    assert list(frame.columns) == ["use", "zoning_code", "height_limit_m", "far_limit", "source", "source_id", "geometry"]
    assert frame["use"].tolist() == ["residential"]
    assert frame["zoning_code"].tolist() == [None] and frame["zoning_code"].dtype == object
    assert frame["height_limit_m"].tolist() == [24.0]
    assert frame["source"].tolist() == ["test"] and frame["source_id"].tolist() == ["way/1"]
    assert frame.crs.to_epsg() == 4326 and frame.geom_type.tolist() == ["MultiPolygon"]


def test_conform_reprojects_and_rejects_unknown_fields() -> None:
    spec = CATALOG["pois"]
    geometry = gpd.GeoSeries([Point(500000, 6650000)], crs=3067)  # ETRS-TM35FIN, southern Finland
    frame = conform(spec, {"name": pd.Series(["x"])}, geometry, "test", pd.Series(["node/1"]))
    x, y = frame.geometry.iloc[0].coords[0]
    assert 26 < x < 28 and 59 < y < 61
    with pytest.raises(ValueError, match="colour"):
        conform(spec, {"colour": pd.Series(["red"])}, geometry, "test", pd.Series(["node/1"]))


def test_concat_of_nothing_is_an_empty_conformed_frame() -> None:
    frame = concat(CATALOG["water"], [])
    assert len(frame) == 0
    assert list(frame.columns) == ["name", "water_type", "source", "source_id", "geometry"]
    assert frame.crs.to_epsg() == 4326
