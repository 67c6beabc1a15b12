"""A small synthetic Tianjin for the build tests: the source files ``examples/tianjin.yml`` names.

Every source is written in another format and CRS from the same true CGCS2000 lon/lat positions
(around the Drum Tower, 117.17–117.20°E, 39.12–39.15°N), with defects injected on purpose:

- buildings_survey.shp (EPSG:4548, GK zone 39 without prefix; primary): TJ-B005 a bow-tie (repaired),
  TJ-B006 collapsed to a line (unrepairable, rejected), TJ-B007 a duplicate of TJ-B001 (removed);
- buildings_cadastre.gpkg (EPSG:4527, with zone prefix; layer ``buildings`` beside ``survey_notes``;
  verifies the survey): C-2 says 45 m where the survey says 24 m (conflict), C-9 is missing from the
  survey, C-8 is demolished (filtered out by ``where``);
- parcels.geojson (EPSG:4326): P-03 has no parcel id (rejected), P-02's plot ratio is "n/a" (cleared);
- roads.fgb (EPSG:3857), zoning.parquet (GeoParquet, EPSG:4490);
- pois_amap.csv (GCJ-02, lon/lat columns): POI-3 has no usable coordinates (rejected);
- water_baidu.csv (BD-09, WKT column).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import prcoords
import pyogrio
import shapely
from pyproj import Transformer
from shapely import affinity

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tianjin.yml"
HALF = 0.0001  # half a building's width in degrees (about 9 m east-west, 11 m north-south)


def square(lon: float, lat: float, half: float = HALF) -> shapely.Polygon:
    return shapely.box(lon - half, lat - half, lon + half, lat + half)


#: true footprints of the surveyed buildings (lon/lat, CGCS2000)
BUILDINGS: dict[str, shapely.Geometry] = {
    "TJ-B001": square(117.1755, 39.1425),
    "TJ-B002": square(117.1790, 39.1440),
    "TJ-B003": square(117.1820, 39.1410),
    "TJ-B004": square(117.1850, 39.1380),
    "TJ-B005": shapely.Polygon([(117.1880, 39.1300), (117.1884, 39.1304), (117.1884, 39.1300), (117.1880, 39.1304)]),
    # a ring that retraces itself: no area at all, make_valid leaves only lines
    "TJ-B006": shapely.Polygon([(117.1900, 39.1300), (117.1904, 39.1304), (117.1906, 39.1302), (117.1904, 39.1304)]),
    "TJ-B007": square(117.1755, 39.1425),
}
MISSING_FROM_SURVEY = square(117.1930, 39.1250)
PARCEL = shapely.box(117.1750, 39.1420, 117.1762, 39.1432)
ROAD = shapely.LineString([(117.1740, 39.1420), (117.1770, 39.1421), (117.1800, 39.1420)])
ZONE = shapely.box(117.1740, 39.1400, 117.1830, 39.1450)
POI = shapely.Point(117.1757, 39.1427)
RIVER = shapely.Polygon([(117.1800, 39.1300), (117.1950, 39.1320), (117.1950, 39.1330), (117.1800, 39.1310)])


def _prcoords(forward: Callable[..., prcoords.Coords]) -> Callable[[np.ndarray], np.ndarray]:
    def apply(coords: np.ndarray) -> np.ndarray:
        out = np.empty_like(coords)
        for i, (lon, lat) in enumerate(coords):
            c = forward((lat, lon))
            out[i] = (c.lon, c.lat)
        return out

    return apply


def to_crs(geom: shapely.Geometry, crs: str) -> shapely.Geometry:
    """``geom`` (true CGCS2000 lon/lat) in ``crs``: an EPSG code, or GCJ-02 / BD-09 via prcoords' forward offsets."""
    if crs == "GCJ-02":
        return shapely.transform(geom, _prcoords(prcoords.wgs_gcj))
    if crs == "BD-09":
        return shapely.transform(geom, _prcoords(prcoords.wgs_bd))
    transformer = Transformer.from_crs("EPSG:4490", crs, always_xy=True)
    return shapely.transform(geom, lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))


def _frame(rows: list[dict[str, object]], geoms: list[shapely.Geometry], crs: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=[to_crs(g, crs) for g in geoms], crs=crs)


def write_city(root: Path) -> Path:
    """Write every source of examples/tianjin.yml under ``root/data`` and the config as ``root/tianjin.yml``."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    survey = [
        {"BLDG_ID": "TJ-B001", "NAME": "鼓楼", "USE": "culture", "HEIGHT": 27.0, "FLOORS": 3},
        {"BLDG_ID": "TJ-B002", "NAME": "Tower A", "USE": "office", "HEIGHT": 24.0, "FLOORS": 8},
        {"BLDG_ID": "TJ-B003", "NAME": "Block 3", "USE": "residential", "HEIGHT": 30.0, "FLOORS": 10},
        {"BLDG_ID": "TJ-B004", "NAME": "Shop", "USE": "retail", "HEIGHT": 12.0, "FLOORS": 3},
        {"BLDG_ID": "TJ-B005", "NAME": "Bow-tie", "USE": "retail", "HEIGHT": 6.0, "FLOORS": 2},
        {"BLDG_ID": "TJ-B006", "NAME": "Collapsed", "USE": "storage", "HEIGHT": 4.0, "FLOORS": 1},
        {"BLDG_ID": "TJ-B007", "NAME": "鼓楼", "USE": "culture", "HEIGHT": 27.0, "FLOORS": 3},
    ]
    pyogrio.write_dataframe(
        _frame(survey, list(BUILDINGS.values()), "EPSG:4548"), data / "buildings_survey.shp", encoding="UTF-8"
    )

    shifted = affinity.translate(BUILDINGS["TJ-B001"], xoff=0.3 / 86_300)  # 0.3 m east
    cadastre = [
        ({"code": "C-1", "height": 28.0, "status": "current"}, shifted),
        ({"code": "C-2", "height": 45.0, "status": "current"}, BUILDINGS["TJ-B002"]),
        ({"code": "C-3", "height": 30.0, "status": "current"}, BUILDINGS["TJ-B003"]),
        ({"code": "C-8", "height": 9.0, "status": "demolished"}, square(117.1960, 39.1230)),
        ({"code": "C-9", "height": 15.0, "status": "current"}, MISSING_FROM_SURVEY),
    ]
    gpkg = data / "buildings_cadastre.gpkg"
    gpkg.unlink(missing_ok=True)
    pyogrio.write_dataframe(
        _frame([r for r, _ in cadastre], [g for _, g in cadastre], "EPSG:4527"), gpkg, layer="buildings"
    )
    notes = _frame([{"note": "checked 2024-05"}], [shapely.Point(117.18, 39.13)], "EPSG:4527")
    pyogrio.write_dataframe(notes, gpkg, layer="survey_notes")

    parcels = [
        {"PID": "120101-001", "LANDUSE": "R2", "AREA": 12500.0, "FAR": "1.8"},
        {"PID": "120101-002", "LANDUSE": "B1", "AREA": 8000.0, "FAR": "n/a"},
        {"PID": None, "LANDUSE": "G1", "AREA": 900.0, "FAR": "0.1"},
    ]
    geoms = [
        PARCEL,
        shapely.box(117.1765, 39.1420, 117.1780, 39.1432),
        shapely.box(117.1785, 39.1420, 117.1790, 39.1425),
    ]
    pyogrio.write_dataframe(_frame(parcels, geoms, "EPSG:4326"), data / "parcels.geojson", driver="GeoJSON")

    roads = [
        {"name": "鼓楼东街", "class": "secondary", "lanes": 2, "oneway": "no"},
        {"name": "城厢中路", "class": "primary", "lanes": 4, "oneway": "yes"},
    ]
    geoms = [ROAD, shapely.LineString([(117.1760, 39.1380), (117.1760, 39.1460)])]
    pyogrio.write_dataframe(_frame(roads, geoms, "EPSG:3857"), data / "roads.fgb", driver="FlatGeobuf")

    zones = [
        {"use": "residential", "code": "R2", "height_limit": 36.0, "far_limit": 2.5},
        {"use": "commercial", "code": "B1", "height_limit": 100.0, "far_limit": 6.0},
    ]
    _frame(zones, [ZONE, shapely.box(117.1840, 39.1360, 117.1900, 39.1400)], "EPSG:4490").to_parquet(
        data / "zoning.parquet"
    )

    pois = pd.DataFrame(
        [
            {"id": "POI-1", "名称": "鼓楼", "类别": "tourism", "子类": "attraction", **_lnglat(POI)},
            {
                "id": "POI-2",
                "名称": "咖啡馆",
                "类别": "amenity",
                "子类": "cafe",
                **_lnglat(shapely.Point(117.1795, 39.1445)),
            },
            {"id": "POI-3", "名称": "坐标缺失", "类别": "amenity", "子类": "bank", "lng": "n/a", "lat": ""},
        ]
    )
    pois.to_csv(data / "pois_amap.csv", index=False, encoding="utf-8")

    water = pd.DataFrame(
        [
            {"id": "W-1", "name": "海河", "type": "river", "wkt": to_crs(RIVER, "BD-09").wkt},
            {
                "id": "W-2",
                "name": "Pond",
                "type": "pond",
                "wkt": to_crs(square(117.1760, 39.1300, 0.0003), "BD-09").wkt,
            },
        ]
    )
    water.to_csv(data / "water_baidu.csv", index=False, encoding="utf-8")

    config = root / "tianjin.yml"
    config.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    return config


def _lnglat(point: shapely.Point) -> dict[str, str]:
    gcj = to_crs(point, "GCJ-02")
    return {"lng": f"{gcj.x:.9f}", "lat": f"{gcj.y:.9f}"}


def error_m(stored: shapely.Geometry, true: shapely.Geometry) -> float:
    """Largest distance in metres between two lon/lat geometries (Hausdorff, measured in EPSG:4548)."""
    to_gk = Transformer.from_crs("EPSG:4490", "EPSG:4548", always_xy=True)
    project = lambda g: shapely.transform(g, lambda c: np.column_stack(to_gk.transform(c[:, 0], c[:, 1])))
    return float(shapely.hausdorff_distance(project(stored), project(true)))


if __name__ == "__main__":  # python tests/support/tianjin.py examples  -> examples/data/*, ready for `cim build`
    import sys

    print(write_city(Path(sys.argv[1] if len(sys.argv) > 1 else "examples")))
