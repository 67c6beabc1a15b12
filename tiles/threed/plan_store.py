"""A :class:`ScenePlan` as one ``.npz`` file (the SceneEngine's disk cache of plans).

Tiles are stored in preorder (parents before children) as arrays: level/x/y, region, geometric
error, storage bbox (NaN for inner tiles), the parent's row (-1 for the root) and, for leaves, a
range of one concatenated fid array. Written to a temporary name and renamed (several processes
may share the cache directory); a file that cannot be read is ignored (the plan is computed again).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from tiles.threed.model import ScenePlan, SceneTile

LOGGER = logging.getLogger(__name__)


def save_plan(plan: ScenePlan, path: Path) -> None:
    tiles = plan.tiles()
    row = {id(t): i for i, t in enumerate(tiles)}
    parent = np.full(len(tiles), -1, dtype=np.int64)
    for i, t in enumerate(tiles):
        for c in t.children:
            parent[row[id(c)]] = i
    counts = np.array([len(t.fids) for t in tiles], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    fids = np.concatenate([t.fids for t in tiles]) if tiles else np.empty(0, np.int64)
    meta = {
        "layer": plan.layer, "release": plan.release, "srid": plan.srid, "count": plan.count,
        "bbox3d": list(plan.bbox3d), "dem": plan.dem,
    }
    arrays = {
        "index": np.array([(t.level, t.x, t.y) for t in tiles], dtype=np.int64).reshape(-1, 3),
        "region": np.array([t.region for t in tiles], dtype=np.float64).reshape(-1, 6),
        "error": np.array([t.geometric_error for t in tiles], dtype=np.float64),
        "bbox": np.array([t.bbox if t.bbox is not None else (np.nan,) * 4 for t in tiles], dtype=np.float64).reshape(-1, 4),
        "parent": parent, "offsets": offsets, "fids": fids.astype(np.int64),
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        LOGGER.warning("3D tiles: cannot write the plan %s: %s", path, exc)


def load_plan(path: Path) -> ScenePlan | None:
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        LOGGER.warning("3D tiles: cannot read the plan %s (computing it again): %s", path, exc)
        return None
    try:
        meta = json.loads(arrays["meta"].tobytes().decode())
        index, region, error, bbox = arrays["index"], arrays["region"], arrays["error"], arrays["bbox"]
        parent, offsets, fids = arrays["parent"], arrays["offsets"], arrays["fids"]
        n = len(index)
        kids: list[list[int]] = [[] for _ in range(n)]
        for i in range(1, n):
            kids[int(parent[i])].append(i)
        built: list[SceneTile | None] = [None] * n
        for i in range(n - 1, -1, -1):  # children come after their parent: build bottom-up
            box = None if np.isnan(bbox[i, 0]) else tuple(float(v) for v in bbox[i])
            built[i] = SceneTile(
                int(index[i, 0]), int(index[i, 1]), int(index[i, 2]),
                tuple(float(v) for v in region[i]),  # type: ignore[arg-type]
                float(error[i]), fids=fids[offsets[i] : offsets[i + 1]].copy(), bbox=box,  # type: ignore[arg-type]
                children=tuple(built[k] for k in kids[i]),  # type: ignore[misc]
            )
        root = built[0]
        assert root is not None
        return ScenePlan(
            meta["layer"], int(meta["release"]), int(meta["srid"]), root, int(meta["count"]),
            tuple(meta["bbox3d"]), meta["dem"],  # type: ignore[arg-type]
        )
    except (KeyError, ValueError, IndexError, AssertionError) as exc:
        LOGGER.warning("3D tiles: plan %s is malformed (computing it again): %s", path, exc)
        return None
