"""SceneEngine: the 3D Tiles of the lod1 layers of a store, per release, cached (docs/3d-tiles.md).

- A plan (tiles/threed/plan.py) is computed once per (release tag, layer, and the store's edit
  generation when the layer is editable and the current release is read): kept in a small LRU in
  memory and, when the tile cache has a directory, as ``<cache>/<release tag>/3d-<layer>/plan.v<N>[.l<L>][.e<G>].npz``.
  One plan is computed at a time per key (other threads asking for it wait for it).
- Contents (GLB) are cached in the tile cache (tiles/cache.py) under the tileset name ``3d-<layer>``,
  tile matrix set ``glb``: key ``(tag.v<N>[.l<L>][.e<G>], 3d-<layer>, glb, level, y, x)`` (``L``: a
  leaf size other than the default, ``G``: the edit generation); the ETag hashes the key.
- ``release``: None or the current number = the current release (with its edits for an editable
  layer); another kept release is read as it was published; an unknown one is NotFound naming the
  releases kept, a pruned one ReleaseGone (410).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cim.errors import NotFound
from cim.heights import DEFAULT_RULE, HEIGHT_SOURCES, HeightRule
from cim.store import LayerInfo, Store
from tiles.cache import TileCache, TileKey
from tiles.engine import TileEngine, default_cache
from tiles.terrain.sample import elevation_layer
from tiles.threed.model import ScenePlan, SceneContent, SceneTile
from tiles.threed.plan import MAX_LEAF, footprint_frame, ground_heights, plan_batches, tileset_json
from tiles.threed.plan_store import load_plan, save_plan

#: bump when the plan or the content changes: part of every cache key and ETag
SCENE_VERSION = 1
#: plans kept in memory
PLANS_IN_MEMORY = 8
#: how long a document (the collection's 3D box) waits for a plan being computed before it is
#: served without what the plan gives (the plan goes on in the background)
DOCUMENT_WAIT_S = 2.0
LOGGER = logging.getLogger(__name__)
#: the tile matrix set part of a content's cache key
CONTENT_TMS = "glb"
#: the layer fields that go into the property table as they are
_COPIED = ("name", "use", "height_m", "floors")


@dataclass(frozen=True)
class _Target:
    """What a request reads: the layer of one release, and how."""

    info: LayerInfo
    number: int
    #: the release argument of the store's reads: None = current with edits
    read: int | None
    tag: str
    mutable: bool
    generation: int
    dem: LayerInfo | None

    #: the plan's MAX_LEAF (part of the keys when it is not the default)
    max_leaf: int = MAX_LEAF

    @property
    def version(self) -> str:
        leaf = f".l{self.max_leaf}" if self.max_leaf != MAX_LEAF else ""
        return f"{self.tag}.v{SCENE_VERSION}{leaf}" + (f".e{self.generation}" if self.generation else "")

    @property
    def tileset_name(self) -> str:
        return f"3d-{self.info.name}"


class SceneEngine:
    """Plans, tileset.json and GLB contents of a store's lod1 layers (thread-safe)."""

    def __init__(
        self, store: Store, cache: TileCache | None = None, rule: HeightRule = DEFAULT_RULE, tiles: TileEngine | None = None
    ) -> None:
        self.store = store
        self.cache = cache if cache is not None else (tiles.cache if tiles is not None else default_cache(store))
        self.rule = rule
        #: the vector tile engine whose release tags (number + creation time) key contents and ETags
        self.tiles = tiles if tiles is not None else TileEngine(store, self.cache)
        #: buildings a leaf holds at most (tiles/threed/plan.py); tests make it small
        self.max_leaf = MAX_LEAF
        self._plans: OrderedDict[tuple[str, str], tuple[ScenePlan, dict[tuple[int, int, int], SceneTile]]] = OrderedDict()
        self._building: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    # -- layers and releases ----------------------------------------------------------------------
    def layers(self) -> list[str]:
        """The lod1 vector layers of the current release."""
        return [i.name for i in self.store.layers() if i.spec.kind == "vector" and i.spec.lod1]

    def release_tag(self, number: int) -> str:
        """``r0003-20250101T120000123456``: the vector tiles' tag of the release (tiles/engine.py)."""
        return self.tiles.release_tag(number)

    def _target(self, layer: str, release: int | None) -> _Target:
        current = self.store.current_number()
        if release is None or release == current:
            number, read, infos = current, None, self.store.layers()
        else:
            number, read = int(release), int(release)
            infos = self.store.release_layers(number)  # NotFound / ReleaseGone for a release not kept
        info = next((i for i in infos if i.name == layer and i.spec.kind == "vector"), None)
        if info is None or not info.spec.lod1:
            names = ", ".join(i.name for i in infos if i.spec.kind == "vector" and i.spec.lod1) or "none"
            where = "the current release" if read is None else f"release {number}"
            raise NotFound(f"no 3D Tiles for {layer!r} in {where} (lod1 layers: {names})")
        mutable = bool(info.spec.editable) and read is None
        generation = self.store.edit_generation() if mutable else 0
        if not mutable:
            read = number  # read the release by number: a switch in between changes nothing
        return _Target(
            info, number, read, self.release_tag(number), mutable, generation, elevation_layer(infos), self.max_leaf
        )

    # -- plans ------------------------------------------------------------------------------------
    def plan(self, layer: str, release: int | None = None) -> ScenePlan:
        return self._plan(self._target(layer, release))[0]

    def plan_within(self, layer: str, seconds: float = DOCUMENT_WAIT_S) -> ScenePlan | None:
        """The current release's plan of ``layer`` when it is ready within ``seconds``, else None
        while it is computed on in a background thread: for documents that must not wait for the
        plan of a million buildings (the collection's 3D box)."""
        target = self._target(layer, None)
        with self._lock:
            found = self._plans.get((target.version, target.info.name))
        if found is not None:
            return found[0]
        result: list[ScenePlan] = []

        def compute() -> None:
            try:
                result.append(self._plan(target)[0])
            except Exception:  # noqa: BLE001 - logged; the document is served without the box
                LOGGER.exception("3D Tiles: the plan of %s could not be made", layer)

        worker = threading.Thread(target=compute, name=f"cim-3d-plan-{layer}", daemon=True)
        worker.start()
        worker.join(seconds)
        return result[0] if result else None

    def _plan_path(self, target: _Target) -> Path | None:
        disk = self.cache.disk
        if disk is None:
            return None
        return disk.root / target.tag / target.tileset_name / f"plan.{target.version.split('.', 1)[1]}.npz"

    def _plan(self, target: _Target) -> tuple[ScenePlan, dict[tuple[int, int, int], SceneTile]]:
        key = (target.version, target.info.name)
        with self._lock:
            found = self._plans.get(key)
            if found is not None:
                self._plans.move_to_end(key)
                return found
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                found = self._plans.get(key)
            if found is not None:
                return found
            path = self._plan_path(target)
            plan = load_plan(path) if path is not None else None
            if plan is None:
                plan = self._compute(target)
                if path is not None:
                    save_plan(plan, path)
            found = (plan, {(t.level, t.x, t.y): t for t in plan.tiles()})
            with self._lock:
                self._plans[key] = found
                while len(self._plans) > PLANS_IN_MEMORY:
                    self._plans.popitem(last=False)
                self._building.pop(key, None)
            return found

    def _compute(self, target: _Target) -> ScenePlan:
        batches = self.store.layer_batches(target.info.name, target.read)
        try:
            dem = target.dem
            return plan_batches(
                target.info.name, target.number, target.info.srid, batches.batches, self.rule,
                dem.raster_path if dem is not None else None, dem.name if dem is not None else None,
                target.max_leaf,
            )
        finally:
            batches.close()

    # -- tileset.json -----------------------------------------------------------------------------
    def tileset(self, layer: str, content_uri: Callable[[int, int, int, int], str], release: int | None = None) -> dict:
        from tiles.threed.geodesy import region_origin, transform_matrix

        plan = self.plan(layer, release)
        return tileset_json(plan, content_uri, lambda region: transform_matrix(region_origin(region)))

    # -- contents ---------------------------------------------------------------------------------
    def _key(self, target: _Target, level: int, x: int, y: int) -> TileKey:
        return (target.version, target.tileset_name, CONTENT_TMS, int(level), int(y), int(x))

    @staticmethod
    def etag(key: TileKey) -> str:
        digest = hashlib.blake2b("/".join(map(str, key)).encode(), digest_size=10).hexdigest()
        return f'"{key[0]}-{digest}"'

    def _leaf(self, target: _Target, level: int, x: int, y: int) -> SceneTile:
        plan, index = self._plan(target)
        tile = index.get((int(level), int(x), int(y)))
        if tile is None or not tile.has_content:
            raise NotFound(
                f"no 3D tile {level}/{x}/{y} in the tileset of {target.info.name!r} (release {target.number}): "
                "content URIs are listed in its tileset.json"
            )
        return tile

    def version(self, layer: str, level: int, x: int, y: int, release: int | None = None) -> SceneContent:
        """The ETag the content has now, without rendering it (data = b"")."""
        target = self._target(layer, release)
        self._leaf(target, level, x, y)
        key = self._key(target, level, x, y)
        return SceneContent(b"", target.number, self.etag(key), target.mutable, target.generation)

    def content(self, layer: str, level: int, x: int, y: int, release: int | None = None) -> SceneContent:
        """The GLB of leaf ``level/x/y``: from the cache, else rendered and cached."""
        target = self._target(layer, release)
        tile = self._leaf(target, level, x, y)
        key = self._key(target, level, x, y)
        data = self.cache.get(key)
        if data is None:
            data = self.render(target, tile)
            self.cache.put(key, data)
        return SceneContent(data, target.number, self.etag(key), target.mutable, target.generation)

    def render(self, target: _Target, tile: SceneTile) -> bytes:
        from tiles.threed.geodesy import region_origin
        from tiles.threed.glb import encode_glb
        from tiles.threed.mesh import extrude

        info = target.info
        columns = [c for c in _COPIED if c in info.field_types]
        frame = self.store.read_frame(info.name, bbox=tile.bbox, columns=columns, release=target.read)
        frame = frame[frame.index.isin(tile.fids)].sort_index()
        frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
        if len(frame) == 0:  # only when edits removed every building of the leaf since the plan
            raise NotFound(f"3D tile {tile.level}/{tile.x}/{tile.y} of {info.name!r} has no buildings any more")
        geometry = frame.geometry.to_numpy()
        heights, sources = self.rule.resolve(
            frame["height_m"] if "height_m" in frame else None, frame["floors"] if "floors" in frame else None,
            size=len(frame),
        )
        bounds, centroids = footprint_frame(geometry)
        dem = target.dem
        base = ground_heights(dem.raster_path if dem is not None else None, info.srid, bounds, centroids)
        mesh = extrude(geometry, info.srid, base, heights, region_origin(tile.region))
        table: dict[str, list] = {"fid": [int(f) for f in frame.index]}
        for name in _COPIED:
            table[name] = _column(frame[name], name) if name in frame else [None] * len(frame)
        table["height"] = [float(h) for h in heights]
        table["height_source"] = [HEIGHT_SOURCES[int(s)] for s in sources]
        table["base"] = [float(b) for b in base]
        return encode_glb(mesh, table)


def _column(series: pd.Series, name: str) -> list:
    """A frame column as Python values, missing ones as None."""
    out: list = []
    for value in series.astype(object).tolist():
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
        elif name == "floors":
            out.append(int(value))
        elif name == "height_m":
            out.append(float(value))
        else:
            out.append(str(value))
    return out
