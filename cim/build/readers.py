"""Reading sources: format detection, integrity checks, and one reader per format.

Shapefile, GeoPackage, GeoJSON and FlatGeobuf are read with pyogrio (GDAL); GeoParquet with
geopandas (plain Parquet with coordinate or WKT columns with pandas); CSV with pandas; OSM PBF with
pyrosm. Every reader returns a :class:`SourceFrame` whose CRS is what the file says (None when it says
nothing). A file that cannot be read — missing, truncated, corrupt — raises
:class:`~cim.errors.BuildError`, as do an empty source and a column the config names but the source
lacks. Per-feature problems (unparseable coordinates or WKT; rings of fewer than 4 points, unclosed
rings, NaN coordinates, coordinates nested wrongly: :mod:`cim.build.malformed`) are returned, not
raised: such a feature gets no geometry and the reason, and the rest of the file is read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj.exceptions import CRSError

from cim.build import geojson_reader
from cim.build.integrity import check_integrity
from cim.build.malformed import NONFINITE, nonfinite, wkb_problem
from cim.errors import BuildError

if TYPE_CHECKING:
    from cim.build.config import SourceConfig

FORMATS: tuple[str, ...] = ("shapefile", "gpkg", "geojson", "flatgeobuf", "geoparquet", "csv", "osm", "geotiff")
#: formats of raster layers (read by cim/build/raster.py, not here)
RASTER_FORMATS: tuple[str, ...] = ("geotiff",)
#: formats read as tables, whose geometry may come from coordinate or WKT columns
TABLE_FORMATS: tuple[str, ...] = ("csv", "geoparquet")
_OGR_FORMATS = ("shapefile", "gpkg", "geojson", "flatgeobuf")
_EXTENSIONS: dict[str, str] = {
    ".osm.pbf": "osm",
    ".pbf": "osm",
    ".shp": "shapefile",
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".fgb": "flatgeobuf",
    ".parquet": "geoparquet",
    ".geoparquet": "geoparquet",
    ".csv": "csv",
    ".tif": "geotiff",
    ".tiff": "geotiff",
}
_SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
#: what an OSM source's ``layer`` names: pyrosm's extraction of that kind of feature
OSM_LAYERS: dict[str, Callable[[Any], gpd.GeoDataFrame | None]] = {
    "buildings": lambda osm: osm.get_buildings(),
    "landuse": lambda osm: osm.get_landuse(),
    "pois": lambda osm: osm.get_pois(),
    "natural": lambda osm: osm.get_natural(),
    "boundaries": lambda osm: osm.get_boundaries(),
    "network": lambda osm: osm.get_network(network_type="all"),
}


@dataclass
class SourceFrame:
    """What a reader found: source columns and geometry (CRS as in the file, None when absent)."""

    frame: gpd.GeoDataFrame
    #: the source's feature ids as strings, aligned with ``frame``
    ids: pd.Series
    #: per feature, why no geometry could be read from its columns (None where it could)
    geometry_problems: pd.Series
    #: source-level observations for the QA report: (rule, reason)
    notes: list[tuple[str, str]] = field(default_factory=list)
    #: the file defines a CRS that could not be understood (e.g. a .prj pyproj cannot parse)
    unreadable_crs: str | None = None
    #: features left out by the source's ``where``
    filtered: int = 0


def detect_format(path: Path) -> str | None:
    """The format of ``path`` by its extension (``.osm.pbf`` before ``.pbf``), None when unknown."""
    name = path.name.lower()
    return next((fmt for ext, fmt in _EXTENSIONS.items() if name.endswith(ext)), None)


def source_files(source: SourceConfig) -> dict[str, Path]:
    """The files a source consists of, by config-relative name (a Shapefile brings its sidecars)."""
    files = {source.label: source.path}
    if source.format == "shapefile":
        for suffix in _SHAPEFILE_SIDECARS:
            for candidate in (source.path.with_suffix(suffix), source.path.with_suffix(suffix.upper())):
                if candidate.is_file():
                    files[str(PurePosixPath(source.label).with_suffix(candidate.suffix))] = candidate
                    break
    return files


def sha256(path: Path) -> str:
    """The file's SHA-256, computed once per file version (sources often share a file: the layers
    of one GeoPackage)."""
    stat = path.stat()
    # the status-change time and inode too: a file written again with its old size and
    # modification time put back is another version (cim/build/carry.py: file_record)
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


@lru_cache(maxsize=1024)
def _sha256(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_source(source: SourceConfig, layer: str, allow_empty: bool = False) -> SourceFrame:
    """Read ``source`` (of ``layer``), check the columns the config names, apply ``where``. A source
    without features stops the build unless ``allow_empty`` (the layer's ``allow_empty``)."""

    def fail(reason: str) -> BuildError:
        return BuildError(reason, file=source.label, layer=layer)

    if not source.path.is_file():
        raise fail("file not found")
    if source.path.stat().st_size == 0:
        raise fail("empty source: the file is empty")
    check_integrity(source.path, source.format, fail)
    try:
        frame, ids, problems, notes = _read(source, layer, fail)
    except BuildError:
        raise
    except UnicodeDecodeError as exc:
        raise fail(f"the text is not {exc.encoding}: name its encoding, e.g. encoding: gbk") from None
    except Exception as exc:  # any reader failure means the file cannot be used: name it
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(f"cannot read the {source.format} file (truncated or corrupt?): {message}") from exc
    if len(frame) == 0:
        if not allow_empty:
            raise fail("empty source: the file holds no features (allow_empty: true lets the layer be empty)")
        return SourceFrame(frame, ids, problems, notes, None, 0)
    frame, problems = _drop_nonfinite(frame, problems)
    _check_columns(source, frame, fail)
    total = len(frame)
    if source.where:
        keep = np.ones(len(frame), dtype=bool)
        for column, allowed in source.where.items():
            values = frame[column]
            text = values.astype("string")
            keep &= (values.isin(allowed) | text.isin([str(v) for v in allowed])).fillna(False).to_numpy(dtype=bool)
        frame, problems = frame[keep].reset_index(drop=True), problems[keep].reset_index(drop=True)
        ids = ids[keep].reset_index(drop=True)
        if len(frame) == 0 and not allow_empty:
            raise fail(f"empty source: no feature matches where {source.where}")
    if source.id is not None:
        given = frame[source.id].astype("string").str.strip()
        given = given.mask(given == "")
        # a feature without an id of its own is named by its position in the file: #<fid or row>
        ids = given.astype(object).where(given.notna(), "#" + ids.astype(str))
    return SourceFrame(frame, ids, problems, notes, _unreadable_crs(source, frame), total - len(frame))


def _drop_nonfinite(frame: gpd.GeoDataFrame, problems: pd.Series) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Geometries with a NaN or infinite coordinate become missing, with that as their problem."""
    geoms = frame.geometry.to_numpy()
    bad = nonfinite(geoms)
    if not bad.any():
        return frame, problems
    geoms = geoms.copy()
    geoms[bad] = None
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs), crs=frame.crs)
    problems = problems.copy()
    problems[bad] = f"the geometry has {NONFINITE}"
    return frame, problems


def _unreadable_crs(source: SourceConfig, frame: gpd.GeoDataFrame) -> str | None:
    """Where a Shapefile's .prj holds something GDAL dropped as no CRS at all, what it holds."""
    if source.format != "shapefile" or frame.crs is not None:
        return None
    prj = source_files(source).get(str(PurePosixPath(source.label).with_suffix(".prj")))
    text = prj.read_text(errors="replace").strip() if prj is not None else ""
    return f"{prj.name if prj else ''}: {text[:60]!r}" if text else None


def _check_columns(source: SourceConfig, frame: gpd.GeoDataFrame, fail: Callable[[str], BuildError]) -> None:
    named = [("id", source.id)] + [(f"where {c}", c) for c in source.where]
    named += [(f"field {target}", column) for target, column in source.fields.items()]
    for role, column in named:
        if column is not None and column not in frame.columns:
            columns = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)
            raise fail(f"{role}: the source has no column {column!r} (columns: {columns})")


def _read(
    source: SourceConfig, layer: str, fail: Callable[[str], BuildError]
) -> tuple[gpd.GeoDataFrame, pd.Series, pd.Series, list[tuple[str, str]]]:
    notes: list[tuple[str, str]] = []
    problems: pd.Series | None = None
    if source.format in _OGR_FORMATS:
        frame, problems = _read_ogr_features(source, fail)
        ids = pd.Series(frame.index.astype(str), dtype=object)
        frame = frame.reset_index(drop=True)
    elif source.format == "osm":
        frame, ids, notes = _read_osm(source, layer, fail)
    else:
        frame, problems = _read_table(source, fail)
        ids = pd.Series([str(i) for i in range(1, len(frame) + 1)], dtype=object)
    if problems is None:
        problems = pd.Series([None] * len(frame), dtype=object)
    return frame, ids, problems, notes


def _read_ogr_features(
    source: SourceConfig, fail: Callable[[str], BuildError]
) -> tuple[gpd.GeoDataFrame, pd.Series | None]:
    """An OGR source with, per feature, why its geometry is missing (None when none is). The fast
    read decodes every geometry at once; only when that fails for single features (GEOS refuses a
    ring, GDAL refuses a GeoJSON file over one feature or drops a geometry it cannot read) are the
    features gone through one by one, so a bad feature is rejected and the rest of the file builds."""
    problems: pd.Series | None = None
    try:
        frame = _read_ogr(source, fail)
    except shapely.errors.GEOSException:  # a geometry GDAL read but GEOS refuses: find which, and why
        frame, problems = _read_ogr_per_feature(source, fail)
    except BuildError:
        raise
    except Exception:
        if source.format != "geojson":
            raise
        parsed = geojson_reader.read_features(source.path)
        if parsed is None:
            raise  # not a GeoJSON document at all: GDAL's error is the file's
        return parsed
    if source.format == "geojson" and frame.geometry.isna().any():  # GDAL drops what it cannot read: why?
        dropped = geojson_reader.explain_dropped(source.path, frame)
        if dropped is not None:
            problems = dropped if problems is None else problems.where(problems.notna(), dropped)
    return frame, problems


def _read_ogr_per_feature(
    source: SourceConfig, fail: Callable[[str], BuildError]
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """The features GDAL reads, each geometry decoded alone from its WKB: the ones GEOS refuses are
    missing, with the reason (:func:`cim.build.malformed.wkb_problem`)."""
    import pyogrio

    frame = _read_ogr(source, fail, on_invalid="ignore")
    meta, table = pyogrio.read_arrow(source.path, layer=source.layer, columns=[], return_fids=True)
    wkb = table.column(meta["geometry_name"] or "wkb_geometry").to_pylist()
    fids = table.column(meta["fid_column"]).to_numpy()
    raw = dict(zip(fids.tolist(), wkb))
    problems = pd.Series(
        [wkb_problem(raw.get(fid)) if geom is None and raw.get(fid) is not None else None
         for fid, geom in zip(frame.index.tolist(), frame.geometry.to_numpy())],
        dtype=object,
    )  # fmt: skip
    return frame, problems


def _read_ogr(source: SourceConfig, fail: Callable[[str], BuildError], on_invalid: str = "raise") -> gpd.GeoDataFrame:
    import pyogrio
    from pyogrio.errors import CRSError as GDALCRSError

    layers = [str(name) for name, _ in pyogrio.list_layers(source.path)]
    if source.layer is not None and source.layer not in layers:
        raise fail(f"no layer {source.layer!r} in the file (layers: {', '.join(layers)})")
    if source.layer is None and len(layers) > 1:
        raise fail(f"the file has several layers ({', '.join(layers)}): name one with `layer:`")
    kwargs: dict[str, Any] = {"encoding": source.encoding} if source.encoding else {}
    name = source.layer or layers[0]
    try:
        # through Arrow: the same columns and types, read in about 60 % of the time (1M footprints)
        return pyogrio.read_dataframe(
            source.path, layer=name, fid_as_index=True, use_arrow=True, on_invalid=on_invalid, **kwargs
        )
    except (GDALCRSError, CRSError) as exc:
        hint = " (its .prj)" if source.format == "shapefile" else ""
        raise fail(f"unknown CRS in the file: {exc}; correct the file's CRS definition{hint}") from None


def _read_table(source: SourceConfig, fail: Callable[[str], BuildError]) -> tuple[gpd.GeoDataFrame, pd.Series | None]:
    """CSV, GeoParquet, or plain Parquet with coordinate / WKT columns; with per-row geometry problems."""
    if source.format == "geoparquet" and source.x is None and source.wkt is None:
        try:
            return gpd.read_parquet(source.path), None
        except ValueError as exc:
            if "geo" in str(exc).lower() and "metadata" in str(exc).lower():
                raise ValueError("not a GeoParquet file (no 'geo' metadata): name its x/y or wkt columns") from None
            raise
    if source.format == "csv":
        _check_csv_complete(source.path, source.encoding or "utf-8-sig")
        # values are read as written: only empty cells are missing (no "NA"/"n/a"/"null" guessing)
        table = pd.read_csv(
            source.path, dtype=str, encoding=source.encoding or "utf-8-sig", keep_default_na=False, na_values=[""]
        )
    else:
        table = pd.read_parquet(source.path)
    geometry_columns = [c for c in (source.x, source.y, source.wkt) if c is not None]
    missing = [c for c in geometry_columns if c not in table.columns]
    if missing:
        raise fail(f"geometry: the source has no column {missing[0]!r} (columns: {', '.join(map(str, table.columns))})")
    geoms, problems = _table_geometry(table, source)
    frame = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, index=table.index), crs=None)
    return frame, problems


def _check_csv_complete(path: Path, encoding: str) -> None:
    """A CSV whose last line lacks both its newline and some of the header's columns was cut off."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    if not tail or tail.endswith(b"\n"):
        return
    with path.open(encoding=encoding, newline="") as fh:
        header = next(csv.reader(fh), [])
    last = next(csv.reader([tail.rsplit(b"\n", 1)[-1].decode(encoding, errors="replace")]), [])
    if len(last) < len(header):
        raise ValueError(
            f"the last line has {len(last)} of {len(header)} columns and no line end: the file was cut off"
        )


def _table_geometry(table: pd.DataFrame, source: SourceConfig) -> tuple[np.ndarray, pd.Series]:
    problems = pd.Series([None] * len(table), index=table.index, dtype=object)
    if source.wkt is not None:
        text = table[source.wkt].astype("string")
        present = (text.notna() & (text.str.strip() != "")).fillna(False).to_numpy(dtype=bool)
        geoms = np.full(len(table), None, dtype=object)
        geoms[present] = shapely.from_wkt(text[present].to_numpy(dtype=object), on_invalid="ignore")
        problems[~present] = f"no WKT in column {source.wkt!r}"
        bad = present & pd.isna(geoms)
        problems[bad] = [f"unparseable WKT {str(t)[:40]!r}" for t in text[bad]]
        return geoms, problems
    assert source.x is not None and source.y is not None
    x = pd.to_numeric(table[source.x], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(table[source.y], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    geoms = np.full(len(table), None, dtype=object)
    geoms[ok] = shapely.points(x[ok], y[ok])
    shown = [table[c].map(lambda v: "empty" if pd.isna(v) else repr(v)) for c in (source.x, source.y)]
    problems[~ok] = [
        f"no numeric coordinates ({source.x}={a}, {source.y}={b})" for a, b in zip(shown[0][~ok], shown[1][~ok])
    ]
    return geoms, problems


def _read_osm(
    source: SourceConfig, layer: str, fail: Callable[[str], BuildError]
) -> tuple[gpd.GeoDataFrame, pd.Series, list[tuple[str, str]]]:
    """An OSM extract via pyrosm; mapped tags without a column of their own come from ``tags``."""
    from pyrosm import OSM

    kind = source.layer or layer
    if kind not in OSM_LAYERS:
        raise fail(f"name the OSM features to read with `layer:` ({', '.join(OSM_LAYERS)})")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not find any OSM data", category=UserWarning)
        frame = OSM_LAYERS[kind](OSM(str(source.path)))
    if frame is None or len(frame) == 0:
        return gpd.GeoDataFrame(geometry=gpd.GeoSeries([])), pd.Series([], dtype=object), []
    frame = frame.reset_index(drop=True)
    if frame.crs is None:
        frame = frame.set_crs(4326)
    kinds = frame["osm_type"].astype(str) if "osm_type" in frame.columns else pd.Series("way", index=frame.index)
    ids = (kinds + "/" + frame["id"].astype("int64").astype(str)).astype(object)
    notes = []
    tags = (
        frame["tags"].map(lambda t: json.loads(t) if isinstance(t, str) else (t if isinstance(t, dict) else {}))
        if "tags" in frame
        else None
    )
    for column in set(source.fields.values()) - set(frame.columns):
        values = tags.map(lambda t, key=column: t.get(key)) if tags is not None else pd.Series(None, index=frame.index)
        frame[column] = values.astype(object)
        if values.isna().all():
            notes.append(("field.absent", f"tag {column!r} occurs nowhere in the extract"))
    return frame, ids, notes
