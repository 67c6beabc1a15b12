"""Footprints → LOD1 block mesh (docs/3d-mesh.md).

Each footprint (a Polygon or the parts of a MultiPolygon, stored in CRS ``srid``) becomes a prism
from its ground height ``base`` to ``base + height`` (ellipsoidal metres):

- walls: every edge of every ring — exterior and interior — is a quad (two triangles) with its own
  four vertices and a flat normal pointing away from the solid (an interior ring's walls face into
  the courtyard);
- roof: the polygon (holes respected) triangulated by earcut at the top height, normal = the
  ellipsoid's up at each vertex;
- floor (``floor=True`` only): the roof's triangles reversed at ``base``, normal = down. Off by
  default: a block stands on the terrain and its floor is never seen; it would cost a third of the
  bytes of a box.

Triangles are counter-clockwise seen from outside (glTF front faces). Positions are computed in
float64 ECEF, minus ``origin``, then float32. Repeated vertices (zero-length edges) are dropped; a
ring left with fewer than three vertices or no area is dropped (a polygon with such an exterior
entirely). Missing, empty, invalid or non-polygonal footprints, and those whose height is not a
number above 0, give no vertices; they are never an error. A missing ``base`` (NaN) is 0.

Everything except earcut (one call per polygon) is vectorised over all footprints at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import mapbox_earcut
import numpy as np
import numpy.typing as npt
import shapely

from tiles.threed.geodesy import ecef, lonlat_transformer
from tiles.threed.model import Mesh

_EMPTY_F = np.empty((0, 3), dtype=np.float32)


def extrude(
    footprints: Sequence[shapely.Geometry | None] | npt.NDArray[np.object_],
    srid: int,
    base: npt.ArrayLike,
    height: npt.ArrayLike,
    origin: npt.ArrayLike,
    floor: bool = False,
) -> Mesh:
    """The LOD1 mesh of ``footprints``; ``feature_ids`` are the footprints' positions in the input."""
    geoms = np.asarray(footprints, dtype=object).ravel()
    n = len(geoms)
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    base = np.broadcast_to(np.asarray(base, dtype=np.float64), (n,))
    height = np.broadcast_to(np.asarray(height, dtype=np.float64), (n,))
    base = np.where(np.isfinite(base), base, 0.0)

    usable = np.zeros(n, dtype=bool)
    if n:
        kinds = shapely.get_type_id(geoms)  # -1 for None
        usable = (kinds == 3) | (kinds == 6)
        usable &= np.isfinite(height) & (height > 0)
        usable[usable] &= ~shapely.is_empty(geoms[usable])
        usable[usable] &= shapely.is_valid(geoms[usable])
    rings = _rings(geoms, np.flatnonzero(usable))
    if rings is None:
        return _empty(origin)
    xy, ring_of, ring_start, ring_len, ring_poly, poly_fid = rings

    # every vertex at the bottom and the top, in ECEF, and the local up
    lon, lat = lonlat_transformer(srid).transform(xy[:, 0], xy[:, 1])
    lon, lat = np.asarray(lon), np.asarray(lat)
    fid = poly_fid[ring_poly[ring_of]]
    bottom = ecef(lon, lat, base[fid])
    top = ecef(lon, lat, base[fid] + height[fid])
    up = _up(lon, lat)

    # walls: edge j → next(j) within its ring; vertices b_j, b_n, t_n, t_j
    count = len(xy)
    nxt = np.arange(1, count + 1)
    last = ring_start + ring_len - 1
    nxt[last] = ring_start
    wall_pos = np.stack([bottom, bottom[nxt], top[nxt], top], axis=1)  # (count, 4, 3)
    normal = np.cross(bottom[nxt] - bottom, top - bottom)
    length = np.linalg.norm(normal, axis=1)
    good = length > 0
    wall_pos = wall_pos[good]
    wall_normal = np.repeat((normal[good] / length[good, None])[:, None, :], 4, axis=1)
    wall_fid = np.repeat(fid[good], 4)
    walls = len(wall_pos)
    quad = np.array([0, 1, 2, 0, 2, 3], dtype=np.int64)
    wall_idx = (np.arange(walls, dtype=np.int64)[:, None] * 4 + quad).ravel()

    # roof (and floor): earcut per polygon on its vertices relative to the first one
    roof_tri = _triangulate(xy, ring_start, ring_len, ring_poly)
    positions = [wall_pos.reshape(-1, 3), top]
    normals = [wall_normal.reshape(-1, 3), up]
    fids = [wall_fid, fid]
    indices = [wall_idx, roof_tri.ravel() + 4 * walls]
    if floor:
        positions.append(bottom)
        normals.append(-up)
        fids.append(fid)
        indices.append(roof_tri[:, ::-1].ravel() + 4 * walls + count)
    return Mesh(
        positions=(np.concatenate(positions) - origin).astype(np.float32),
        normals=np.concatenate(normals).astype(np.float32),
        feature_ids=np.concatenate(fids).astype(np.uint32),
        indices=np.concatenate(indices).astype(np.uint32),
        origin=origin,
    )


def _empty(origin: npt.NDArray[np.float64]) -> Mesh:
    return Mesh(
        positions=_EMPTY_F,
        normals=_EMPTY_F,
        feature_ids=np.empty(0, dtype=np.uint32),
        indices=np.empty(0, dtype=np.uint32),
        origin=origin,
    )


def _up(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The ellipsoid's unit normal (geodetic up) at each lon/lat, in ECEF axes."""
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


#: (xy, ring of each vertex, ring starts, ring lengths, polygon of each ring, footprint of each polygon)
_Rings = tuple[
    npt.NDArray[np.float64], npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]
]


def _rings(geoms: npt.NDArray[np.object_], which: npt.NDArray[np.intp]) -> _Rings | None:
    """The footprints' rings as one vertex array, oriented (exteriors counter-clockwise, holes
    clockwise), without repeated or closing vertices, degenerate rings dropped: (xy, ring of each
    vertex, ring starts, ring lengths, polygon of each ring, footprint of each polygon); None when
    nothing is left."""
    if len(which) == 0:
        return None
    polys, part_of = shapely.get_parts(geoms[which], return_index=True)
    poly_fid = which[part_of]
    rings, ring_poly = shapely.get_rings(polys, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    nrings = len(rings)
    ring_len = np.bincount(ring_of, minlength=nrings)
    ring_start = np.concatenate([[0], np.cumsum(ring_len)[:-1]])
    exterior = np.ones(nrings, dtype=bool)
    exterior[1:] = ring_poly[1:] != ring_poly[:-1]

    # orientation by the shoelace formula on coordinates relative to each ring's first vertex
    rel = coords - coords[ring_start[ring_of]]
    cross = rel[:-1, 0] * rel[1:, 1] - rel[1:, 0] * rel[:-1, 1]
    same = ring_of[:-1] == ring_of[1:]
    area2 = np.bincount(ring_of[:-1][same], weights=cross[same], minlength=nrings)
    flip = np.where(exterior, area2 < 0, area2 > 0)
    pos = np.arange(len(coords)) - ring_start[ring_of]
    order = np.where(flip[ring_of], ring_start[ring_of] + ring_len[ring_of] - 1 - pos, np.arange(len(coords)))
    coords = coords[order]

    # repeated vertices, then the closing one
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = np.any(coords[1:] != coords[:-1], axis=1) | (ring_of[1:] != ring_of[:-1])
    ring_end = ring_start + ring_len - 1
    keep[ring_end] &= np.any(coords[ring_end] != coords[ring_start], axis=1)
    kept_len = np.bincount(ring_of[keep], minlength=nrings)
    ring_ok = (kept_len >= 3) & (area2 != 0)
    poly_ok = np.ones(len(polys), dtype=bool)
    poly_ok[ring_poly[exterior & ~ring_ok]] = False
    ring_ok &= poly_ok[ring_poly]
    keep &= ring_ok[ring_of]
    if not keep.any():
        return None

    # renumber what is left
    ring_new = np.cumsum(ring_ok) - 1
    poly_new = np.cumsum(poly_ok) - 1
    xy = coords[keep]
    ring_of = ring_new[ring_of[keep]]
    ring_len = kept_len[ring_ok]
    ring_start = np.concatenate([[0], np.cumsum(ring_len)[:-1]])
    ring_poly = poly_new[ring_poly[ring_ok]]
    return xy, ring_of, ring_start, ring_len, ring_poly, poly_fid[poly_ok]


def _triangulate(
    xy: npt.NDArray[np.float64],
    ring_start: npt.NDArray[np.int64],
    ring_len: npt.NDArray[np.int64],
    ring_poly: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """(m, 3) vertex indices of the polygons' triangles, counter-clockwise seen from above: a fan
    for a strictly convex polygon without holes (most buildings; vectorised), earcut otherwise."""
    first = np.flatnonzero(np.concatenate([[True], ring_poly[1:] != ring_poly[:-1]]))
    stops = np.concatenate([first[1:], [len(ring_poly)]])
    ends = ring_start + ring_len
    # strictly convex single rings: every turn to the left
    ring_of = np.repeat(np.arange(len(ring_len)), ring_len)
    nxt = np.arange(1, len(xy) + 1)
    nxt[ends - 1] = ring_start
    d = xy[nxt] - xy
    turn = d[:, 0] * d[nxt, 1] - d[:, 1] * d[nxt, 0]
    convex = np.bincount(ring_of, weights=(turn <= 0), minlength=len(ring_len)) == 0
    fan = np.zeros(len(first), dtype=bool)
    single = stops - first == 1
    fan[single] = convex[first[single]]

    rings = first[fan]
    k = ring_len[rings] - 2
    apex = np.repeat(ring_start[rings], k)
    step = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k) + 1
    out = [np.column_stack([apex, apex + step, apex + step + 1])]
    for a, b in zip(first[~fan].tolist(), stops[~fan].tolist()):
        start = int(ring_start[a])
        verts = xy[start : int(ends[b - 1])] - xy[start]
        tri = mapbox_earcut.triangulate_float64(verts, (ends[a:b] - start).astype(np.uint32))
        out.append(tri.astype(np.int64).reshape(-1, 3) + start)
    tri = np.concatenate(out)
    # earcut's winding is not part of its contract: make every triangle counter-clockwise
    p0, p1, p2 = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    d1, d2 = p1 - p0, p2 - p0
    cw = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] < 0
    tri[cw] = tri[cw][:, ::-1]
    return tri
