"""Checks of a 3D Tiles 1.1 tileset: the rules of the official 3d-tiles-validator (CesiumGS) that
apply to the tileset JSON and glTF content we write, as plain Python (the validator is not on the npm
registry this project installs from).

From its src/validation/: AssetValidator (asset object, ``version`` a string among the known versions,
``tilesetVersion`` a string), TilesetValidator (``geometricError`` a number ≥ 0, a root tile),
TileValidator (a bounding volume with box/region/sphere, ``geometricError`` ≥ 0, ``refine`` ADD or
REPLACE — required on the root by the 3D Tiles spec —, not both ``content`` and ``contents``,
``children`` a non-empty array), BoundingVolumeValidator (region: 6 numbers, west/east in [-π, π],
south/north in [-π/2, π/2], south ≤ north, minimum ≤ maximum height; box 12 numbers; sphere 4 with
radius ≥ 0), TransformValidator (16 numbers, affine), TilesetTraversingValidator (a child's geometric
error ≤ its parent's), ContentDataBoundingVolumeValidator (every vertex of a content, moved by the
tile's global transform, inside the tile's and every ancestor's bounding volume). Besides: every
number finite, a child's region inside its parent's (the spec's "should" for spatial coherence), each
content URI resolving to a GLB, and (asked for) the Khronos glTF validator on every GLB.

Every check returns a list of issues (``"<JSON path>: <what is wrong>"``); a valid tileset gives [].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

KNOWN_VERSIONS = ("0.0", "1.0", "1.1")
REFINE = ("ADD", "REPLACE")
#: radians / metres: what a containment may be off by (the validator's CONTAINMENT_EPSILON is 1e-5,
#: relative; ours is absolute and tighter: 1e-9 rad ≈ 6 mm, 1 mm in height)
EPS_RAD = 1e-9
EPS_M = 1e-3

Resolve = Callable[[str], "bytes | None"]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_asset(tileset: dict) -> list[str]:
    asset = tileset.get("asset")
    if not isinstance(asset, dict):
        return ["/asset: missing or not an object"]
    issues = []
    version = asset.get("version")
    if not isinstance(version, str):
        issues.append("/asset/version: missing or not a string")
    elif version not in KNOWN_VERSIONS:
        issues.append(f"/asset/version: {version!r} is not a known version {KNOWN_VERSIONS}")
    if "tilesetVersion" in asset and not isinstance(asset["tilesetVersion"], str):
        issues.append("/asset/tilesetVersion: not a string")
    return issues


def check_region(path: str, region: Any) -> list[str]:
    if not (isinstance(region, list) and len(region) == 6 and all(_number(v) for v in region)):
        return [f"{path}: a region is 6 finite numbers, not {region!r}"]
    west, south, east, north, low, high = region
    issues = []
    for name, value, limit in (("west", west, math.pi), ("east", east, math.pi),
                               ("south", south, math.pi / 2), ("north", north, math.pi / 2)):
        if not -limit <= value <= limit:
            issues.append(f"{path}: {name} {value} is outside [-{limit}, {limit}]")
    if south > north:
        issues.append(f"{path}: south {south} > north {north}")
    if low > high:
        issues.append(f"{path}: minimum height {low} > maximum height {high}")
    return issues


def check_bounding_volume(path: str, volume: Any) -> list[str]:
    if not isinstance(volume, dict):
        return [f"{path}: missing or not an object"]
    if not any(k in volume for k in ("box", "region", "sphere")):
        return [f"{path}: needs one of box, region, sphere"]
    issues = []
    if "region" in volume:
        issues += check_region(path + "/region", volume["region"])
    if "box" in volume:
        box = volume["box"]
        if not (isinstance(box, list) and len(box) == 12 and all(_number(v) for v in box)):
            issues.append(f"{path}/box: a box is 12 finite numbers")
    if "sphere" in volume:
        sphere = volume["sphere"]
        if not (isinstance(sphere, list) and len(sphere) == 4 and all(_number(v) for v in sphere)):
            issues.append(f"{path}/sphere: a sphere is 4 finite numbers")
        elif sphere[3] < 0:
            issues.append(f"{path}/sphere: negative radius {sphere[3]}")
    return issues


def check_transform(path: str, transform: Any) -> list[str]:
    if not (isinstance(transform, list) and len(transform) == 16 and all(_number(v) for v in transform)):
        return [f"{path}: a transform is 16 finite numbers"]
    if any(abs(transform[i] - want) > 1e-8 for i, want in ((3, 0.0), (7, 0.0), (11, 0.0), (15, 1.0))):
        return [f"{path}: not affine (last row {[transform[i] for i in (3, 7, 11, 15)]})"]
    return []


def region_inside(inner: list[float], outer: list[float]) -> bool:
    return (inner[0] >= outer[0] - EPS_RAD and inner[1] >= outer[1] - EPS_RAD and inner[2] <= outer[2] + EPS_RAD
            and inner[3] <= outer[3] + EPS_RAD and inner[4] >= outer[4] - EPS_M and inner[5] <= outer[5] + EPS_M)


def check_tile(path: str, tile: Any, parent: dict | None) -> list[str]:
    if not isinstance(tile, dict):
        return [f"{path}: not an object"]
    issues = check_bounding_volume(path + "/boundingVolume", tile.get("boundingVolume"))
    error = tile.get("geometricError")
    if not _number(error) or error < 0:
        issues.append(f"{path}/geometricError: must be a finite number ≥ 0, not {error!r}")
    elif parent is not None and _number(parent.get("geometricError")) and error > parent["geometricError"]:
        issues.append(f"{path}/geometricError: {error} is larger than the parent's {parent['geometricError']}")
    if "refine" in tile and tile["refine"] not in REFINE:
        issues.append(f"{path}/refine: {tile['refine']!r} is not ADD or REPLACE")
    if parent is None and "refine" not in tile:
        issues.append(f"{path}/refine: the root tile needs refine")
    if "transform" in tile:
        issues += check_transform(path + "/transform", tile["transform"])
    if "content" in tile and "contents" in tile:
        issues.append(f"{path}: has both content and contents")
    content = tile.get("content")
    if content is not None and not (isinstance(content, dict) and isinstance(content.get("uri"), str) and content["uri"]):
        issues.append(f"{path}/content: needs a uri string")
    children = tile.get("children")
    if children is not None and not (isinstance(children, list) and children and all(isinstance(c, dict) for c in children)):
        issues.append(f"{path}/children: must be a non-empty array of tiles")
    if parent is not None:
        mine = (tile.get("boundingVolume") or {}).get("region")
        theirs = (parent.get("boundingVolume") or {}).get("region")
        if mine is not None and theirs is not None and not check_region("", mine) and not check_region("", theirs):
            if not region_inside(mine, theirs):
                issues.append(f"{path}/boundingVolume: region {mine} is not inside the parent's {theirs}")
    return issues


def _walk(tile: dict, path: str, parent: dict | None, ancestors: list[dict], out: list[tuple[str, dict, dict | None, list[dict]]]) -> None:
    out.append((path, tile, parent, ancestors))
    children = tile.get("children")
    if isinstance(children, list):
        for i, child in enumerate(children):
            if isinstance(child, dict):
                _walk(child, f"{path}/children/{i}", tile, [*ancestors, tile], out)


def check_tileset(tileset: Any, resolve: Resolve | None = None, contents: bool = True, gltf: bool = False) -> list[str]:
    """Every issue of ``tileset`` (a parsed tileset.json); with ``resolve`` (content URI → bytes or
    None) and ``contents``, also every content: it resolves, is a GLB, and its vertices lie in
    its tile's region and its ancestors'; with ``gltf``, the Khronos glTF validator finds no error in it
    (it needs node and the validator: tests that ask for it carry the ``browser`` marker)."""
    if not isinstance(tileset, dict):
        return ["/: a tileset is a JSON object"]
    issues = check_asset(tileset)
    error = tileset.get("geometricError")
    if not _number(error) or error < 0:
        issues.append(f"/geometricError: must be a finite number ≥ 0, not {error!r}")
    root = tileset.get("root")
    if not isinstance(root, dict):
        return [*issues, "/root: missing or not an object"]
    tiles: list[tuple[str, dict, dict | None, list[dict]]] = []
    _walk(root, "/root", None, [], tiles)
    for path, tile, parent, _ in tiles:
        issues += check_tile(path, tile, parent)
    if resolve is None or not contents:
        return issues
    for path, tile, _, ancestors in tiles:
        content = tile.get("content")
        if not isinstance(content, dict) or not isinstance(content.get("uri"), str):
            continue
        uri = content["uri"]
        data = resolve(uri)
        if data is None:
            issues.append(f"{path}/content: {uri} does not resolve")
            continue
        issues += check_content(f"{path}/content", data, [*ancestors, tile], gltf)
    return issues


def global_transform(chain: list[dict]) -> np.ndarray:
    """The product of the transforms from the root down to the last tile of ``chain`` (4×4)."""
    matrix = np.eye(4)
    for tile in chain:
        if "transform" in tile:
            matrix = matrix @ np.array(tile["transform"], dtype=np.float64).reshape(4, 4).T  # column-major
    return matrix


def check_content(path: str, data: bytes, chain: list[dict], gltf: bool = False) -> list[str]:
    """A GLB content of the last tile of ``chain``: valid glTF, vertices inside every region of ``chain``."""
    from tiles.threed.geodesy import geodetic
    from tiles.threed.glb import decode_glb

    if data[:4] != b"glTF":
        return [f"{path}: not a GLB (magic {data[:4]!r})"]
    issues = [f"{path}: glTF: {issue}" for issue in _gltf_issues(data)] if gltf else []
    try:
        decoded = decode_glb(data)
    except Exception as exc:  # a broken GLB is an issue to report, whatever the decoder raised
        return [*issues, f"{path}: cannot decode the GLB: {exc}"]
    positions = np.asarray(decoded.positions, dtype=np.float64).reshape(-1, 3)
    if len(positions) == 0:
        return [*issues, f"{path}: no vertices"]
    if any("transform" in tile and check_transform("", tile["transform"]) for tile in chain):
        return issues  # a broken transform is reported with its tile; its vertices cannot be placed
    matrix = global_transform(chain)
    world = positions @ matrix[:3, :3].T + matrix[:3, 3]
    lon, lat, h = geodetic(world)
    lon, lat = np.radians(lon), np.radians(lat)
    for depth, tile in enumerate(chain):
        region = (tile.get("boundingVolume") or {}).get("region")
        if region is None or check_region("", region):
            continue
        w, s, e, n, lo, hi = region
        outside = ((lon < w - EPS_RAD) | (lon > e + EPS_RAD) | (lat < s - EPS_RAD) | (lat > n + EPS_RAD)
                   | (h < lo - EPS_M) | (h > hi + EPS_M))
        if outside.any():
            which = "its own tile" if depth == len(chain) - 1 else f"ancestor at depth {depth}"
            issues.append(f"{path}: {int(outside.sum())} of {len(world)} vertices lie outside the region of {which}")
    return issues


def _gltf_issues(data: bytes) -> list[str]:
    """The Khronos glTF validator's errors on ``data`` (tests/support/gltf_validator.py)."""
    from support import gltf_validator

    report = gltf_validator.validate(data)
    return [
        f"{m.get('code')}: {m.get('message')} at {m.get('pointer')}"
        for m in report.get("issues", {}).get("messages", [])
        if m.get("severity") == gltf_validator.ERROR
    ]
