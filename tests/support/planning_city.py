"""A small planned city for the CIM+ process tests (issue 13), drawn in metres so every expected value
can be checked by hand.

Geometry is laid out in CGCS2000 / 3-degree Gauss-Krüger CM 117E (EPSG:4548, x = easting) around
(500 000, 4 330 000), on the central meridian near Tianjin (scale factor 1: a 20 m x 30 m box is
600 m² on the ellipsoid to within 0.01 %); :func:`release_layers` returns it in the CRS asked for.

    x: 500000 ──────────── 501000 ──────────── 502000
       │ district 120101 和平区  │ district 120102 河东区  │   y: 4330000 .. 4331000
       │ zone R (residential)    │ zone C (commercial)     │
       │ height ≤ 30 m, FAR ≤ 2  │ height ≤ 60 m, FAR ≤ 4  │
       │ parcels P1 (W), P2 (E)   │ parcels P3 (W), P4 (E)  │   each parcel 400 m x 400 m = 160 000 m²

Parcels (each 400 x 400 m, 100 m in from the district's edges): P1 x 500050..500450, P2 500550..500950,
P3 501050..501450, P4 501550..501950; all y 4330300..4330700.

Buildings of release 1 (footprint, floors, height, use):

    B1  P1  40 x 50 = 2 000 m²  10 fl  32 m  residential   taller than zone R's 30 m
    B2  P1  30 x 20 =   600 m²   6 fl  18 m  residential   ok
    B3  P2  20 x 20 =   400 m²   2 fl   8 m  industrial    use forbidden in zone R
    B4  P3 100 x 200 = 20 000 m² 30 fl  90 m  office       taller than 60 m; P3's floor area 600 000 / 160 000 = 3.75 (≤ 4: ok)
    B5  P4 200 x 200 = 40 000 m² 20 fl  59 m  retail       P4 FAR = (800 000 + 100) / 160 000 = 5.000625 > 4
    B6  P4  10 x 10 =   100 m²   1 fl  (no height) residential  floors 1, height unknown: no height check
    B7  none (in district 120101, outside every parcel)  10 x 10 = 100 m², 3 fl, 9 m, residential

So P1's floor area is 2 000·10 + 600·6 = 23 600 m² (FAR 0.1475), P2's 800 m² (0.005).
Zoning compliance over the city: height B1 (32 > 30) and B4 (90 > 60); FAR P4 (5.0 > 4.0) and P4 only
(P3 with B4 alone is 3.75); use B3 (industrial in R).

Release 2 (:func:`release_layers` with ``release=2``): B2 is 24 m / 8 floors (changed: height_m, floors),
B3 is removed, B8 (P2, 20 x 20 = 400 m², 4 fl, 12 m, residential) is added; the rest is unchanged.

Other layers: POIs (3 in 120101: 2 ``amenity`` + 1 ``shop``; 1 in 120102: ``amenity``); roads: one
primary road along y = 4330150 from x 500000 to 502000 (2 000 m: 1 000 m in each district) and one
residential road x = 500500 from y 4330000 to 4330300 (300 m, in 120101).
"""

from __future__ import annotations

import geopandas as gpd
import shapely

from cim.store import LayerData

#: the CRS the geometry is drawn in
DRAWN = 4548
X0, Y0 = 500_000.0, 4_330_000.0
DISTRICTS = {"120101": ("和平区", 0.0), "120102": ("河东区", 1000.0)}
PARCELS = {"P1": 50.0, "P2": 550.0, "P3": 1050.0, "P4": 1550.0}
PARCEL_AREA_M2 = 160_000.0

#: (id, parcel or None, x0, y0, width, depth, floors, height, use) — x0/y0 relative to (X0, Y0)
BUILDINGS_R1 = [
    ("B1", "P1", 100, 400, 40, 50, 10, 32.0, "residential"),
    ("B2", "P1", 200, 400, 30, 20, 6, 18.0, "residential"),
    ("B3", "P2", 600, 400, 20, 20, 2, 8.0, "industrial"),
    ("B4", "P3", 1100, 400, 100, 200, 30, 90.0, "office"),
    ("B5", "P4", 1600, 350, 200, 200, 20, 59.0, "retail"),
    ("B6", "P4", 1850, 650, 10, 10, 1, None, "residential"),
    ("B7", None, 20, 20, 10, 10, 3, 9.0, "residential"),
]


def _box(x0: float, y0: float, w: float, d: float) -> shapely.MultiPolygon:
    return shapely.MultiPolygon([shapely.box(X0 + x0, Y0 + y0, X0 + x0 + w, Y0 + y0 + d)])


def _frame(rows: list[dict], geoms: list, srid: int) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=DRAWN)
    return frame.to_crs(epsg=srid) if srid != DRAWN else frame


def buildings(release: int = 1) -> list[tuple]:
    rows = list(BUILDINGS_R1)
    if release >= 2:
        rows = [r for r in rows if r[0] != "B3"]
        rows = [("B2", "P1", 200, 400, 30, 20, 8, 24.0, "residential") if r[0] == "B2" else r for r in rows]
        rows.append(("B8", "P2", 700, 400, 20, 20, 4, 12.0, "residential"))
    return rows


def release_layers(srid: int = 4326, release: int = 1) -> list[LayerData]:
    """The planned city's layers of ``release`` (1 or 2), stored in EPSG ``srid``."""
    from layers.catalog import CATALOG

    b_rows = buildings(release)
    building_frame = _frame(
        [
            {"name": bid, "use": use, "height_m": height, "floors": floors, "structure": "concrete",
             "year_built": 2000, "address": f"{bid} 规划路", "source": "survey", "source_id": bid}
            for bid, _, _, _, _, _, floors, height, use in b_rows
        ],
        [_box(x, y, w, d) for _, _, x, y, w, d, *_ in b_rows],
        srid,
    )
    building_frame["floors"] = building_frame["floors"].astype("Int64")
    building_frame["year_built"] = building_frame["year_built"].astype("Int64")
    divisions = _frame(
        [{"code": "120100", "name": "天津市", "level": "city", "parent_code": "120000", "source": "gbt2260", "source_id": "120100"}]
        + [{"code": code, "name": name, "level": "district", "parent_code": "120100", "source": "gbt2260", "source_id": code}
           for code, (name, _) in DISTRICTS.items()],
        [_box(0, 0, 2000, 1000)] + [_box(dx, 0, 1000, 1000) for _, dx in DISTRICTS.values()],
        srid,
    )
    zoning = _frame(
        [
            {"use": "residential", "zoning_code": "R2", "height_limit_m": 30.0, "far_limit": 2.0, "source": "plan", "source_id": "R"},
            {"use": "commercial", "zoning_code": "B1", "height_limit_m": 60.0, "far_limit": 4.0, "source": "plan", "source_id": "C"},
        ],
        [_box(0, 0, 1000, 1000), _box(1000, 0, 1000, 1000)],
        srid,
    )
    parcels = _frame(
        [{"parcel_id": pid, "land_use": "R2" if x < 1000 else "B1", "area_m2": PARCEL_AREA_M2, "plot_ratio": None,
          "source": "cadastre", "source_id": pid} for pid, x in PARCELS.items()],
        [_box(x, 300, 400, 400) for x in PARCELS.values()],
        srid,
    )
    pois = _frame(
        [
            {"name": "社区医院", "category": "amenity", "subcategory": "clinic", "address": None, "source": "survey", "source_id": "poi1"},
            {"name": "小学", "category": "amenity", "subcategory": "school", "address": None, "source": "survey", "source_id": "poi2"},
            {"name": "超市", "category": "shop", "subcategory": "supermarket", "address": None, "source": "survey", "source_id": "poi3"},
            {"name": "银行", "category": "amenity", "subcategory": "bank", "address": None, "source": "survey", "source_id": "poi4"},
        ],
        [shapely.Point(X0 + x, Y0 + y) for x, y in ((300, 800), (400, 800), (500, 850), (1500, 850))],
        srid,
    )
    roads = _frame(
        [
            {"name": "规划大道", "road_class": "primary", "lanes": 4, "oneway": False, "surface": "asphalt", "source": "survey", "source_id": "r1"},
            {"name": "规划支路", "road_class": "residential", "lanes": 2, "oneway": False, "surface": "asphalt", "source": "survey", "source_id": "r2"},
        ],
        [shapely.MultiLineString([[(X0, Y0 + 150), (X0 + 2000, Y0 + 150)]]),
         shapely.MultiLineString([[(X0 + 500, Y0), (X0 + 500, Y0 + 300)]])],
        srid,
    )
    roads["lanes"] = roads["lanes"].astype("Int64")
    return [
        LayerData(CATALOG["landuse"], zoning),
        LayerData(CATALOG["parcels"], parcels),
        LayerData(CATALOG["roads"], roads),
        LayerData(CATALOG["admin_divisions"], divisions),
        LayerData(CATALOG["buildings"], building_frame),
        LayerData(CATALOG["pois"], pois),
    ]


def publish_planning_city(url: str, srid: int = 4326, releases: int = 1) -> None:
    """Publish releases 1..``releases`` (at most 2) of the planned city into the store at ``url``."""
    from cim.store import ReleaseDraft, open_store

    with open_store(url) as store:
        for number in range(1, releases + 1):
            store.publish(ReleaseDraft(layers=release_layers(srid, number), srid=srid))


def lonlat(x: float, y: float) -> tuple[float, float]:
    """Lon/lat (CRS84) of the point (X0 + x, Y0 + y) of the drawing."""
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(DRAWN, 4326, always_xy=True).transform(X0 + x, Y0 + y)
    return float(lon), float(lat)


def geojson_point(x: float, y: float) -> dict:
    """A lon/lat GeoJSON Point of the drawing's point (X0 + x, Y0 + y)."""
    return {"type": "Point", "coordinates": list(lonlat(x, y))}


def geojson_box(x0: float, y0: float, x1: float, y1: float) -> dict:
    """A lon/lat GeoJSON polygon of the drawing's box (x0, y0)-(x1, y1)."""
    ring = [lonlat(x0, y0), lonlat(x1, y0), lonlat(x1, y1), lonlat(x0, y1), lonlat(x0, y0)]
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


__all__ = ["BUILDINGS_R1", "DISTRICTS", "PARCELS", "PARCEL_AREA_M2", "buildings", "geojson_box", "geojson_point", "lonlat", "publish_planning_city", "release_layers"]
