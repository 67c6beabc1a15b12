"""The analyst's API: ``cim.open(url)`` and ``city.read(...)`` on the demo store, both backends."""

from __future__ import annotations

from typing import Iterator

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

import cim
import cim.errors
from layers.catalog import CATALOG

DEMO_LAYERS = {"buildings", "roads", "landuse", "pois", "water", "parcels", "admin_divisions", "warnings"}  # warnings: the live layer every store has
HELSINKI = (24.93, 60.16, 24.96, 60.18)
CENTRAL = (24.94, 60.165, 24.95, 60.175)
TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


@pytest.fixture(scope="module")
def city(demo_store_url: str) -> Iterator[cim.City]:
    with cim.open(demo_store_url) as city:
        yield city


@pytest.fixture(scope="module")
def buildings(city: cim.City) -> gpd.GeoDataFrame:
    return city.read("buildings")


def intersecting(frame: gpd.GeoDataFrame, area: shapely.Geometry) -> set[int]:
    return set(frame.index[frame.geometry.intersects(area)])


def test_layers(city: cim.City) -> None:
    assert set(city.layers) == DEMO_LAYERS
    assert city.release is not None and city.release.current and city.release.number == 1


def test_read_whole_layer(city: cim.City, buildings: gpd.GeoDataFrame) -> None:
    expected = [f.name for f in CATALOG["buildings"].fields] + ["source", "source_id"]
    assert isinstance(buildings, gpd.GeoDataFrame)
    assert len(buildings) > 2500
    assert len(buildings) == city.info("buildings").count  # the count measured when the release was built
    assert buildings.crs.to_epsg() == 4326
    assert list(buildings.columns) == expected + ["geometry"]
    assert buildings.index.name == "fid" and buildings.index.is_unique
    assert set(buildings.geom_type) == {"MultiPolygon"}
    minx, miny, maxx, maxy = buildings.total_bounds
    assert 24.5 < minx < maxx < 27.5 and 60.0 < miny < maxy < 60.7  # lon/lat order


@pytest.mark.parametrize("bbox", [HELSINKI, CENTRAL], ids=["helsinki", "central"])
def test_read_bbox(city: cim.City, buildings: gpd.GeoDataFrame, bbox: tuple[float, ...]) -> None:
    part = city.read("buildings", bbox=bbox)
    area = shapely.box(*bbox)
    assert 0 < len(part) < len(buildings)
    assert part.geometry.intersects(area).all()
    # exactly the features intersecting the bbox: none missing
    assert set(part.index) == intersecting(buildings, area)


def test_read_in_cgcs2000(city: cim.City, buildings: gpd.GeoDataFrame) -> None:
    part = city.read("buildings", crs="EPSG:4490")
    assert part.crs.to_epsg() == 4490
    assert len(part) == len(buildings)
    # still x = longitude, y = latitude (never the authority's lat/lon order in a GeoDataFrame)
    xy = shapely.get_coordinates(part.geometry.values)
    assert ((24.5 < xy[:, 0]) & (xy[:, 0] < 27.5)).all() and ((60.0 < xy[:, 1]) & (xy[:, 1] < 60.7)).all()
    # CGCS2000 and WGS 84 agree to well under a metre here
    assert list(part.index) == list(buildings.index)
    assert np.allclose(xy, shapely.get_coordinates(buildings.geometry.values), atol=1e-6)


def test_read_in_web_mercator(city: cim.City, buildings: gpd.GeoDataFrame) -> None:
    part = city.read("buildings", crs="EPSG:3857")
    assert part.crs.to_epsg() == 3857
    assert list(part.index) == list(buildings.index)
    lon, lat = shapely.get_coordinates(buildings.geometry.values).T
    expected = np.column_stack(TO_MERCATOR.transform(lon, lat))
    got = shapely.get_coordinates(part.geometry.values)
    assert np.allclose(got, expected, atol=0.01)  # metres
    assert 2.7e6 < got[:, 0].min() < got[:, 0].max() < 3.1e6


def test_read_bbox_in_other_crs(city: cim.City, buildings: gpd.GeoDataFrame) -> None:
    bbox_3857 = TO_MERCATOR.transform_bounds(*CENTRAL)
    part = city.read("buildings", bbox=bbox_3857, bbox_crs="EPSG:3857")
    # a Web Mercator rectangle is a lon/lat rectangle: compare with the features intersecting it,
    # allowing for rounding at its edges (~1 cm)
    lonlat = TO_MERCATOR.transform_bounds(*bbox_3857, direction="INVERSE")
    eps = 1e-7
    inner = shapely.box(lonlat[0] + eps, lonlat[1] + eps, lonlat[2] - eps, lonlat[3] - eps)
    outer = shapely.box(lonlat[0] - eps, lonlat[1] - eps, lonlat[2] + eps, lonlat[3] + eps)
    assert intersecting(buildings, inner) <= set(part.index) <= intersecting(buildings, outer)
    assert 0 < len(part) < len(buildings)

    # the same bbox with the result in Web Mercator too: every feature meets the rectangle as given
    projected = city.read("buildings", bbox=bbox_3857, bbox_crs="EPSG:3857", crs="EPSG:3857")
    assert set(projected.index) == set(part.index)
    assert projected.geometry.intersects(shapely.box(*bbox_3857).buffer(0.01)).all()


def test_read_limit(city: cim.City, buildings: gpd.GeoDataFrame) -> None:
    part = city.read("buildings", limit=7)
    assert list(part.index) == list(buildings.index[:7])


def test_unknown_layer(city: cim.City) -> None:
    with pytest.raises(cim.errors.LayerNotFound, match="nope"):
        city.read("nope")


def test_unknown_store() -> None:
    with pytest.raises(cim.errors.StoreError, match="unknown store"):
        cim.open("x.txt")
