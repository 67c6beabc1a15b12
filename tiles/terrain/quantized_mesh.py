"""A grid of heights over a tile → one quantized-mesh-1.0 tile (CesiumGS/quantized-mesh).

The grid (:data:`tiling.GRID` samples a side, row 0 at the north edge, the outer samples on the
tile's edges) is meshed by pymartini (RTIN) to a maximum vertical error, then written with
quantized_mesh_encoder's parts: its header (centre, min/max height, bounding sphere, horizon
occlusion point), zig-zag delta vertices, high-water-mark indices and the four edge index lists
CesiumJS hangs its skirts on. Three things are done here rather than by ``encode()``:

- the vertices' u/v are the grid indices scaled to 0..32767 exactly (``encode()`` derives them from
  float32 degrees, which moves vertices by up to a metre and can lose the edge vertices);
- the vertices are renumbered in order of first use and every triangle made counter-clockwise seen
  from above, as the format requires (high-water-mark encoding, winding);
- the ``octvertexnormals`` extension encodes as CesiumJS decodes (``octEncodeInRange``: rounding to
  0..255; the encoder's own extension floors to 0..256 and wraps +1 to -1).

Curvature: a triangle spanning a large tile is a chord under the ellipsoid. So that martini keeps
triangles small enough for the chord's sag to stay within the error, the heights it measures the
error on carry a paraboloid of the same sag (``k = R δ² / 2`` per grid unit²); the heights encoded
are the DEM's.
"""

from __future__ import annotations

import io
import struct
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from pymartini import Martini
from quantized_mesh_encoder.ecef import to_ecef
from quantized_mesh_encoder.encode import compute_header, encode_header, write_edge_indices, write_indices, write_vertices
from quantized_mesh_encoder.normals import compute_vertex_normals

from tiles.terrain.tiling import GRID, WGS84_A

#: the quantized range of u, v and height
QUANTIZED_MAX = 32767
#: extension ids (quantized-mesh-1.0)
OCT_VERTEX_NORMALS = 1


@lru_cache(maxsize=1)
def _martini() -> Martini:
    return Martini(GRID)


def mesh_grid(
    heights: npt.NDArray[np.float64], bounds: tuple[float, float, float, float], max_error: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]:
    """Vertices (n, 2: grid column, grid row) and triangles (m, 3) of the RTIN mesh of ``heights``
    within ``max_error`` metres, with the chord sag over the tile counted as error."""
    west, south, east, north = bounds
    delta = np.radians(max(east - west, north - south)) / (GRID - 1)
    k = WGS84_A * delta * delta / 2
    index = np.arange(GRID, dtype=np.float64) - (GRID - 1) / 2
    bowl = -k * (index[None, :] ** 2 + index[:, None] ** 2)
    tile = _martini().create_tile((heights + bowl).astype(np.float32))
    vertices, triangles = tile.get_mesh(max(float(max_error), 0.0))
    return np.asarray(vertices, dtype=np.int64).reshape(-1, 2), np.asarray(triangles, dtype=np.uint32).reshape(-1, 3)


def _counter_clockwise(u: npt.NDArray[np.int64], v: npt.NDArray[np.int64], triangles: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    cross = (u[b] - u[a]) * (v[c] - v[a]) - (v[b] - v[a]) * (u[c] - u[a])
    out = triangles.copy()
    clockwise = cross < 0
    out[clockwise, 1], out[clockwise, 2] = triangles[clockwise, 2], triangles[clockwise, 1]
    return out


def _first_use_order(triangles: npt.NDArray[np.uint32], count: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]:
    """The vertices in order of first use by ``triangles`` and the triangles renumbered so."""
    flat = triangles.ravel().astype(np.int64)
    _, first = np.unique(flat, return_index=True)
    order = flat[np.sort(first)]
    if len(order) != count:
        raise ValueError(f"mesh has {count - len(order)} vertices no triangle uses")
    renumber = np.empty(count, dtype=np.int64)
    renumber[order] = np.arange(count)
    return order, renumber[flat].astype(np.uint32).reshape(-1, 3)


def oct_encode(normals: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """Unit vectors (n, 3) → (n, 2) bytes, as CesiumJS ``AttributeCompression.octEncodeInRange(v, 255)``."""
    l1 = np.abs(normals).sum(axis=1)
    l1[l1 == 0] = 1.0
    x = normals[:, 0] / l1
    y = normals[:, 1] / l1
    below = normals[:, 2] < 0
    sign_x = np.where(x < 0, -1.0, 1.0)
    sign_y = np.where(y < 0, -1.0, 1.0)
    x, y = np.where(below, (1 - np.abs(y)) * sign_x, x), np.where(below, (1 - np.abs(x)) * sign_y, y)
    out = np.stack([x, y], axis=1)
    return np.round((np.clip(out, -1, 1) * 0.5 + 0.5) * 255).astype(np.uint8)


def encode_tile(
    heights: npt.NDArray[np.float64],
    bounds: tuple[float, float, float, float],
    max_error: float,
    normals: bool = False,
) -> tuple[bytes, int]:
    """The quantized-mesh bytes of a tile whose grid of ``heights`` (GRID × GRID, metres, no NaN)
    spans ``bounds`` (west, south, east, north degrees), and its vertex count; ``normals`` appends
    the ``octvertexnormals`` extension."""
    if heights.shape != (GRID, GRID) or not np.isfinite(heights).all():
        raise ValueError(f"heights must be a finite {GRID}×{GRID} grid")
    vertices, triangles = mesh_grid(heights, bounds, max_error)
    gx, gy = vertices[:, 0], vertices[:, 1]
    # exact quantized u/v: grid index → 0..32767; v counts from the south edge
    u = (gx * QUANTIZED_MAX + (GRID - 1) // 2) // (GRID - 1)
    v = ((GRID - 1 - gy) * QUANTIZED_MAX + (GRID - 1) // 2) // (GRID - 1)
    triangles = _counter_clockwise(u, v, triangles)
    order, triangles = _first_use_order(triangles, len(vertices))
    u, v, gx, gy = u[order], v[order], gx[order], gy[order]
    h = heights[gy, gx]
    west, south, east, north = bounds
    lon = np.where(u == QUANTIZED_MAX, east, west + (east - west) * u / QUANTIZED_MAX)
    lat = np.where(v == QUANTIZED_MAX, north, south + (north - south) * v / QUANTIZED_MAX)
    positions = np.stack([lon, lat, h], axis=1)
    low, high = float(h.min()), float(h.max())
    span = high - low
    hq = np.zeros(len(h), dtype=np.int64) if span <= 0 else np.round((h - low) / span * QUANTIZED_MAX).astype(np.int64)
    quantized = np.stack([u, v, hq], axis=1).astype(np.int16)

    out = io.BytesIO()
    with np.errstate(divide="ignore", invalid="ignore"):
        header = compute_header(positions.copy(), "naive")
    occlusion = [header[f"horizonOcclusionPoint{axis}"] for axis in "XYZ"]
    if not np.isfinite(occlusion).all():
        # no horizon culling point exists (a tile wider than a hemisphere's quarter: level 0): NaN
        # makes every CesiumJS occlusion test false, so the tile is never horizon-culled — what
        # CesiumJS does for its own tiles whose culling point it cannot compute
        for axis in "XYZ":
            header[f"horizonOcclusionPoint{axis}"] = float("nan")
    header["minimumHeight"], header["maximumHeight"] = low, high
    encode_header(out, header)
    write_vertices(out, quantized, len(quantized))
    write_indices(out, triangles, len(quantized))
    write_edge_indices(out, quantized, len(quantized))
    if normals:
        ecef = to_ecef(positions.copy())
        encoded = oct_encode(compute_vertex_normals(ecef, triangles)).tobytes()
        out.write(struct.pack("<BI", OCT_VERTEX_NORMALS, len(encoded)))
        out.write(encoded)
    return out.getvalue(), len(quantized)
