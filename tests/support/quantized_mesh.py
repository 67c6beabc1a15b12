"""A quantized-mesh-1.0 decoder for the tests, written from the format's description
(CesiumGS/quantized-mesh), independent of the encoder: header, zig-zag delta vertices, index
padding, high-water-mark indices (16 or 32 bit), edge indices and extensions."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

HEADER = struct.Struct("<3d2f4d3d")
QUANTIZED_MAX = 32767


@dataclass
class QuantizedMesh:
    center: tuple[float, float, float]
    minimum_height: float
    maximum_height: float
    sphere_center: tuple[float, float, float]
    sphere_radius: float
    horizon_occlusion: tuple[float, float, float]
    #: quantized u, v, height (0..32767)
    u: np.ndarray
    v: np.ndarray
    height: np.ndarray
    #: (m, 3) vertex indices
    triangles: np.ndarray
    west: np.ndarray
    south: np.ndarray
    east: np.ndarray
    north: np.ndarray
    #: extension id → bytes
    extensions: dict[int, bytes] = field(default_factory=dict)

    def lonlat_heights(self, bounds: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vertex longitudes, latitudes (degrees) and heights (m) over a tile's ``bounds``."""
        west, south, east, north = bounds
        lon = west + (east - west) * self.u / QUANTIZED_MAX
        lat = south + (north - south) * self.v / QUANTIZED_MAX
        h = self.minimum_height + (self.maximum_height - self.minimum_height) * self.height / QUANTIZED_MAX
        return lon, lat, h


def _zigzag_delta(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return np.cumsum((v >> 1) ^ -(v & 1))


def decode(data: bytes) -> QuantizedMesh:
    fields = HEADER.unpack_from(data, 0)
    pos = HEADER.size
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    raw = np.frombuffer(data, dtype="<u2", count=3 * count, offset=pos)
    pos += 6 * count
    u, v, height = (_zigzag_delta(raw[i * count:(i + 1) * count]) for i in range(3))
    wide = count > 65536
    size = 4 if wide else 2
    dtype = "<u4" if wide else "<u2"
    if pos % size:
        pos += size - pos % size
    (triangle_count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    codes = np.frombuffer(data, dtype=dtype, count=3 * triangle_count, offset=pos).astype(np.int64)
    pos += size * 3 * triangle_count
    indices = np.empty_like(codes)
    highest = 0
    for i, code in enumerate(codes.tolist()):
        indices[i] = highest - code
        if code == 0:
            highest += 1
    edges = []
    for _ in range(4):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        edges.append(np.frombuffer(data, dtype=dtype, count=n, offset=pos).astype(np.int64))
        pos += size * n
    extensions: dict[int, bytes] = {}
    while pos < len(data):
        ext_id, length = struct.unpack_from("<BI", data, pos)
        pos += 5
        extensions[ext_id] = data[pos:pos + length]
        pos += length
    if pos != len(data):
        raise ValueError(f"trailing bytes: read {pos} of {len(data)}")
    return QuantizedMesh(
        center=fields[0:3], minimum_height=fields[3], maximum_height=fields[4], sphere_center=fields[5:8],
        sphere_radius=fields[8], horizon_occlusion=fields[9:12], u=u, v=v, height=height,
        triangles=indices.reshape(-1, 3), west=edges[0], south=edges[1], east=edges[2], north=edges[3],
        extensions=extensions,
    )


def oct_decode(data: bytes) -> np.ndarray:
    """``octvertexnormals`` bytes → (n, 3) unit vectors (CesiumJS ``octDecodeInRange(x, y, 255)``)."""
    xy = np.frombuffer(data, dtype=np.uint8).reshape(-1, 2).astype(np.float64) / 255 * 2 - 1
    x, y = xy[:, 0], xy[:, 1]
    z = 1 - np.abs(x) - np.abs(y)
    below = z < 0
    sx, sy = np.where(x < 0, -1.0, 1.0), np.where(y < 0, -1.0, 1.0)
    x, y = np.where(below, (1 - np.abs(y)) * sx, x), np.where(below, (1 - np.abs(xy[:, 0])) * sy, y)
    out = np.stack([x, y, z], axis=1)
    return out / np.linalg.norm(out, axis=1)[:, None]
