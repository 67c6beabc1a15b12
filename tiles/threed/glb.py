"""A LOD1 ``Mesh`` and its buildings' attributes → glTF 2.0 binary (GLB), and back (docs/3d-mesh.md).

One mesh, one primitive (TRIANGLES) with ``POSITION`` (min/max), ``NORMAL``, ``_FEATURE_ID_0`` and
UNSIGNED_INT indices; one light grey PBR material. Positions are glTF y-up: ``(x, z, -y)`` of the
ECEF-axes mesh — 3D Tiles turn y-up content to z-up before the tile's ``transform`` (the translation
to ``mesh.origin``) applies.

Per building (EXT_mesh_features): the vertex attribute ``_FEATURE_ID_0`` holds the row of the
building in property table 0. It is FLOAT (exact up to 2^24 rows): glTF forbids UNSIGNED_INT vertex
attributes and needs vertex attributes 4-byte aligned, so a 2-byte UNSIGNED_SHORT would take a 4-byte
stride anyway.

Attributes (EXT_structural_metadata): a schema with the class ``building`` (model.PROPERTIES) and
one property table; columns are binary buffer views (8-byte aligned by pygltflib), strings as UTF-8
with UINT32 ``stringOffsets`` (a column of empty strings has one unused byte: a buffer view is
never empty). ``fid``, ``height``, ``height_source`` and ``base`` are required;
the other properties may be missing (None) and carry a ``noData`` value: the type's lowest number,
the empty string for strings (an empty string reads back as None).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pygltflib
from pygltflib import (
    ARRAY_BUFFER,
    ELEMENT_ARRAY_BUFFER,
    FLOAT,
    GLTF2,
    UNSIGNED_INT,
    Accessor,
    Asset,
    Attributes,
    Buffer,
    BufferView,
    Material,
    Node,
    PbrMetallicRoughness,
    Primitive,
    Scene,
)

from tiles.threed.model import METADATA_CLASS, PROPERTIES, Mesh

MESH_FEATURES = "EXT_mesh_features"
STRUCTURAL_METADATA = "EXT_structural_metadata"
FEATURE_ID_ATTRIBUTE = "_FEATURE_ID_0"
#: the metadata schema's id
SCHEMA_ID = "cim_basemap"
#: properties every building has (no noData)
REQUIRED = frozenset({"fid", "height", "height_source", "base"})
#: numpy types of the numeric metadata types
_NUMPY = {
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FLOAT32": np.dtype("<f4"),
    "FLOAT64": np.dtype("<f8"),
}
#: the noData value of an optional property, by type: the type's lowest value
NO_DATA: dict[str, Any] = {
    "INT32": int(np.iinfo(np.int32).min),
    "INT64": int(np.iinfo(np.int64).min),
    "FLOAT32": float(np.finfo(np.float32).min),
    "FLOAT64": float(np.finfo(np.float64).min),
    "STRING": "",
}
#: rows a tile may hold: FLOAT feature ids are exact up to 2^24
MAX_ROWS = 1 << 24
#: light grey, not metallic, rough
BASE_COLOR = [0.82, 0.82, 0.80, 1.0]


@dataclass(frozen=True)
class DecodedGlb:
    """What :func:`decode_glb` reads back: positions and normals in ECEF axes (relative to the
    tile's origin), per-vertex feature ids, triangle indices and the property table's columns."""

    positions: npt.NDArray[np.float32]
    normals: npt.NDArray[np.float32]
    feature_ids: npt.NDArray[np.uint32]
    indices: npt.NDArray[np.uint32]
    table: dict[str, list[Any]]
    #: the glTF JSON (for checks of the schema, extensions, material)
    json: dict[str, Any]


class _Blob:
    """The binary chunk under construction: one buffer view per array."""

    def __init__(self, gltf: GLTF2) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def view(self, payload: bytes, target: int | None = None) -> int:
        self.data += b"\0" * (-len(self.data) % 8)
        self.gltf.bufferViews.append(
            BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(payload), target=target)
        )
        self.data += payload
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, kind: str, component: int, target: int, bounds: bool = False) -> int:
        view = self.view(array.tobytes(), target)
        acc = Accessor(bufferView=view, byteOffset=0, componentType=component, count=len(array), type=kind)
        if bounds:
            acc.min = [float(v) for v in array.min(axis=0)]
            acc.max = [float(v) for v in array.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def _y_up(xyz: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out = np.empty_like(xyz, dtype=np.float32)
    out[:, 0], out[:, 1], out[:, 2] = xyz[:, 0], xyz[:, 2], -xyz[:, 1]
    return out


def _z_up(xyz: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out = np.empty_like(xyz, dtype=np.float32)
    out[:, 0], out[:, 1], out[:, 2] = xyz[:, 0], -xyz[:, 2], xyz[:, 1]
    return out


def schema() -> dict[str, Any]:
    """The EXT_structural_metadata schema of a building."""
    properties: dict[str, Any] = {}
    for name, kind in PROPERTIES.items():
        prop: dict[str, Any] = {"type": "STRING"} if kind == "STRING" else {"type": "SCALAR", "componentType": kind}
        if name in REQUIRED:
            prop["required"] = True
        else:
            prop["noData"] = NO_DATA[kind]
        properties[name] = prop
    return {"id": SCHEMA_ID, "classes": {METADATA_CLASS: {"name": "Building", "properties": properties}}}


def encode_glb(mesh: Mesh, table: Mapping[str, Sequence[Any]]) -> bytes:
    """GLB bytes of ``mesh`` with ``table`` (model.PROPERTIES columns, one row per building in
    feature-id order; None = no data) as its property table. A building without vertices (its
    footprint was unusable) keeps its row; a mesh without any vertex gives a scene without nodes.
    ValueError for a table without rows, a missing column, a missing required value, or a feature
    id without a row."""
    rows = _row_count(table)
    if rows == 0:
        raise ValueError("a tile's content holds at least one building: the property table has no row")
    if rows > MAX_ROWS:
        raise ValueError(f"a tile holds at most {MAX_ROWS} buildings, not {rows}")
    if len(mesh.feature_ids) and int(mesh.feature_ids.max()) >= rows:
        raise ValueError(f"feature id {int(mesh.feature_ids.max())} has no row in a table of {rows}")
    gltf = GLTF2(asset=Asset(version="2.0", generator="cim-basemap"), scene=0, scenes=[Scene(nodes=[])])
    blob = _Blob(gltf)
    used = []
    if len(mesh.indices):
        attributes = Attributes(
            POSITION=blob.accessor(_y_up(mesh.positions), "VEC3", FLOAT, ARRAY_BUFFER, bounds=True),
            NORMAL=blob.accessor(_y_up(mesh.normals), "VEC3", FLOAT, ARRAY_BUFFER),
        )
        setattr(
            attributes,
            FEATURE_ID_ATTRIBUTE,
            blob.accessor(mesh.feature_ids.astype(np.float32), "SCALAR", FLOAT, ARRAY_BUFFER),
        )
        primitive = Primitive(
            attributes=attributes,
            indices=blob.accessor(mesh.indices.astype(np.uint32), "SCALAR", UNSIGNED_INT, ELEMENT_ARRAY_BUFFER),
            mode=pygltflib.TRIANGLES,
            material=0,
        )
        if rows:
            primitive.extensions = {
                MESH_FEATURES: {"featureIds": [{"featureCount": rows, "attribute": 0, "propertyTable": 0}]}
            }
            used.append(MESH_FEATURES)
        gltf.materials = [
            Material(
                name="lod1",
                pbrMetallicRoughness=PbrMetallicRoughness(
                    baseColorFactor=BASE_COLOR, metallicFactor=0.0, roughnessFactor=1.0
                ),
                doubleSided=False,
            )
        ]
        gltf.meshes = [pygltflib.Mesh(name="buildings", primitives=[primitive])]
        gltf.nodes = [Node(mesh=0, name="buildings")]
        gltf.scenes[0].nodes = [0]
    if rows:
        gltf.extensions = {STRUCTURAL_METADATA: {"schema": schema(), "propertyTables": [_property_table(blob, table, rows)]}}
        used.append(STRUCTURAL_METADATA)
    gltf.extensionsUsed = used
    gltf.buffers = [Buffer(byteLength=len(blob.data))]
    gltf.set_binary_blob(bytes(blob.data))
    return b"".join(gltf.save_to_bytes())


def _row_count(table: Mapping[str, Sequence[Any]]) -> int:
    lengths = {name: len(table[name]) for name in PROPERTIES if name in table}
    missing = [name for name in PROPERTIES if name not in table]
    if missing:
        raise ValueError(f"property table: no column {', '.join(missing)}")
    if len(set(lengths.values())) > 1:
        raise ValueError(f"property table: columns of different lengths {lengths}")
    return next(iter(lengths.values()), 0)


def _property_table(blob: _Blob, table: Mapping[str, Sequence[Any]], rows: int) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, kind in PROPERTIES.items():
        values = list(table[name])
        if kind == "STRING":
            data, offsets = _strings(name, values)
            properties[name] = {
                "values": blob.view(data),
                "stringOffsets": blob.view(offsets),
                "stringOffsetType": "UINT32",
            }
        else:
            properties[name] = {"values": blob.view(_numbers(name, kind, values))}
    return {"name": "buildings", "class": METADATA_CLASS, "count": rows, "properties": properties}


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value))


def _numbers(name: str, kind: str, values: list[Any]) -> bytes:
    dtype = _NUMPY[kind]
    missing = [_missing(v) for v in values]
    if name in REQUIRED and any(missing):
        raise ValueError(f"property table: {name} is required; row {missing.index(True)} has none")
    filled = [NO_DATA[kind] if m else v for v, m in zip(values, missing)]
    if dtype.kind == "i":
        filled = [int(v) for v in filled]
    return np.asarray(filled, dtype=dtype).tobytes()


def _strings(name: str, values: list[Any]) -> tuple[bytes, bytes]:
    encoded = []
    for i, value in enumerate(values):
        if _missing(value):
            if name in REQUIRED:
                raise ValueError(f"property table: {name} is required; row {i} has none")
            value = NO_DATA["STRING"]
        encoded.append(str(value).encode("utf-8"))
    offsets = np.zeros(len(encoded) + 1, dtype="<u4")
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    # a buffer view has at least one byte (glTF): a column of empty strings gets one unused byte
    return b"".join(encoded) or b" ", offsets.tobytes()


# --- reading back (tests, checks) -----------------------------------------------------------------


def decode_glb(data: bytes) -> DecodedGlb:
    """Positions, normals, feature ids, indices and the property table of GLB ``data``."""
    gltf = GLTF2.load_from_bytes(data)
    blob = gltf.binary_blob() or b""

    def view_bytes(index: int) -> bytes:
        view = gltf.bufferViews[index]
        start = view.byteOffset or 0
        return blob[start : start + view.byteLength]

    def accessor(index: int, dtype: str, width: int) -> np.ndarray:
        acc = gltf.accessors[index]
        raw = np.frombuffer(view_bytes(acc.bufferView), dtype=dtype, offset=acc.byteOffset or 0, count=acc.count * width)
        return raw.reshape(-1, width) if width > 1 else raw

    positions = normals = np.empty((0, 3), dtype=np.float32)
    feature_ids = indices = np.empty(0, dtype=np.uint32)
    if gltf.meshes:
        primitive = gltf.meshes[0].primitives[0]
        positions = _z_up(accessor(primitive.attributes.POSITION, "<f4", 3))
        normals = _z_up(accessor(primitive.attributes.NORMAL, "<f4", 3))
        ids = accessor(getattr(primitive.attributes, FEATURE_ID_ATTRIBUTE), "<f4", 1)
        feature_ids = ids.astype(np.uint32)
        indices = accessor(primitive.indices, "<u4", 1).astype(np.uint32)
    table: dict[str, list[Any]] = {}
    metadata = (gltf.extensions or {}).get(STRUCTURAL_METADATA)
    if metadata:
        classes = metadata["schema"]["classes"]
        for prop_table in metadata["propertyTables"]:
            definition = classes[prop_table["class"]]["properties"]
            count = prop_table["count"]
            for name, column in prop_table["properties"].items():
                spec = definition[name]
                no_data = spec.get("noData")
                if spec["type"] == "STRING":
                    text = view_bytes(column["values"])
                    offsets = np.frombuffer(view_bytes(column["stringOffsets"]), dtype="<u4", count=count + 1)
                    strings = [text[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
                    table[name] = [None if s == no_data else s for s in strings]
                else:
                    values = np.frombuffer(view_bytes(column["values"]), dtype=_NUMPY[spec["componentType"]], count=count)
                    table[name] = [None if no_data is not None and v == no_data else v for v in values.tolist()]
    return DecodedGlb(positions, normals, feature_ids, indices, table, json.loads(gltf.to_json()))
