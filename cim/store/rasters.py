"""Raster layers of a release: Cloud-Optimised GeoTIFFs kept beside the release, one per layer.

A build writes each raster layer as a COG in :data:`RASTER_SRID` into a staging directory
(``LayerData.raster_path``); ``Store.publish`` *installs* it — copies it next to the release under
its final name, read-only, before the release becomes current — and records the installed path in
the layer's ``LayerInfo.raster_path``. The file is never written again; it is removed when its
release is pruned, or at once when the publish fails.

- Embedded store: ``<store>.d/releases/rNNNN.<layer>.tif`` (recorded relative to that directory).
- PostGIS: ``$CIM_RASTER_DIR`` if set, else ``~/.local/share/cim/rasters/<host>_<port>_<database>``,
  as ``cim_rNNNN-<token>.<layer>.tif`` (absolute path recorded; the token keeps a number reused
  after a crashed build, or a database recreated under the same name, from meeting an old file).
  Every process serving the store must see that directory at the same path (shared volume).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import rasterio
import sqlalchemy
from rasterio.warp import transform_bounds

from cim.errors import StoreError
from cim.store.base import LayerData, LayerInfo

#: the CRS every raster layer is stored in: Web Mercator, the tile matrix set of most map clients
RASTER_SRID = 3857


def measure_raster(layer: LayerData, raster_path: str | None = None) -> LayerInfo:
    """The catalog entry of a raster layer: its CRS84 extent; ``count`` is 0 (a raster has no features)."""
    path = layer.raster_path
    if path is None:
        raise StoreError(f"raster layer {layer.spec.name!r} has no raster file")
    try:
        with rasterio.open(path) as src:
            bbox = transform_bounds(src.crs, "OGC:CRS84", *src.bounds, densify_pts=21)
    except rasterio.errors.RasterioIOError as exc:
        raise StoreError(f"raster layer {layer.spec.name!r}: cannot read {path}: {exc}") from None
    return LayerInfo(
        spec=layer.spec,
        srid=RASTER_SRID,
        count=0,
        bbox=tuple(float(v) for v in bbox),  # type: ignore[arg-type]
        raster_path=raster_path if raster_path is not None else path,
    )


def install(layer: LayerData, dest: Path) -> None:
    """Copy the staged COG of ``layer`` to ``dest`` (atomically, read-only)."""
    if layer.raster_path is None:
        raise StoreError(f"raster layer {layer.spec.name!r} has no raster file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(layer.raster_path, partial)
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(partial, 0o444)
        os.replace(partial, dest)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"raster layer {layer.spec.name!r}: cannot write {dest}: {exc.strerror or exc}") from None


def postgis_raster_dir(url: str) -> Path:
    """Where a PostGIS store keeps its COGs: ``$CIM_RASTER_DIR``, else one directory per database
    under ``~/.local/share/cim/rasters``."""
    configured = os.environ.get("CIM_RASTER_DIR")
    if configured:
        return Path(configured).expanduser().absolute()
    parsed = sqlalchemy.engine.make_url(url)
    name = f"{parsed.host or 'localhost'}_{parsed.port or 5432}_{parsed.database or 'postgres'}"
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "cim" / "rasters" / name


def remove(paths: list[str | Path]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def link(source: Path, dest: Path) -> None:
    """``dest`` as a hard link to ``source`` (a copy across file systems), read-only."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        try:
            os.link(source, partial)
        except OSError:
            shutil.copyfile(source, partial)
            os.chmod(partial, 0o444)
        os.replace(partial, dest)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot link {source} as {dest}: {exc.strerror or exc}") from None
