"""``cim export 3dtiles DIR``: a lod1 layer of one release as a static 3D Tiles directory.

``DIR/tileset.json`` (content URIs relative: ``{level}/{x}/{y}.glb``) and ``DIR/{level}/{x}/{y}.glb``,
the same bytes the server sends (made by the SceneEngine, through its cache). Everything is written
into a temporary directory beside DIR and renamed into place at the end, so a failed export leaves
nothing half-written; a DIR that exists and is not empty is refused unless ``force`` (then replaced).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cim.errors import BadInput
from tiles.threed.engine import SceneEngine


@dataclass(frozen=True)
class SceneExport:
    layer: str
    release: int
    #: buildings in the tileset and leaves (GLB files) written
    count: int
    files: int
    bytes: int
    largest: int


def relative_uri(release: int, level: int, x: int, y: int) -> str:
    return f"{level}/{x}/{y}.glb"


def export_3dtiles(
    engine: SceneEngine, out: Path, layer: str, release: int | None = None, force: bool = False,
    echo: Callable[[str], None] | None = None,
) -> SceneExport:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BadInput(f"{out} is not empty (use --force to replace it)")
    plan = engine.plan(layer, release)  # NotFound / ReleaseGone before anything is written
    number = plan.release
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    total = largest = files = 0
    try:
        tmp.mkdir()
        tileset = engine.tileset(layer, relative_uri, number)
        (tmp / "tileset.json").write_text(json.dumps(tileset, indent=1), encoding="utf-8")
        leaves = [t for t in plan.tiles() if t.has_content]
        for i, tile in enumerate(leaves, 1):
            data = engine.content(layer, tile.level, tile.x, tile.y, number).data
            path = tmp / relative_uri(number, tile.level, tile.x, tile.y)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            total += len(data)
            largest = max(largest, len(data))
            files += 1
            if echo is not None and (i % 100 == 0 or i == len(leaves)):
                echo(f"  {i}/{len(leaves)} tiles")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SceneExport(layer, number, plan.count, files, total, largest)


def _replace(tmp: Path, out: Path) -> None:
    """Put ``tmp`` where ``out`` is (an empty or, with force, any directory; or nothing)."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
