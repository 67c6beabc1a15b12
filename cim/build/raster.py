"""Raster layers (DEM, orthophoto imagery): one GeoTIFF source → a Cloud-Optimised GeoTIFF in
EPSG:3857 with overviews, staged for ``Store.publish`` to install beside the release.

Steps per source: **read** (a GeoTIFF rasterio opens, every block read once: a truncated or corrupt
file stops the build; nodata counted), **crs** (declared > embedded through
:func:`cim.build.referencing.resolve_crs`, like vector sources; an engineering / local CRS counts as
unknown; the extent must lie in the CRS's area of use), **cog** (warped to EPSG:3857 and written by
GDAL's COG driver: 256-pixel tiles, DEFLATE, overviews down to one tile).

- Elevation (``LayerSpec.raster == "elevation"``): one band, stored as float32, bilinear resampling,
  overviews averaged; nodata from the file, else ``nodata:`` in the config, else none — pixels the
  warp adds around the data get :data:`DEM_NODATA`.
- Images (``"image"``): 8-bit grey, RGB or RGBA, bilinear resampling; stored RGB(A) with an alpha
  band (the source's nodata / mask and the area outside the warped image are transparent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.crs
import rasterio.shutil
import shapely
from pyproj import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT

from cim.build.config import LayerConfig, SourceConfig
from cim.build.progress import Progress
from cim.build.qa import QAReport, SourceStats
from cim.build.readers import sha256, source_files
from cim.build.referencing import SourceCRS, check_area, resolve_crs
from cim.errors import BuildError
from cim.layerspec import LayerSpec
from cim.store import RASTER_SRID, LayerData

STEPS: tuple[str, ...] = ("read", "crs", "cog")
#: nodata of a stored DEM whose source names none (the area the warp adds around the data)
DEM_NODATA = -32768.0
#: COG creation options shared by both roles
COG_OPTIONS: dict[str, str] = {
    "BLOCKSIZE": "256",
    "COMPRESS": "DEFLATE",
    "OVERVIEWS": "IGNORE_EXISTING",
    "BIGTIFF": "IF_SAFER",
    "NUM_THREADS": "ALL_CPUS",
}


def build_raster_layer(
    layer: LayerConfig,
    spec: LayerSpec,
    report: QAReport,
    checksums: dict[str, str],
    progress: Progress,
    staging: Path,
) -> LayerData:
    """The raster layer ``spec`` from the one source of ``layer``, as a COG staged in ``staging``."""
    (source,) = layer.sources
    progress.start_source(spec.name, source.label, STEPS)
    out = staging / f"{spec.name}.tif"
    summary = _cog_from(source, spec, out, report, progress)
    for name, path in source_files(source).items():
        checksums[name] = sha256(path)
    report.rasters[spec.name] = summary
    progress.end_source(f"{summary['width']} × {summary['height']} px, {100 * summary['nodata_fraction']:.1f} % no data")
    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=f"EPSG:{RASTER_SRID}"))
    return LayerData(spec, empty, raster_path=str(out))


def _cog_from(source: SourceConfig, spec: LayerSpec, out: Path, report: QAReport, progress: Progress) -> dict[str, Any]:
    label, name = source.label, spec.name

    def fail(reason: str) -> BuildError:
        return BuildError(reason, file=label, layer=name)

    progress.step("read")
    if not source.path.is_file():
        raise fail("file not found")
    if source.path.stat().st_size == 0:
        raise fail("empty source: the file is empty")
    try:
        src = rasterio.open(source.path)
    except RasterioError as exc:
        raise fail(f"cannot read the GeoTIFF (truncated or corrupt?): {_first_line(exc)}") from None
    with src:
        if src.driver != "GTiff":
            raise fail(f"not a GeoTIFF (GDAL reads it as {src.driver})")
        _check_bands(src, spec, fail)
        nodata = src.nodata if src.nodata is not None else source.nodata
        stats = _scan(src, nodata, spec, fail)
        total = src.width * src.height
        report.sources.append(
            SourceStats(name, label, source.format, read=total, kept=total - stats["masked"], primary=True)
        )
        progress.step("crs")
        crs = _source_crs(src, source, name, report)
        report.sources[-1].crs = crs.label
        extent = np.array([shapely.box(*src.bounds)], dtype=object)
        check_area(extent, np.array(["extent"], dtype=object), crs, CRS.from_epsg(RASTER_SRID), label, name)
        progress.step("cog", f"{crs.label} → EPSG:{RASTER_SRID}")
        _write_cog(src, crs, nodata, spec, out, fail)
    fraction = stats["masked"] / total if total else 0.0
    if stats["masked"]:
        report.add(
            name, label, None, "raster.nodata", "flagged",
            f"{100 * fraction:.2f} % of {total} pixels have no data" + (f" (nodata {nodata:g})" if nodata is not None else ""),
        )
    with rasterio.open(out) as cog:
        resolution = abs(cog.transform.a)
        overviews = cog.overviews(1)
    return {
        "source": label,
        "width": src.width,
        "height": src.height,
        "bands": src.count,
        "dtype": src.dtypes[0],
        "crs": crs.label,
        "nodata": nodata,
        "nodata_fraction": fraction,
        "min": stats["min"],
        "max": stats["max"],
        "pixel_size_m": resolution,  # in EPSG:3857 metres (ground size × 1/cos(latitude))
        "overviews": overviews,
        "cog_bytes": out.stat().st_size,
    }


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_bands(src: rasterio.DatasetReader, spec: LayerSpec, fail) -> None:
    if spec.raster == "elevation":
        if src.count != 1:
            raise fail(f"a DEM has one band of heights; the file has {src.count}")
        if not np.issubdtype(np.dtype(src.dtypes[0]), np.number) or np.dtype(src.dtypes[0]).kind == "c":
            raise fail(f"a DEM holds numbers; the band is {src.dtypes[0]}")
    else:
        if src.count not in (1, 3, 4):
            raise fail(f"an image has 1 (grey), 3 (RGB) or 4 (RGBA) bands; the file has {src.count}")
        if src.dtypes[0] != "uint8":
            raise fail(f"an image has 8-bit bands; the file has {src.dtypes[0]} (rescale it to 8 bits first)")


def _scan(src: rasterio.DatasetReader, nodata: float | None, spec: LayerSpec, fail) -> dict[str, Any]:
    """Read every block once: pixels without data, and the value range of a DEM. A block that cannot
    be read (a cut or damaged file) stops the build."""
    masked, low, high = 0, np.inf, -np.inf
    try:
        for _, window in src.block_windows(1):
            data = src.read(window=window, masked=True)
            if nodata is not None and src.nodata is None:  # declared in the config only
                data = np.ma.masked_equal(data, nodata) if not np.isnan(nodata) else np.ma.masked_invalid(data)
            if spec.raster == "elevation":
                data = np.ma.masked_invalid(data)
            empty = np.ma.getmaskarray(data).all(axis=0)
            masked += int(empty.sum())
            if spec.raster == "elevation" and data.count():
                low, high = min(low, float(data.min())), max(high, float(data.max()))
    except RasterioError as exc:
        raise fail(f"cannot read the GeoTIFF's pixels (truncated or corrupt?): {_first_line(exc)}") from None
    if masked == src.width * src.height:
        raise fail("empty source: every pixel is nodata")
    finite = np.isfinite(low)
    return {"masked": masked, "min": low if finite else None, "max": high if finite else None}


def _source_crs(src: rasterio.DatasetReader, source: SourceConfig, layer: str, report: QAReport) -> SourceCRS:
    embedded: CRS | None = None
    unreadable: str | None = None
    if src.crs is not None:
        wkt = src.crs.to_wkt()
        try:
            embedded = CRS.from_wkt(wkt)
        except Exception:  # pyproj cannot make a CRS of it
            unreadable = wkt[:60]
        if embedded is not None and (embedded.is_engineering or embedded.geodetic_crs is None):
            unreadable, embedded = f"{embedded.type_name} {embedded.name!r}", None
    crs, note = resolve_crs(source.crs, embedded, source.label, layer, unreadable)
    if crs.offset is not None:
        raise BuildError(
            f"{crs.offset} rasters cannot be rectified (the offsets are not a CRS); give the raster in an EPSG CRS",
            file=source.label,
            layer=layer,
        )
    if note:
        report.add(layer, source.label, None, "crs.override", "flagged", note)
    return crs


def _write_cog(src: rasterio.DatasetReader, crs: SourceCRS, nodata: float | None, spec: LayerSpec, out: Path, fail) -> None:
    warp: dict[str, Any] = {"crs": f"EPSG:{RASTER_SRID}", "resampling": Resampling.bilinear}
    if crs.origin == "declared":
        warp["src_crs"] = rasterio.crs.CRS.from_wkt(crs.crs.to_wkt())
    options = dict(COG_OPTIONS)
    if spec.raster == "elevation":
        warp.update(dtype="float32", nodata=nodata if nodata is not None else DEM_NODATA)
        if nodata is not None:
            warp["src_nodata"] = nodata
        options.update(PREDICTOR="3", RESAMPLING="BILINEAR", OVERVIEW_RESAMPLING="AVERAGE")
    else:
        has_alpha = ColorInterp.alpha in src.colorinterp
        if nodata is not None:
            warp["src_nodata"] = nodata
        warp["add_alpha"] = not has_alpha
        options.update(PREDICTOR="2", RESAMPLING="BILINEAR", OVERVIEW_RESAMPLING="AVERAGE")
    try:
        with WarpedVRT(src, **warp) as vrt:
            rasterio.shutil.copy(vrt, out, driver="COG", **options)
    except RasterioError as exc:
        out.unlink(missing_ok=True)
        raise fail(f"cannot write the Cloud-Optimised GeoTIFF: {_first_line(exc)}") from None
