"""The build config: a YAML file naming a city, its storage CRS and, per layer, the sources to read.

See docs/build-config.md for the format with an example. :func:`load_config` parses and checks the
structure (raising :class:`~cim.errors.BuildError` naming the config file and the offending key);
:func:`check_against` checks it against the layer catalog. Relative source paths resolve against the
config file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cim.build.china_offsets import offset_system
from cim.build.readers import FORMATS, RASTER_FORMATS, TABLE_FORMATS, detect_format
from cim.catalog import LayerCatalog
from cim.crs import parse_crs, srid_of
from cim.errors import BuildError, CIMError

#: what a layer may lose and still be published: given at the top level (for every layer) and per layer
_LOSS_KEYS = {"max_rejected_share", "allow_empty"}
_TOP_KEYS = {"city", "storage_crs", "keep", "layers", "catalog"} | _LOSS_KEYS
_LAYER_KEYS = {"sources", "invalid_geometry", "crosscheck"} | _LOSS_KEYS
_SOURCE_KEYS = {
    "path",
    "format",
    "layer",
    "crs",
    "fields",
    "id",
    "x",
    "y",
    "lon",
    "lat",
    "wkt",
    "where",
    "encoding",
    "name",
    "nodata",
}
#: the keys a raster (GeoTIFF) source may have
_RASTER_SOURCE_KEYS = {"path", "format", "crs", "name", "nodata"}
_CROSSCHECK_KEYS = {"min_iou", "max_distance_m", "tolerances"}
#: fields compared between matched features of two sources by default, with their tolerance
DEFAULT_TOLERANCES: dict[str, float] = {"height_m": 3.0}


@dataclass(frozen=True)
class SourceConfig:
    """One source of a layer."""

    #: the file, resolved against the config's directory
    path: Path
    #: the path as written in the config: how QA records, errors and checksums name the file
    label: str
    format: str
    #: provenance value stored in each feature's ``source`` column (default: the file name)
    name: str
    #: layer inside a multi-layer file (GeoPackage...); for OSM: buildings, landuse, pois, natural, boundaries, network
    layer: str | None = None
    #: declared CRS: EPSG:xxxx (any pyproj input) or GCJ-02 / BD-09
    crs: str | None = None
    #: target field -> source column
    fields: dict[str, str] = field(default_factory=dict)
    #: column holding the source's feature id (default: the file's feature id, or the row number)
    id: str | None = None
    #: coordinate columns (CSV / plain Parquet): x = easting or longitude
    x: str | None = None
    y: str | None = None
    #: WKT geometry column (CSV / plain Parquet)
    wkt: str | None = None
    #: keep only rows whose column equals one of the values
    where: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    encoding: str | None = None
    #: raster sources: the value of pixels without data, when the file does not say
    nodata: float | None = None
    #: the keys the config gave (raster sources accept only some)
    keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CrossCheckConfig:
    """How secondary sources of a layer verify the primary one."""

    #: polygons match when intersection over union reaches this
    min_iou: float = 0.5
    #: points and lines match within this distance
    max_distance_m: float = 5.0
    #: numeric fields compared between matched features (field -> largest allowed difference);
    #: None means DEFAULT_TOLERANCES for the fields the layer has
    tolerances: dict[str, float] | None = None


@dataclass(frozen=True)
class LossLimits:
    """How much of its primary source a vector layer may lose to rejections and still be published:
    a layer that loses more stops the build (a hollow layer is never published)."""

    #: the largest share of the primary source's features that may be rejected (0..1); more stops the build
    max_rejected_share: float = 0.5
    #: the layer may be published without features: an empty source, or every feature rejected
    allow_empty: bool = False


@dataclass(frozen=True)
class LayerConfig:
    name: str
    #: the first source is the primary (authoritative) one; the others verify it
    sources: tuple[SourceConfig, ...]
    #: overrides the layer's own invalid-geometry policy (repair / reject)
    invalid_geometry: str | None = None
    crosscheck: CrossCheckConfig = CrossCheckConfig()
    #: what the layer may lose (the top level's limits unless the layer sets its own)
    loss: LossLimits = LossLimits()
    #: the loss keys the layer itself gave
    loss_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BuildConfig:
    path: Path
    city: str
    storage_srid: int
    layers: tuple[LayerConfig, ...]
    keep: int | None = None
    catalog: str = "base"
    #: the YAML as loaded, recorded in the release
    raw: dict[str, Any] = field(default_factory=dict)


def load_config(path: str | Path) -> BuildConfig:
    """Read and check the build config at ``path``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BuildError(f"cannot read the build config: {exc.strerror or exc}", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise BuildError(f"not valid YAML: {str(exc).splitlines()[0]}", file=path.name) from None
    return parse_config(data, path)


def _fail(path: Path, where: str, reason: str) -> BuildError:
    return BuildError(f"{where}: {reason}", file=path.name)


def _mapping(value: Any, path: Path, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, where, f"expected a mapping, got {type(value).__name__}")
    if allowed is not None and (unknown := sorted(set(map(str, value)) - allowed)):
        raise _fail(path, where, f"unknown keys {unknown}; allowed: {sorted(allowed)}")
    return value


def _text(value: Any, path: Path, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise _fail(path, where, f"expected a non-empty string, got {value!r}")
    return str(value)


def parse_config(data: Any, path: Path) -> BuildConfig:
    """A :class:`BuildConfig` from loaded YAML ``data`` read from ``path``."""
    top = _mapping(data, path, "top level", _TOP_KEYS)
    for key in ("city", "storage_crs", "layers"):
        if key not in top:
            raise _fail(path, key, "missing (a build config names city, storage_crs and layers)")
    try:
        srid = srid_of(parse_crs(top["storage_crs"]))
    except CIMError as exc:
        raise _fail(path, "storage_crs", str(exc)) from None
    keep = top.get("keep")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise _fail(path, "keep", f"expected a positive number of releases, got {keep!r}")
    layers = _mapping(top["layers"], path, "layers")
    if not layers:
        raise _fail(path, "layers", "no layers to build")
    loss = _loss(top, path, "", LossLimits())
    parsed = tuple(_layer(str(name), value, path, loss) for name, value in layers.items())
    return BuildConfig(
        path=path,
        city=_text(top["city"], path, "city"),
        storage_srid=srid,
        layers=parsed,
        keep=keep,
        catalog=_text(top.get("catalog", "base"), path, "catalog"),
        raw=top,
    )


def _loss(body: dict[str, Any], path: Path, where: str, defaults: LossLimits) -> LossLimits:
    """The loss limits ``body`` gives (``where`` is its key path, empty at the top), over ``defaults``."""
    share, allow = defaults.max_rejected_share, defaults.allow_empty
    if "max_rejected_share" in body:
        share = body["max_rejected_share"]
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            reason = f"expected a share between 0 and 1 (0.5 = half the features), got {share!r}"
            raise _fail(path, f"{where}max_rejected_share", reason)
    if "allow_empty" in body:
        allow = body["allow_empty"]
        if not isinstance(allow, bool):
            raise _fail(path, f"{where}allow_empty", f"expected true or false, got {allow!r}")
    return LossLimits(float(share), allow)


def _layer(name: str, value: Any, path: Path, loss: LossLimits = LossLimits()) -> LayerConfig:
    where = f"layers.{name}"
    body = _mapping(value, path, where, _LAYER_KEYS)
    sources = body.get("sources")
    if not isinstance(sources, list) or not sources:
        raise _fail(path, f"{where}.sources", "expected a non-empty list of sources")
    parsed = tuple(_source(s, path, f"{where}.sources[{i}]", name) for i, s in enumerate(sources))
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise _fail(path, f"{where}.sources", f"two sources are named alike ({names}); give them distinct `name`s")
    policy = body.get("invalid_geometry")
    if policy not in (None, "repair", "reject"):
        raise _fail(path, f"{where}.invalid_geometry", f"expected repair or reject, got {policy!r}")
    return LayerConfig(
        name,
        parsed,
        policy,
        _crosscheck(body.get("crosscheck", {}), path, f"{where}.crosscheck"),
        _loss(body, path, f"{where}.", loss),
        frozenset(_LOSS_KEYS & set(map(str, body))),
    )


def _crosscheck(value: Any, path: Path, where: str) -> CrossCheckConfig:
    body = _mapping(value, path, where, _CROSSCHECK_KEYS)
    numbers: dict[str, float] = {}
    for key in ("min_iou", "max_distance_m"):
        if key in body:
            number = body[key]
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
                raise _fail(path, f"{where}.{key}", f"expected a non-negative number, got {number!r}")
            numbers[key] = float(number)
    tolerances = None
    if "tolerances" in body:
        raw = _mapping(body["tolerances"], path, f"{where}.tolerances")
        tolerances = {}
        for name, tol in raw.items():
            if isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0:
                raise _fail(path, f"{where}.tolerances.{name}", f"expected a non-negative number, got {tol!r}")
            tolerances[str(name)] = float(tol)
    return CrossCheckConfig(tolerances=tolerances, **numbers)


def _source(value: Any, path: Path, where: str, layer: str) -> SourceConfig:
    body = _mapping(value, path, where, _SOURCE_KEYS)
    if "path" not in body:
        raise _fail(path, where, "a source needs a path")
    label = _text(body["path"], path, f"{where}.path")
    file = (path.parent / label).resolve()
    fmt = body.get("format")
    if fmt is None:
        fmt = detect_format(file)
        if fmt is None:
            raise _fail(
                path,
                f"{where}.format",
                f"cannot tell the format of {label!r} from its name; give format: ({', '.join(FORMATS)})",
            )
    elif fmt not in FORMATS:
        raise _fail(path, f"{where}.format", f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    text = {
        k: _text(body[k], path, f"{where}.{k}")
        for k in ("layer", "crs", "id", "x", "y", "lon", "lat", "wkt", "encoding", "name")
        if body.get(k) is not None
    }
    if ("x" in text or "y" in text) and ("lon" in text or "lat" in text):
        raise _fail(path, where, "give coordinates as x/y or as lon/lat, not both")
    x, y = text.get("x", text.get("lon")), text.get("y", text.get("lat"))
    if (x is None) != (y is None):
        raise _fail(path, where, "coordinate columns come in pairs: x and y (or lon and lat)")
    if x is not None and "wkt" in text:
        raise _fail(path, where, "give either coordinate columns or a wkt column, not both")
    if (x is not None or "wkt" in text) and fmt not in TABLE_FORMATS:
        raise _fail(path, where, f"coordinate and wkt columns apply to {', '.join(TABLE_FORMATS)} sources, not {fmt}")
    if fmt == "csv" and x is None and "wkt" not in text:
        raise _fail(path, where, "a CSV source needs coordinate columns (x/y or lon/lat) or a wkt column")
    if "crs" in text and offset_system(text["crs"]) is None:
        try:
            parse_crs(text["crs"])
        except CIMError:
            reason = f"unknown CRS {text['crs']!r}: give an EPSG code (EPSG:4548) or GCJ-02 / BD-09"
            raise BuildError(reason, file=label, layer=layer) from None
    nodata = body.get("nodata")
    if nodata is not None and (isinstance(nodata, bool) or not isinstance(nodata, (int, float))):
        raise _fail(path, f"{where}.nodata", f"expected a number, got {nodata!r}")
    if nodata is not None and fmt not in RASTER_FORMATS:
        raise _fail(path, f"{where}.nodata", f"nodata applies to raster sources ({', '.join(RASTER_FORMATS)}), not {fmt}")
    fields = _mapping(body.get("fields", {}), path, f"{where}.fields")
    where_filter = _mapping(body.get("where", {}), path, f"{where}.where")
    return SourceConfig(
        path=file,
        label=label,
        format=fmt,
        name=text.get("name", file.name),
        layer=text.get("layer"),
        crs=text.get("crs"),
        fields={str(k): _text(v, path, f"{where}.fields.{k}") for k, v in fields.items()},
        id=text.get("id"),
        x=x,
        y=y,
        wkt=text.get("wkt"),
        where={str(k): tuple(v) if isinstance(v, list) else (v,) for k, v in where_filter.items()},
        encoding=text.get("encoding"),
        nodata=None if nodata is None else float(nodata),
        keys=frozenset(map(str, body)),
    )


def check_against(config: BuildConfig, catalog: LayerCatalog) -> None:
    """Every configured layer is a vector layer of ``catalog`` and every mapped field one of its fields."""
    for layer in config.layers:
        try:
            spec = catalog[layer.name]
        except KeyError as exc:
            raise BuildError(str(exc).strip("\"'"), file=config.path.name, layer=layer.name) from None
        if spec.kind == "raster":
            _check_raster(config, layer)
            continue
        for source in layer.sources:
            if source.format in RASTER_FORMATS:
                raise BuildError(
                    f"{source.label} is a raster ({source.format}) but {layer.name} is a vector layer",
                    file=config.path.name,
                    layer=layer.name,
                )
        names = {f.name for f in spec.fields}
        for source in layer.sources:
            unknown = sorted(set(source.fields) - names)
            if unknown:
                raise BuildError(
                    f"fields {unknown} are not fields of the layer (fields: {', '.join(sorted(names))})",
                    file=config.path.name,
                    layer=layer.name,
                )
        numeric = {f.name for f in spec.fields if f.type in ("integer", "number")}
        bad = sorted(set(layer.crosscheck.tolerances or {}) - numeric)
        if bad:
            raise BuildError(
                f"crosscheck tolerances {bad} are not numeric fields of the layer",
                file=config.path.name,
                layer=layer.name,
            )


def _check_raster(config: BuildConfig, layer: LayerConfig) -> None:
    """A raster layer has one GeoTIFF source with only the keys rasters take."""

    def fail(reason: str) -> BuildError:
        return BuildError(reason, file=config.path.name, layer=layer.name)

    if len(layer.sources) != 1:
        raise fail(f"a raster layer takes exactly one source (a GeoTIFF), got {len(layer.sources)}")
    (source,) = layer.sources
    if source.format not in RASTER_FORMATS:
        raise fail(f"{source.label}: a raster layer needs a GeoTIFF source (format geotiff), not {source.format}")
    extra = sorted(source.keys - _RASTER_SOURCE_KEYS)
    if extra:
        raise fail(f"keys {extra} do not apply to raster sources (allowed: {', '.join(sorted(_RASTER_SOURCE_KEYS))})")
    if layer.invalid_geometry is not None:
        raise fail("invalid_geometry does not apply to raster layers")
    if layer.loss_keys:
        keys = sorted(layer.loss_keys)
        raise fail(f"{' and '.join(keys)} {'does' if len(keys) == 1 else 'do'} not apply to raster layers (they have no features)")
