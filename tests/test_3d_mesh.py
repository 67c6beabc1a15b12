"""LOD1 extrusion and its geodesy (tiles/threed/mesh.py, geodesy.py): positions round-trip to the
footprints in every storage CRS the project uses, the blocks are closed solids with outward normals
and counter-clockwise faces, holes stay open, and bad footprints give no vertices."""

from __future__ import annotations

from collections import Counter

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from support.tianjin import square

from cim.heights import DEFAULT_RULE
from tiles.threed.geodesy import ecef, geodetic, lonlat_transformer, region_origin, transform_matrix
from tiles.threed.glb import decode_glb, encode_glb
from tiles.threed.mesh import extrude
from tiles.threed.model import PROPERTIES

DRUM_TOWER = (117.1786, 39.1431)  # Tianjin, GK zone 39 (EPSG:4548 / 4527)
#: storage CRSs: WGS 84, CGCS2000 geographic, CGCS2000 GK zone 39 without and with the zone prefix
CRSS = (4326, 4490, 4548, 4527)


def to_srid(geoms: np.ndarray, srid: int) -> np.ndarray:
    """Footprints given in CGCS2000 lon/lat, in ``srid``."""
    return gpd.GeoSeries(geoms, crs=4490).to_crs(srid).to_numpy()


def courtyard(lon: float, lat: float) -> shapely.Polygon:
    """A 40 m block with a 20 m courtyard, rings given clockwise / counter-clockwise on purpose
    (the wrong way round: extrude orients them)."""
    outer = square(lon, lat, 0.0002)
    inner = square(lon, lat, 0.0001)
    return shapely.Polygon(outer.exterior.coords[::-1], [inner.exterior.coords])


def sample_footprints() -> np.ndarray:
    lon, lat = DRUM_TOWER
    l_shape = shapely.Polygon(
        [(lon, lat), (lon + 3e-4, lat), (lon + 3e-4, lat + 1e-4), (lon + 1e-4, lat + 1e-4), (lon + 1e-4, lat + 3e-4), (lon, lat + 3e-4)]
    )
    two_parts = shapely.MultiPolygon([square(lon + 0.001, lat), square(lon + 0.0015, lat)])
    return np.array([square(lon - 0.001, lat), courtyard(lon, lat - 0.001), l_shape, two_parts], dtype=object)


def table_for(n: int, heights: np.ndarray) -> dict[str, list]:
    return {
        "fid": list(range(1, n + 1)),
        "name": [None] * n,
        "use": ["residential"] * n,
        "height_m": heights.tolist(),
        "floors": [None] * n,
        "height": heights.tolist(),
        "height_source": ["height_m"] * n,
        "base": [0.0] * n,
    }


def origin_of(geoms_lonlat: np.ndarray) -> np.ndarray:
    c = shapely.centroid(shapely.union_all(geoms_lonlat))
    return ecef([c.x], [c.y], [0.0])[0]


def metres_per_unit(srid: int) -> tuple[float, float]:
    """Metres per storage unit along x and y near the sample (degrees or metres)."""
    if srid in (4326, 4490):
        lat = np.radians(DRUM_TOWER[1])
        return 111_320.0 * np.cos(lat), 110_950.0
    return 1.0, 1.0


def round_trip(geoms: np.ndarray, srid: int, base: np.ndarray, height: np.ndarray, origin: np.ndarray, floor: bool) -> None:
    """Extrude, encode, decode, back to storage CRS: every vertex within 0.1 m of a vertex of its
    footprint, at its base or top height within 0.01 m."""
    mesh = extrude(geoms, srid, base, height, origin, floor=floor)
    decoded = decode_glb(encode_glb(mesh, table_for(len(geoms), height)))
    assert np.array_equal(decoded.feature_ids, mesh.feature_ids)
    lon, lat, h = geodetic(decoded.positions.astype(np.float64) + origin)
    x, y = lonlat_transformer(srid).transform(lon, lat, direction="INVERSE")
    sx, sy = metres_per_unit(srid)
    for fid in np.unique(decoded.feature_ids):
        at = decoded.feature_ids == fid
        corners = shapely.get_coordinates(geoms[fid])
        dx = (x[at][:, None] - corners[None, :, 0]) * sx
        dy = (y[at][:, None] - corners[None, :, 1]) * sy
        nearest = np.sqrt(dx**2 + dy**2).min(axis=1)
        assert nearest.max() < 0.1, (srid, fid, nearest.max())
        levels = np.minimum(np.abs(h[at] - base[fid]), np.abs(h[at] - base[fid] - height[fid]))
        assert levels.max() < 0.01, (srid, fid, levels.max())


# --- geodesy ------------------------------------------------------------------------------------


def test_ecef_and_geodetic_are_inverse_and_match_the_ellipsoid() -> None:
    lon = np.array([0.0, 90.0, 117.1786, -70.0])
    lat = np.array([0.0, 0.0, 39.1431, -33.5])
    h = np.array([0.0, 100.0, 5.0, 2500.0])
    xyz = ecef(lon, lat, h)
    assert xyz.shape == (4, 3)
    assert xyz[0] == pytest.approx([6_378_137.0, 0.0, 0.0])  # WGS 84 semi-major axis
    assert xyz[1] == pytest.approx([0.0, 6_378_237.0, 0.0], abs=1e-6)
    back = geodetic(xyz)
    for got, want in zip(back, (lon, lat, h)):
        assert got == pytest.approx(want, abs=1e-7)


def test_cgcs2000_and_its_gauss_kruger_zones_are_taken_as_wgs84() -> None:
    assert lonlat_transformer(4490).transform(117.5, 39.25) == pytest.approx((117.5, 39.25), abs=1e-12)
    gk = Transformer.from_crs(4490, 4548, always_xy=True)  # GK zone 39, central meridian 117°E
    x, y = gk.transform(*DRUM_TOWER)
    assert lonlat_transformer(4548).transform(x, y) == pytest.approx(DRUM_TOWER, abs=1e-9)
    x, y = Transformer.from_crs(4490, 4527, always_xy=True).transform(*DRUM_TOWER)
    assert x > 39_000_000  # the zone prefix
    assert lonlat_transformer(4527).transform(x, y) == pytest.approx(DRUM_TOWER, abs=1e-9)
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(*DRUM_TOWER)
    assert lonlat_transformer(3857).transform(x, y) == pytest.approx(DRUM_TOWER, abs=1e-9)


def test_region_origin_and_transform() -> None:
    west, south, east, north = np.radians([117.0, 39.0, 117.2, 39.2])
    origin = region_origin((west, south, east, north, 3.0, 80.0))
    lon, lat, h = geodetic(origin)
    assert (lon[0], lat[0], h[0]) == pytest.approx((117.1, 39.1, 3.0), abs=1e-9)
    matrix = transform_matrix(origin)
    assert len(matrix) == 16 and matrix[12:15] == pytest.approx(list(origin)) and matrix[15] == 1.0
    assert np.allclose(np.array(matrix).reshape(4, 4).T[:3, :3], np.eye(3))  # column-major: translation only
    # across the antimeridian: the centre is at 180°
    across = region_origin((np.radians(179.0), 0.0, np.radians(-179.0), 0.1, 0.0, 1.0))
    assert abs(geodetic(across)[0][0]) == pytest.approx(180.0)


# --- positions round-trip in every storage CRS --------------------------------------------------


@pytest.mark.parametrize("srid", CRSS)
def test_vertices_round_trip_to_the_footprints(srid: int) -> None:
    lonlat = sample_footprints()
    geoms = to_srid(lonlat, srid)
    base = np.array([0.0, 3.5, -2.0, 12.25])
    height = np.array([10.0, 24.0, 3.0, 99.5])
    round_trip(geoms, srid, base, height, origin_of(lonlat), floor=True)


@pytest.fixture(scope="module")
def demo_buildings(demo_layers) -> gpd.GeoDataFrame:
    """A few hundred buildings of the demo city (EPSG:4326)."""
    frame = next(layer.frame for layer in demo_layers if layer.spec.lod1)
    return frame.iloc[::8].reset_index(drop=True)


@pytest.mark.parametrize("srid", (4326, 4548))
def test_demo_buildings_round_trip(demo_buildings: gpd.GeoDataFrame, srid: int) -> None:
    assert len(demo_buildings) > 200
    heights, _ = DEFAULT_RULE.resolve(demo_buildings["height_m"], demo_buildings["floors"])
    geoms = demo_buildings.geometry.to_crs(srid).to_numpy()
    origin = origin_of(demo_buildings.geometry.to_numpy())
    base = np.linspace(0.0, 30.0, len(geoms))
    round_trip(geoms, srid, base, heights, origin, floor=False)
    mesh = extrude(geoms, srid, base, heights, origin)
    assert set(np.unique(mesh.feature_ids)) == set(range(len(geoms)))  # every demo footprint has a block


# --- the solid ----------------------------------------------------------------------------------


def position_keys(positions: np.ndarray) -> np.ndarray:
    """One integer per distinct position (millimetres)."""
    _, keys = np.unique(np.round(positions.astype(np.float64) * 1000).astype(np.int64), axis=0, return_inverse=True)
    return keys.ravel()


def directed_edges(mesh) -> Counter:
    tri = position_keys(mesh.positions)[mesh.indices.reshape(-1, 3).astype(np.int64)]
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    return Counter(map(tuple, edges.tolist()))


def expected_triangles(geom: shapely.Geometry) -> int:
    """Walls: 2 per ring edge; roof: n + 2·holes − 2 for a polygon of n vertices (all rings)."""
    total = 0
    for part in shapely.get_parts(geom):
        rings = [part.exterior, *part.interiors]
        edges = sum(len(r.coords) - 1 for r in rings)
        total += 2 * edges + edges + 2 * (len(rings) - 1) - 2
    return total


@pytest.mark.parametrize("srid", (4326, 4548))
def test_blocks_are_closed_with_outward_normals(srid: int) -> None:
    lonlat = sample_footprints()
    geoms = to_srid(lonlat, srid)
    origin = origin_of(lonlat)
    closed = extrude(geoms, srid, 2.0, 15.0, origin, floor=True)
    edges = directed_edges(closed)
    assert all(n == 1 and edges.get((b, a)) == 1 for (a, b), n in edges.items())  # watertight, consistently wound

    mesh = extrude(geoms, srid, 2.0, 15.0, origin)  # without floor: open at the bottom only
    for fid, geom in enumerate(geoms):
        roof_and_walls = np.isin(mesh.indices.reshape(-1, 3), np.flatnonzero(mesh.feature_ids == fid)).all(axis=1)
        assert roof_and_walls.sum() == expected_triangles(geom)
        floor_too = np.isin(closed.indices.reshape(-1, 3), np.flatnonzero(closed.feature_ids == fid)).all(axis=1)
        roof = expected_triangles(geom) - 2 * sum(len(shapely.get_coordinates(p)) - len(shapely.get_rings(p)) for p in shapely.get_parts(geom))
        assert floor_too.sum() == expected_triangles(geom) + roof
    _, _, h = geodetic(mesh.positions.astype(np.float64) + origin)
    open_edges = [(a, b) for (a, b), n in directed_edges(mesh).items() if directed_edges(mesh).get((b, a)) is None]
    keys = position_keys(mesh.positions)
    low = set(keys[np.abs(h - 2.0) < 0.01].tolist())
    assert open_edges and all(a in low and b in low for a, b in open_edges)

    # unit normals; every triangle counter-clockwise seen from the side its normals point to
    for m in (mesh, closed):
        assert np.allclose(np.linalg.norm(m.normals, axis=1), 1.0, atol=1e-6)
        tri = m.indices.reshape(-1, 3)
        p = m.positions.astype(np.float64)
        face = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])
        assert (np.einsum("ij,ij->i", face, m.normals[tri[:, 0]]) > 0).all()


def test_courtyard_walls_face_the_courtyard_and_the_roof_leaves_it_open() -> None:
    lon, lat = DRUM_TOWER
    geom = to_srid(np.array([courtyard(lon, lat)], dtype=object), 4548)
    centre = ecef([lon], [lat], [0.0])[0]
    mesh = extrude(geom, 4548, 0.0, 9.0, centre)
    up = centre / np.linalg.norm(centre)
    p = mesh.positions.astype(np.float64)
    walls = np.abs(mesh.normals @ up) < 0.01
    roof = (mesh.normals @ up) > 0.999
    assert walls.sum() == 4 * 8 and roof.sum() == 8  # 8 wall quads, 8 roof vertices
    horizontal = p - np.outer(p @ up, up)
    outward = np.einsum("ij,ij->i", horizontal[walls], mesh.normals[walls].astype(np.float64))
    distance = np.linalg.norm(horizontal[walls], axis=1)
    inner = distance < 16.0  # the courtyard's walls are ≤ 15.6 m from the centre, the outer ones ≥ 17 m
    assert inner.sum() == 16 and (outward[inner] < 0).all() and (outward[~inner] > 0).all()
    # the roof's area is the block's minus the courtyard's
    tri = mesh.indices.reshape(-1, 3)
    roof_tri = tri[roof[tri].all(axis=1)]
    area = 0.5 * np.linalg.norm(np.cross(p[roof_tri[:, 1]] - p[roof_tri[:, 0]], p[roof_tri[:, 2]] - p[roof_tri[:, 0]]), axis=1).sum()
    assert area == pytest.approx(geom[0].area, rel=2e-3)  # GK scale near the central meridian ≈ 1


def test_bad_footprints_give_no_vertices_and_parts_share_their_id() -> None:
    lon, lat = DRUM_TOWER
    good = square(lon, lat)
    repeated = shapely.Polygon([*good.exterior.coords[:2], good.exterior.coords[1], *good.exterior.coords[2:]])
    bow_tie = shapely.Polygon([(lon, lat), (lon + 1e-4, lat + 1e-4), (lon + 1e-4, lat), (lon, lat + 1e-4)])
    parts = shapely.MultiPolygon([square(lon + 0.001, lat), square(lon + 0.002, lat)])
    geoms = np.array(
        [None, shapely.Polygon(), bow_tie, shapely.Point(lon, lat), good, repeated, good, parts], dtype=object
    )
    heights = np.array([10, 10, 10, 10, np.nan, 10, 0, 10], dtype=float)
    mesh = extrude(geoms, 4490, np.nan, heights, ecef([lon], [lat], [0.0])[0])
    assert sorted(np.unique(mesh.feature_ids).tolist()) == [5, 7]
    assert (mesh.feature_ids == 5).sum() == 4 * 4 + 4  # the repeated vertex dropped: a box
    assert (mesh.feature_ids == 7).sum() == 2 * (4 * 4 + 4)
    assert np.isfinite(mesh.positions).all()
    empty = extrude(geoms[:4], 4490, 0.0, 10.0, np.zeros(3))
    assert len(empty.positions) == len(empty.indices) == 0 and empty.positions.dtype == np.float32
    assert len(extrude([], 4326, [], [], np.zeros(3)).indices) == 0
    assert set(PROPERTIES) >= {"fid", "height", "height_source"}
