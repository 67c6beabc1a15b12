"""The measure process (cim/analysis/measure.py): geodesic area, perimeter, length and distance on the
CGCS2000 ellipsoid, against hand-checked values (a degree of the equator is a·π/180; a 1 km square
drawn in Gauss-Krüger on its central meridian, where the scale is 1, is 1 km² to a millionth) and an
independent pyproj Geod on GRS80; through the function, the Python API and the process (JSON inputs)."""

from __future__ import annotations

import math

import pytest
import shapely
from pyproj import Geod, Transformer
from support.planning_stores import check_outputs

import cim
from cim.analysis.measure import measure
from cim.errors import BadInput
from cim.processes import get_process, no_progress

GRS80 = Geod(ellps="GRS80")
GK = "http://www.opengis.net/def/crs/EPSG/0/4548"
#: a point on the central meridian (117°E) of EPSG:4548, near Tianjin
E0, N0 = 500_000.0, 4_330_000.0
TO_LONLAT = Transformer.from_crs(4548, 4326, always_xy=True)


def gk_square(x: float, y: float, side: float) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]


def lonlat_ring(ring: list[list[float]]) -> list[list[float]]:
    return [list(TO_LONLAT.transform(x, y)) for x, y in ring]


def test_distance_along_the_equator() -> None:
    out = measure({"type": "MultiPoint", "coordinates": [[0.0, 0.0], [1.0, 0.0]]})
    assert out["distance_m"] == pytest.approx(6_378_137 * math.pi / 180, abs=1e-6)  # 111 319.490 793 m
    assert out["azimuth_deg"] == pytest.approx(90.0)
    assert out["geometry_type"] == "MultiPoint"
    assert out["crs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert "CGCS2000" in out["ellipsoid"]
    assert set(out) == {"geometry_type", "crs", "ellipsoid", "distance_m", "azimuth_deg"}


def test_distance_between_two_points_in_any_form() -> None:
    a, b = (117.20, 39.13), (117.25, 39.10)
    _, _, expected = GRS80.inv(*a, *b)
    assert measure([a, b])["distance_m"] == pytest.approx(expected, rel=1e-9)
    assert measure([shapely.Point(a), {"type": "Point", "coordinates": list(b)}])["distance_m"] == pytest.approx(expected, rel=1e-9)
    assert measure(f"MULTIPOINT (({a[0]} {a[1]}), ({b[0]} {b[1]}))")["distance_m"] == pytest.approx(expected, rel=1e-9)
    north = measure({"type": "MultiPoint", "coordinates": [[E0, N0], [E0, N0 + 1000]]}, crs=GK)  # 1 km north along the central meridian
    assert north["distance_m"] == pytest.approx(1000.0, rel=1e-6)
    assert north["azimuth_deg"] == pytest.approx(0.0, abs=1e-6) or north["azimuth_deg"] == pytest.approx(360.0, abs=1e-6)
    assert north["crs"] == GK


def test_area_and_perimeter_of_a_square_kilometre() -> None:
    square = {"type": "Polygon", "coordinates": [gk_square(E0, N0, 1000)]}
    out = measure(square, crs=GK)
    assert out["area_m2"] == pytest.approx(1_000_000, rel=1e-6)
    assert out["perimeter_m"] == pytest.approx(4_000, rel=1e-6)
    ring = lonlat_ring(gk_square(E0, N0, 1000))
    area, perimeter = GRS80.polygon_area_perimeter([p[0] for p in ring], [p[1] for p in ring])
    lonlat = measure({"type": "Polygon", "coordinates": [ring]})
    assert lonlat["area_m2"] == pytest.approx(abs(area), rel=1e-9)
    assert lonlat["perimeter_m"] == pytest.approx(perimeter, rel=1e-9)
    clockwise = measure({"type": "Polygon", "coordinates": [ring[::-1]]})  # orientation does not matter
    assert clockwise["area_m2"] == pytest.approx(lonlat["area_m2"], rel=1e-12)


def test_area_with_a_hole_and_of_several_polygons() -> None:
    outer, hole = gk_square(E0, N0, 1000), gk_square(E0 + 100, N0 + 100, 100)
    out = measure({"type": "Polygon", "coordinates": [outer, hole]}, crs=GK)
    assert out["area_m2"] == pytest.approx(990_000, rel=1e-6)
    assert out["perimeter_m"] == pytest.approx(4_400, rel=1e-6)  # every ring
    two = measure({"type": "MultiPolygon", "coordinates": [[gk_square(E0, N0, 1000)], [gk_square(E0 + 2000, N0, 500)]]}, crs=GK)
    assert two["area_m2"] == pytest.approx(1_250_000, rel=1e-6)


def test_length_of_lines() -> None:
    line = {"type": "LineString", "coordinates": [[E0, N0 + 150], [E0 + 2000, N0 + 150]]}  # planning_city's primary road
    assert measure(line, crs=GK)["length_m"] == pytest.approx(2_000, rel=1e-6)
    coords = [[117.0, 39.0], [117.1, 39.05], [117.2, 39.0]]
    expected = sum(GRS80.inv(*coords[i], *coords[i + 1])[2] for i in range(2))
    assert measure({"type": "LineString", "coordinates": coords})["length_m"] == pytest.approx(expected, rel=1e-9)
    multi = measure(shapely.MultiLineString([coords, [[117.0, 39.2], [117.0, 39.3]]]))
    assert multi["length_m"] == pytest.approx(expected + GRS80.inv(117.0, 39.2, 117.0, 39.3)[2], rel=1e-9)
    assert set(multi) == {"geometry_type", "crs", "ellipsoid", "length_m"}


def test_measure_process() -> None:
    process = get_process("measure")
    assert (process.role, process.sync, process.domain) == (None, True, "city-management")
    outputs = process.run(None, {"geometry": {"type": "Polygon", "coordinates": [gk_square(E0, N0, 1000)]}, "crs": GK}, no_progress)
    check_outputs(process, outputs)
    assert outputs["measurement"]["area_m2"] == pytest.approx(1_000_000, rel=1e-6)
    distance = process.run(None, process.example, no_progress)["measurement"]
    (a, b) = process.example["geometry"]["coordinates"]
    assert distance["distance_m"] == pytest.approx(GRS80.inv(*a, *b)[2], rel=1e-9)


def test_every_example_is_valid_against_its_schemas() -> None:
    """The examples the descriptions carry (docs, OpenAPI) are valid inputs."""
    import jsonschema

    for pid in ("building-at-point", "buildings-in-area", "parcel-at-point", "zoning-compliance", "landuse-by-district", "measure"):
        process = get_process(pid)
        for name, value in process.example.items():
            jsonschema.validate(value, process.inputs[name]["schema"])
        required = {name for name, spec in process.inputs.items() if spec["minOccurs"] > 0}
        assert required <= set(process.example), pid


def test_measure_through_the_python_api(tmp_path) -> None:
    """city.measure needs no layer: the planned city's store, whatever it holds."""
    from support.planning_city import publish_planning_city

    url = str(tmp_path / "c.duckdb")
    publish_planning_city(url)
    with cim.open(url) as city:
        out = city.measure({"type": "LineString", "coordinates": [[E0, N0], [E0, N0 + 300]]}, crs=GK)
        assert out["length_m"] == pytest.approx(300.0, rel=1e-6)


@pytest.mark.parametrize(
    ("geometry", "crs", "message"),
    [
        ({"type": "Point", "coordinates": [117.0, 39.0]}, None, "1 point has nothing to measure"),
        ({"type": "MultiPoint", "coordinates": [[117.0, 39.0], [117.1, 39.0], [117.2, 39.0]]}, None, "3 points has nothing"),
        ({"type": "GeometryCollection", "geometries": []}, None, "not 'GeometryCollection'"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, None, "not valid: Self-intersection"),
        ({"type": "Polygon", "coordinates": "x"}, None, "not valid GeoJSON"),
        ("LINESTRING EMPTY", None, "empty LineString"),
        ("LINESTRING (0 0, 1", None, "not valid WKT"),
        ({"type": "LineString", "coordinates": [[117.0, 95.0], [117.0, 96.0]]}, None, "outside longitude"),
        ({"type": "LineString", "coordinates": [[117.0, 39.0], [117.0, 39.1]]}, "EPSG:999999", "unknown CRS"),
        (42, None, "not int"),
    ],
)
def test_measure_bad_input(geometry, crs, message) -> None:
    with pytest.raises(BadInput, match=message):
        get_process("measure").run(None, {"geometry": geometry, **({"crs": crs} if crs else {})}, no_progress)
