"""GLB content of LOD1 blocks (tiles/threed/glb.py): the Khronos glTF validator finds no error, the
property table (EXT_structural_metadata) reads back as written — Chinese strings, missing values —
and the feature ids (EXT_mesh_features) index its rows."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from support.gltf_validator import ERROR, INFO, INSTALL_HINT, SKIP_BROWSER, WARNING, installed, validate
from support.tianjin import square

from cim.heights import DEFAULT_RULE, HEIGHT_SOURCES
from tiles.threed.geodesy import ecef, geodetic
from tiles.threed.glb import MESH_FEATURES, NO_DATA, STRUCTURAL_METADATA, decode_glb, encode_glb, schema
from tiles.threed.mesh import extrude
from tiles.threed.model import METADATA_CLASS, PROPERTIES

LON, LAT = 117.1786, 39.1431
ORIGIN = ecef([LON], [LAT], [0.0])[0]


def small_tile() -> tuple[bytes, dict[str, list]]:
    geoms = np.array(
        [square(LON, LAT), square(LON + 0.001, LAT), shapely.MultiPolygon([square(LON, LAT + 0.001), square(LON + 0.0005, LAT + 0.001)])],
        dtype=object,
    )
    table = {
        "fid": [11, 2**40, 7],
        "name": ["鼓楼", None, "天津站 Tianjin Railway Station"],
        "use": [None, "residential", ""],
        "height_m": [27.5, None, None],
        "floors": [None, 6, None],
        "height": [27.5, 18.0, 10.0],
        "height_source": ["height_m", "floors", "default"],
        "base": [3.25, 0.0, -1.5],
    }
    mesh = extrude(geoms, 4490, np.array(table["base"]), np.array(table["height"]), ORIGIN)
    return encode_glb(mesh, table), table


def test_property_table_and_feature_ids_read_back() -> None:
    data, table = small_tile()
    decoded = decode_glb(data)
    assert set(decoded.table) == set(PROPERTIES)
    expected = {**table, "use": [None, "residential", None]}  # the empty string is the strings' noData
    for name, values in expected.items():
        assert decoded.table[name] == pytest.approx(values) if name in ("height", "base", "height_m") else decoded.table[name] == values
    assert sorted(np.unique(decoded.feature_ids).tolist()) == [0, 1, 2]
    # a vertex's feature id is the row of its building: its highest vertices are at the row's base + height
    _, _, h = geodetic(decoded.positions.astype(np.float64) + ORIGIN)
    for row, top in enumerate(np.array(table["base"]) + np.array(table["height"])):
        assert h[decoded.feature_ids == row].max() == pytest.approx(top, abs=0.01)


def test_gltf_structure() -> None:
    data, table = small_tile()
    doc = decode_glb(data).json
    assert data[:4] == b"glTF" and int.from_bytes(data[8:12], "little") == len(data)
    assert doc["asset"]["version"] == "2.0"
    assert doc["extensionsUsed"] == [MESH_FEATURES, STRUCTURAL_METADATA]
    assert not doc.get("extensionsRequired")  # a client without them still draws the blocks
    (primitive,) = doc["meshes"][0]["primitives"]
    assert primitive["mode"] == 4
    accessors = doc["accessors"]
    position = accessors[primitive["attributes"]["POSITION"]]
    assert position["type"] == "VEC3" and position["componentType"] == 5126 and len(position["min"]) == 3
    assert accessors[primitive["indices"]]["componentType"] == 5125  # UNSIGNED_INT
    feature = accessors[primitive["attributes"]["_FEATURE_ID_0"]]
    assert feature["type"] == "SCALAR" and feature["componentType"] == 5126 and not feature.get("normalized")
    assert primitive["extensions"][MESH_FEATURES] == {"featureIds": [{"featureCount": 3, "attribute": 0, "propertyTable": 0}]}
    material = doc["materials"][primitive["material"]]
    assert material.get("doubleSided", False) is False and material["pbrMetallicRoughness"]["baseColorFactor"][3] == 1.0
    metadata = doc["extensions"][STRUCTURAL_METADATA]
    assert metadata["schema"] == schema()
    properties = metadata["schema"]["classes"][METADATA_CLASS]["properties"]
    assert properties["fid"] == {"type": "SCALAR", "componentType": "INT64", "required": True}
    assert properties["name"] == {"type": "STRING", "noData": ""}
    assert properties["floors"]["noData"] == NO_DATA["INT32"]
    (prop_table,) = metadata["propertyTables"]
    assert prop_table["class"] == METADATA_CLASS and prop_table["count"] == 3
    assert prop_table["properties"]["name"]["stringOffsetType"] == "UINT32"
    views = doc["bufferViews"]
    for column in prop_table["properties"].values():
        for key in ("values", "stringOffsets"):
            if key in column:
                assert views[column[key]]["byteOffset"] % 8 == 0


def test_bad_tables_are_refused() -> None:
    data, table = small_tile()
    mesh = extrude([square(LON, LAT)], 4326, 0.0, 10.0, ORIGIN)
    one = {name: values[:1] for name, values in table.items()}
    with pytest.raises(ValueError, match="no column use"):
        encode_glb(mesh, {k: v for k, v in one.items() if k != "use"})
    with pytest.raises(ValueError, match="height_source is required"):
        encode_glb(mesh, {**one, "height_source": [None]})
    with pytest.raises(ValueError, match="different lengths"):
        encode_glb(mesh, {**one, "name": ["a", "b"]})
    with pytest.raises(ValueError, match="no row"):
        encode_glb(mesh, {name: [] for name in PROPERTIES})
    with pytest.raises(ValueError, match="has no row"):
        encode_glb(extrude([None, square(LON, LAT)], 4326, 0.0, 10.0, ORIGIN), one)


# --- the Khronos glTF validator ------------------------------------------------------------------


@pytest.fixture(scope="module")
def gltf_validator() -> str:
    if SKIP_BROWSER:
        pytest.skip("CIM_TEST_SKIP_BROWSER=1")
    version = installed()
    if version is None:
        pytest.fail(INSTALL_HINT)
    return version


def property_table_views(doc: dict) -> set[int]:
    tables = doc.get("extensions", {}).get(STRUCTURAL_METADATA, {}).get("propertyTables", [])
    return {view for t in tables for column in t["properties"].values() for k, view in column.items() if k in ("values", "stringOffsets")}


def check(data: bytes) -> dict:
    """The validator's report: no error, no warning; the only infos are the known ones — this
    validator does not know the two metadata extensions (UNSUPPORTED_EXTENSION), so it reports the
    property table's buffer views as unused (UNUSED_OBJECT)."""
    report = validate(data)
    issues = report["issues"]
    doc = decode_glb(data).json
    listed = [f"{m['code']} {m.get('pointer')}: {m['message']}" for m in issues["messages"]]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, listed
    assert not [m for m in issues["messages"] if m["severity"] in (ERROR, WARNING)]
    unused = {f"/bufferViews/{v}" for v in property_table_views(doc)}
    for message in issues["messages"]:
        known = (message["code"] == "UNSUPPORTED_EXTENSION" and message["pointer"].startswith("/extensionsUsed/")) or (
            message["code"] == "UNUSED_OBJECT" and message["pointer"] in unused
        )
        assert message["severity"] >= INFO and known, listed
    return report


@pytest.mark.browser
def test_validator_accepts_the_demo_buildings(gltf_validator: str, demo_layers) -> None:
    frame: gpd.GeoDataFrame = next(layer.frame for layer in demo_layers if layer.spec.lod1)
    heights, sources = DEFAULT_RULE.resolve(frame["height_m"], frame["floors"])
    mesh = extrude(frame.geometry.to_numpy(), 4326, 0.0, heights, ORIGIN)
    n = len(frame)
    table = {
        "fid": list(range(1, n + 1)),
        "name": frame["name"].tolist(),
        "use": frame["use"].tolist(),
        "height_m": frame["height_m"].tolist(),
        "floors": frame["floors"].tolist(),
        "height": heights.tolist(),
        "height_source": [HEIGHT_SOURCES[s] for s in sources],
        "base": [0.0] * n,
    }
    data = encode_glb(mesh, table)
    report = check(data)
    assert report["info"]["totalTriangleCount"] == len(mesh.indices) // 3
    assert report["info"]["totalVertexCount"] == len(mesh.positions)
    assert decode_glb(data).table["name"] == [None if v is None or v != v or v == "" else v for v in frame["name"].tolist()]


@pytest.mark.browser
def test_validator_accepts_small_and_empty_tiles(gltf_validator: str) -> None:
    check(small_tile()[0])
    empty = extrude([None], 4326, 0.0, 10.0, ORIGIN)
    row = {**{name: [None] for name in PROPERTIES}, "fid": [1], "height": [10.0], "height_source": ["default"], "base": [0.0]}
    data = encode_glb(empty, row)  # a building without a usable footprint: its row, no vertices
    check(data)
    assert decode_glb(data).table["height_source"] == ["default"] and len(decode_glb(data).indices) == 0
