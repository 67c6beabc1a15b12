"""3D Tiles of lod1 layers (tiles/threed/): the plan, SceneEngine, `cim export 3dtiles`, on both stores.

- every tileset made (current release, a pinned older release, an export directory) passes the
  3D Tiles checks of tests/support/tileset_check.py (and, browser tier, the Khronos glTF validator);
- counts and heights agree with the Features data and with the vector tiles;
- positions lie within 0.1 m of the footprints on a Gauss-Krüger city with a DEM, standing on the
  DEM rule's ground height (0 without a DEM);
- releases: a new release changes the plan and ETags, a pinned kept release serves its own
  contents, a pruned one is Gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from support import scene_city
from support.gltf_validator import INSTALL_HINT, SKIP_BROWSER, installed
from support.postgis import BACKENDS, backend_store
from support.tiles import decode
from support.tileset_check import check_tileset

from cim.errors import NotFound, ReleaseGone
from cim.heights import DEFAULT_RULE
from cim.store import FeatureQuery, Store, open_store
from cim.tms import tile_matrix_sets
from tiles.cache import DiskCache, TileCache
from tiles.engine import TileEngine
from tiles.threed.engine import SceneEngine
from tiles.threed.export import export_3dtiles
from tiles.threed.geodesy import geodetic, region_origin
from tiles.threed.glb import decode_glb
from tiles.threed.model import ScenePlan

LAYER = "buildings"
#: small leaves, so that the small city has a quadtree several levels deep
LEAF = 20
CIM = Path(sys.executable).parent / "cim"


def uri(release: int, level: int, x: int, y: int) -> str:
    return f"{level}/{x}/{y}.glb?release={release}"


def resolver(engine: SceneEngine, release: int | None = None):
    def resolve(content_uri: str) -> bytes | None:
        path, _, query = content_uri.partition("?")
        level, x, y = (int(p) for p in path.removesuffix(".glb").split("/"))
        pinned = int(query.removeprefix("release=")) if query else release
        try:
            return engine.content(LAYER, level, x, y, pinned).data
        except NotFound:
            return None

    return resolve


def engine_of(store: Store, leaf: int = LEAF) -> SceneEngine:
    engine = SceneEngine(store, TileCache())
    engine.max_leaf = leaf
    return engine


def leaves(plan: ScenePlan):
    return [t for t in plan.tiles() if t.has_content]


def contents(engine: SceneEngine, release: int | None = None) -> dict[int, dict]:
    """Every building of every leaf: fid → its glTF property row, plus its vertices (ECEF) and origin."""
    plan = engine.plan(LAYER, release)
    out: dict[int, dict] = {}
    for tile in leaves(plan):
        data = engine.content(LAYER, tile.level, tile.x, tile.y, release).data
        glb = decode_glb(data)
        origin = region_origin(tile.region)  # the leaf's transform: a translation to it
        positions = np.asarray(glb.positions, dtype=np.float64) + origin
        for row, fid in enumerate(glb.table["fid"]):
            assert fid not in out, f"building {fid} is in two leaves"
            props = {name: values[row] for name, values in glb.table.items()}
            props["xyz"] = positions[np.asarray(glb.feature_ids) == row]
            props["tile"] = (tile.level, tile.x, tile.y)
            out[int(fid)] = props
    return out


def features(store: Store, release: int | None = None) -> dict[int, dict]:
    """fid → properties and geometry (storage CRS) of the layer as the Features data has it."""
    frame = store.read_frame(LAYER, columns=["height_m", "floors"], release=release)
    return {int(fid): {"height_m": row.height_m, "floors": row.floors, "geometry": row.geometry}
            for fid, row in frame.iterrows()}


# -- the Gauss-Krüger city with a DEM: releases 1, 2, 3 (keep 2: release 1 pruned) -------------------
@pytest.fixture(scope="module", params=BACKENDS)
def scene_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("scene")
    with backend_store(request, "scene3d", directory) as url:
        for variant in (0, 1, 2):
            scene_city.publish_scene_city(url, directory, variant, keep=2)
        yield url


@pytest.fixture(scope="module")
def scene(scene_url: str) -> Iterator[tuple[Store, SceneEngine]]:
    with open_store(scene_url) as store:
        yield store, engine_of(store)


@pytest.mark.parametrize("release", [None, 2])
def test_tilesets_pass_the_3d_tiles_checks(scene, release: int | None) -> None:
    store, engine = scene
    tileset = engine.tileset(LAYER, uri, release)
    assert check_tileset(tileset, resolver(engine)) == []
    assert tileset["asset"]["version"] == "1.1"
    number = release or store.current_number()
    assert tileset["asset"]["tilesetVersion"] == str(number)
    assert tileset["extras"] == {"layer": LAYER, "release": number, "count": engine.plan(LAYER, release).count, "dem": "dem"}
    assert tileset["root"]["refine"] == "ADD"
    plan = engine.plan(LAYER, release)
    assert max(t.level for t in plan.tiles()) >= 2  # a real quadtree
    assert all(len(t.fids) <= LEAF for t in leaves(plan))
    for tile in plan.tiles():  # inner tiles: an error from the cell size; leaves: 0
        assert (tile.geometric_error == 0) == tile.has_content


def test_counts_and_heights_agree_with_the_features(scene) -> None:
    store, engine = scene
    plan = engine.plan(LAYER)
    matched = store.query(FeatureQuery(LAYER, limit=1)).number_matched
    fids = np.concatenate([t.fids for t in leaves(plan)])
    assert plan.count == matched == len(fids) == len(set(fids.tolist()))
    built = contents(engine)
    data = features(store)
    assert set(built) == set(data) == set(fids.tolist())
    sources = set()
    for fid, props in built.items():
        height, source = DEFAULT_RULE.resolve_one(data[fid]["height_m"], data[fid]["floors"])
        assert props["height"] == pytest.approx(height, abs=1e-4)
        assert props["height_source"] == source
        sources.add(source)
    assert sources == {"height_m", "floors", "default"}


def test_positions_lie_on_the_footprints_and_stand_on_the_dem(scene) -> None:
    store, engine = scene
    built = contents(engine)
    data = features(store)
    to_gk = Transformer.from_crs("EPSG:4326", f"EPSG:{scene_city.SRID}", always_xy=True)
    for fid, props in built.items():
        footprint = data[fid]["geometry"]
        base = scene_city.expected_base(footprint)
        assert props["base"] == pytest.approx(base, abs=1e-3)
        lon, lat, h = geodetic(props["xyz"])
        x, y = to_gk.transform(lon, lat)
        off = shapely.distance(shapely.points(x, y), footprint.boundary)
        assert off.max() < 0.1, f"building {fid}: a vertex {off.max():.3f} m off its footprint"
        top = base + props["height"]
        assert np.all((np.abs(h - base) < 0.1) | (np.abs(h - top) < 0.1)), f"building {fid}: heights {h.min()}..{h.max()}"
        assert h.min() == pytest.approx(base, abs=0.1) and h.max() == pytest.approx(top, abs=0.1)


def test_a_pinned_release_serves_its_own_contents(scene) -> None:
    store, engine = scene
    assert store.current_number() == 3
    old, new = engine.plan(LAYER, 2), engine.plan(LAYER)
    assert (old.release, new.release) == (2, 3)
    built = contents(engine, 2)
    data = features(store, 2)
    assert set(built) == set(data) and len(built) == old.count
    for fid, props in built.items():
        assert props["height"] == pytest.approx(DEFAULT_RULE.resolve_one(data[fid]["height_m"], data[fid]["floors"])[0], abs=1e-4)
    # the same tile in two releases: other bytes (heights changed), other ETags
    shared = next(t for t in leaves(new) if (t.level, t.x, t.y) in {(o.level, o.x, o.y) for o in leaves(old)})
    a = engine.content(LAYER, shared.level, shared.x, shared.y, 2)
    b = engine.content(LAYER, shared.level, shared.x, shared.y)
    assert (a.release, b.release) == (2, 3) and a.etag != b.etag and a.data != b.data
    assert engine.version(LAYER, shared.level, shared.x, shared.y, 2).etag == a.etag
    assert engine.content(LAYER, shared.level, shared.x, shared.y, 3).etag == b.etag  # 3 = current


def test_pruned_unknown_and_wrong_requests(scene) -> None:
    store, engine = scene
    with pytest.raises(ReleaseGone, match="pruned"):
        engine.tileset(LAYER, uri, 1)
    with pytest.raises(ReleaseGone):
        engine.content(LAYER, 0, 0, 0, 1)
    with pytest.raises(NotFound, match="releases kept: 2, 3"):
        engine.plan(LAYER, 99)
    with pytest.raises(NotFound, match="lod1 layers: buildings"):
        engine.tileset("dem", uri)
    with pytest.raises(NotFound, match="no 3D Tiles for 'nothing'"):
        engine.version("nothing", 0, 0, 0)
    root = engine.plan(LAYER).root
    with pytest.raises(NotFound, match="content URIs are listed in its tileset.json"):
        engine.content(LAYER, root.level, root.x, root.y)  # an inner tile has no content
    with pytest.raises(NotFound):
        engine.content(LAYER, 30, 5, 5)
    assert engine.layers() == [LAYER]


def test_export_writes_a_static_tileset(scene, tmp_path: Path) -> None:
    store, engine = scene
    out = tmp_path / "tiles3d"
    result = export_3dtiles(engine, out, LAYER, 2)
    tileset = json.loads((out / "tileset.json").read_text())
    leaf_uris = [t["content"]["uri"] for t in _tiles(tileset["root"]) if "content" in t]
    assert all(not u.startswith(("/", "http")) and "?" not in u for u in leaf_uris)
    assert result.files == len(leaf_uris) == len(leaves(engine.plan(LAYER, 2)))
    assert (result.release, result.count) == (2, engine.plan(LAYER, 2).count)

    def from_files(content_uri: str) -> bytes | None:
        path = out / content_uri
        return path.read_bytes() if path.is_file() else None

    assert check_tileset(tileset, from_files) == []
    # the same bytes the engine serves
    first = leaves(engine.plan(LAYER, 2))[0]
    assert from_files(f"{first.level}/{first.x}/{first.y}.glb") == engine.content(LAYER, first.level, first.x, first.y, 2).data
    # a directory that is not empty is refused, --force replaces it; a failure leaves nothing behind
    from cim.errors import BadInput

    with pytest.raises(BadInput, match="not empty"):
        export_3dtiles(engine, out, LAYER)
    export_3dtiles(engine, out, LAYER, force=True)
    assert json.loads((out / "tileset.json").read_text())["asset"]["tilesetVersion"] == "3"

    class Failing(SceneEngine):
        def content(self, *args, **kwargs):
            raise OSError("disk full")

    failing = Failing(store, TileCache())
    with pytest.raises(OSError):
        export_3dtiles(failing, tmp_path / "failed", LAYER)
    with pytest.raises(ReleaseGone):
        export_3dtiles(engine, tmp_path / "gone", LAYER, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles3d"]


@pytest.mark.slow  # two `cim` subprocesses (~20 s)
def test_cim_export_3dtiles(scene_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CIM_STORE", "CIM_TILE_CACHE")}
    env["CIM_TILE_CACHE"] = "off"

    def cim(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CIM), *args], capture_output=True, text=True, env=env, timeout=300)

    out = tmp_path / "out"
    done = cim("export", "3dtiles", str(out), "--layer", LAYER, "--store", scene_url)
    assert done.returncode == 0, done.stderr
    assert "of release 3" in done.stdout and (out / "tileset.json").is_file()
    again = cim("export", "3dtiles", str(out), "--store", scene_url)
    assert again.returncode == 1 and "not empty (use --force" in again.stderr


def _tiles(tile: dict) -> Iterator[dict]:
    yield tile
    for child in tile.get("children", []):
        yield from _tiles(child)


def test_plans_are_cached_on_disk(scene, tmp_path: Path) -> None:
    store, _ = scene
    first = SceneEngine(store, TileCache(disk=DiskCache(tmp_path)))
    plan = first.plan(LAYER)
    files = list(tmp_path.rglob("plan.*.npz"))
    assert len(files) == 1
    second = SceneEngine(store, TileCache(disk=DiskCache(tmp_path)))
    again = second.plan(LAYER)
    assert [(t.level, t.x, t.y, t.region, t.geometric_error, t.bbox, t.fids.tolist()) for t in again.tiles()] == [
        (t.level, t.x, t.y, t.region, t.geometric_error, t.bbox, t.fids.tolist()) for t in plan.tiles()
    ]
    assert (again.count, again.release, again.dem, again.bbox3d) == (plan.count, plan.release, plan.dem, plan.bbox3d)
    files[0].write_bytes(b"not a plan")  # a broken file is computed again
    assert SceneEngine(store, TileCache(disk=DiskCache(tmp_path))).plan(LAYER).count == plan.count


def test_one_plan_computation_for_concurrent_requests(scene) -> None:
    store, _ = scene
    engine = engine_of(store, leaf=15)
    with ThreadPoolExecutor(4) as pool:
        plans = list(pool.map(lambda _: engine.plan(LAYER), range(8)))
    assert len({id(p) for p in plans}) == 1  # every thread got the one plan computed


@pytest.mark.browser
def test_contents_pass_the_khronos_gltf_validator(scene) -> None:
    if SKIP_BROWSER:
        pytest.skip("CIM_TEST_SKIP_BROWSER=1")
    if installed() is None:
        pytest.fail(INSTALL_HINT)
    _, engine = scene
    assert check_tileset(engine.tileset(LAYER, uri), resolver(engine), gltf=True) == []


# -- a city without DEM; a new release -----------------------------------------------------------------
def test_without_a_dem_blocks_stand_at_height_0_and_a_new_release_changes_the_tileset(store_url: str, tmp_path: Path) -> None:
    scene_city.publish_scene_city(store_url, tmp_path, 0, dem=False)
    with open_store(store_url) as store:
        engine = engine_of(store)
        plan = engine.plan(LAYER)
        assert plan.dem is None and plan.root.region[4] == pytest.approx(-0.05)
        built = contents(engine)
        assert {props["base"] for props in built.values()} == {0.0}
        assert min(geodetic(p["xyz"])[2].min() for p in built.values()) == pytest.approx(0.0, abs=0.05)
        tile = leaves(plan)[0]
        before = engine.version(LAYER, tile.level, tile.x, tile.y)
        tileset = engine.tileset(LAYER, uri)
        scene_city.publish_scene_city(store_url, tmp_path, 1, dem=False)
        assert store.current_number() == 2 or _wait_current(store, 2)
        after = engine.plan(LAYER)
        assert (after.release, after.count) == (2, plan.count + scene_city.COLS)
        assert engine.tileset(LAYER, uri)["asset"]["tilesetVersion"] == "2" != tileset["asset"]["tilesetVersion"]
        same = after.find(tile.level, tile.x, tile.y)
        if same is not None and same.has_content:
            assert engine.version(LAYER, tile.level, tile.x, tile.y).etag != before.etag
        # the first release, now pinned, is still served as it was
        assert engine.version(LAYER, tile.level, tile.x, tile.y, 1).etag == before.etag
        assert check_tileset(engine.tileset(LAYER, uri), resolver(engine)) == []


def _wait_current(store: Store, number: int) -> bool:
    from support.tiles import wait_until

    return bool(wait_until(lambda: store.current_number() == number))


# -- the demo city (OSM, EPSG:4326) ----------------------------------------------------------------------
def test_demo_city_tileset_counts_and_vector_tile_heights(demo_store_url: str) -> None:
    with open_store(demo_store_url) as store:
        engine = SceneEngine(store, TileCache())
        plan = engine.plan(LAYER)
        assert check_tileset(engine.tileset(LAYER, uri), resolver(engine)) == []
        assert plan.count == store.query(FeatureQuery(LAYER, limit=1)).number_matched
        built = contents(engine)
        assert len(built) == plan.count
        data = features(store)
        for fid, props in built.items():
            assert props["height"] == pytest.approx(DEFAULT_RULE.resolve_one(data[fid]["height_m"], data[fid]["floors"])[0], abs=1e-4)
        # the vector tiles at z16 (every building but slivers that collapse in MVT): same height per id
        tms = tile_matrix_sets()["WebMercatorQuad"]
        centroids = shapely.centroid(np.array([d["geometry"] for d in data.values()]))
        tiles = {tms.tile(x, y, 16) for x, y in zip(shapely.get_x(centroids), shapely.get_y(centroids))}
        vector = TileEngine(store, TileCache())
        seen: dict[int, dict] = {}
        for tile in tiles:
            for feature in decode(vector.tile(LAYER, tms, tile).data).get(LAYER, {}).get("features", []):
                seen[int(feature["id"])] = feature["properties"]
        to_metres = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
        for fid in set(data) - set(seen):
            area = shapely.transform(data[fid]["geometry"], lambda xy: np.column_stack(to_metres.transform(xy[:, 0], xy[:, 1]))).area
            assert area < 1.0, f"building {fid} ({area:.1f} m²) is missing from the vector tiles"
        assert len(seen) > 0.99 * plan.count
        for fid, props in seen.items():
            height, _ = DEFAULT_RULE.resolve_one(props.get("height_m"), props.get("floors"))
            assert built[fid]["height"] == pytest.approx(height, abs=1e-4), f"building {fid}"


# -- the checker catches broken tilesets ------------------------------------------------------------------
def test_the_checker_catches_broken_tilesets(scene) -> None:
    _, engine = scene
    good = engine.tileset(LAYER, uri)
    resolve = resolver(engine)
    assert check_tileset(good, resolve) == []

    def broken(change, with_contents: bool) -> list[str]:
        tileset = json.loads(json.dumps(good))
        change(tileset)
        return check_tileset(tileset, resolve, contents=with_contents)

    def first_leaf(tileset: dict) -> dict:
        return next(t for t in _tiles(tileset["root"]) if "content" in t)

    def child(tileset: dict) -> dict:
        return tileset["root"]["children"][0]

    cases = {
        "asset/version": lambda t: t["asset"].update(version=1.1),
        "is not a known version": lambda t: t["asset"].update(version="2.0"),
        "/geometricError: must be": lambda t: t.update(geometricError=-1),
        "larger than the parent": lambda t: child(t).update(geometricError=t["root"]["geometricError"] * 2),
        "is not ADD or REPLACE": lambda t: t["root"].update(refine="add"),
        "the root tile needs refine": lambda t: t["root"].pop("refine"),
        "west 4.0 is outside": lambda t: t["root"]["boundingVolume"]["region"].__setitem__(0, 4.0),
        "south": lambda t: t["root"]["boundingVolume"]["region"].__setitem__(1, 1.2),
        "minimum height": lambda t: child(t)["boundingVolume"]["region"].__setitem__(4, 1e6),
        "is not inside the parent's": lambda t: child(t)["boundingVolume"]["region"].__setitem__(5, 1e5),
        "not affine": lambda t: first_leaf(t)["transform"].__setitem__(3, 1.0),
        "16 finite numbers": lambda t: first_leaf(t).update(transform=[1.0] * 15),
        "vertices lie outside the region of its own tile": lambda t: first_leaf(t)["transform"].__setitem__(12, first_leaf(t)["transform"][12] + 500),
        "does not resolve": lambda t: first_leaf(t)["content"].update(uri="99/0/0.glb"),
        "needs one of box, region, sphere": lambda t: child(t).update(boundingVolume={}),
        "both content and contents": lambda t: first_leaf(t).update(contents=[]),
        "non-empty array": lambda t: t["root"].update(children=[]),
    }
    with_contents = {"not affine", "16 finite numbers", "vertices lie outside the region of its own tile", "does not resolve"}
    for expected, change in cases.items():
        issues = broken(change, expected in with_contents)
        assert any(expected in issue for issue in issues), f"{expected!r} not in {issues}"
    not_glb = lambda uri_: b"JSON" + b"\0" * 20  # noqa: E731
    assert any("not a GLB" in i for i in check_tileset(good, not_glb))


# -- the plan on its own (no store) ---------------------------------------------------------------------
def test_the_plan_puts_every_building_in_exactly_one_leaf() -> None:
    from tiles.threed.plan import lonlat_bounds, plan_arrays, tileset_json

    # 40 × 50 boxes on a 10 m grid: centroids fall on the quadtree's cell lines, where half-open
    # cells must still give each building exactly one leaf; one box far away stretches the square
    xs, ys = np.meshgrid(np.arange(40) * 10.0, np.arange(50) * 10.0)
    x0, y0 = 500_000.0, 4_330_000.0
    boxes = list(shapely.box(x0 + xs.ravel() - 3, y0 + ys.ravel() - 3, x0 + xs.ravel() + 3, y0 + ys.ravel() + 3))
    boxes.append(shapely.box(x0 + 5000, y0 + 5000, x0 + 5010, y0 + 5010))
    geometry = np.array(boxes + [None, shapely.Polygon()], dtype=object)
    fids = np.arange(len(geometry), dtype=np.int64) * 7 + 3
    heights = np.linspace(3, 90, len(geometry))
    plan = plan_arrays(LAYER, 1, scene_city.SRID, fids, geometry, heights, max_leaf=50)
    assert plan.count == len(boxes)  # missing and empty geometries are left out
    tiles = plan.tiles()
    in_leaves = np.concatenate([t.fids for t in tiles if t.has_content])
    assert sorted(in_leaves.tolist()) == fids[: len(boxes)].tolist()
    assert all(len(t.fids) <= 50 for t in tiles)
    assert all(t.children == () for t in tiles if t.has_content)
    ll = np.radians(lonlat_bounds(scene_city.SRID, shapely.bounds(np.array(boxes))))
    height_of = dict(zip(fids.tolist(), heights.tolist()))
    for tile in tiles:
        for child in tile.children:  # children are the quadrants of their parent
            assert child.level == tile.level + 1 and (child.x // 2, child.y // 2) == (tile.x, tile.y)
            assert child.geometric_error < tile.geometric_error
        if tile.has_content:
            rows = (tile.fids - 3) // 7
            w, s, e, n, lo, hi = tile.region
            assert np.all((ll[rows, 0] >= w) & (ll[rows, 1] >= s) & (ll[rows, 2] <= e) & (ll[rows, 3] <= n))
            assert lo <= 0 and hi >= max(height_of[int(f)] for f in tile.fids)
    empty = plan_arrays(LAYER, 1, scene_city.SRID, np.empty(0, np.int64), np.empty(0, object), np.empty(0))
    assert empty.count == 0 and empty.root.children == () and not empty.root.has_content
    assert check_tileset(tileset_json(empty, uri, lambda region: [])) == []  # no leaf, no transform asked
