"""The build: every source of every configured layer through read → CRS → rectify → reproject →
normalise (fields, validity, types, required attributes) → dedupe, then cross-checks between the
sources of a layer, then one new release.

Problems with a whole source stop the build with a :class:`~cim.errors.BuildError` before anything is
published, so the current release stays as it was. Problems with single features reject, repair or
flag them; each is recorded in the :class:`~cim.build.qa.QAReport` with its source file, source
feature id, rule and reason. The first source of a layer provides its features; the others verify it.
"""

from __future__ import annotations

import dataclasses
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from cim.build.carry import RECORD, Carrier, build_key
from cim.build.config import BuildConfig, LayerConfig, LossLimits, SourceConfig, check_against
from cim.build.crosscheck import Side, crosscheck
from cim.build.dedupe import find_duplicates
from cim.build.feed import LayerFeed, publishing
from cim.build.hollow import HollowLayer, check_loss
from cim.build.cluster import active_scale
from cim.build.normalise import Conformed
from cim.build.progress import Progress
from cim.build.qa import Action, QAReport, SourceStats
from cim.build import raster_staging
from cim.build.raster import build_raster_layer
from cim.build.readers import SourceFrame, read_source, sha256, source_files
from cim.build.referencing import resolve_crs
from cim.build.to_storage import to_storage
from cim.catalog import LayerCatalog, load_catalog
from cim.crs import crs_label
from cim.errors import BuildError, StoreError
from cim.faults import crash_point
from cim.layerspec import LayerSpec
from cim.store import LayerData, ReleaseDraft, ReleaseInfo, Store

STEPS: tuple[str, ...] = ("read", "crs", "rectify", "reproject", "normalise", "dedupe")


@dataclass
class Prepared:
    """A release ready to publish, with its QA report."""

    draft: ReleaseDraft
    report: QAReport
    #: where raster layers' COGs wait for ``Store.publish`` to install them (None without rasters)
    staging: Path | None = None

    def discard(self) -> None:
        """Remove the staged raster files (the store keeps its own copies)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)


@dataclass
class BuildResult:
    release: ReleaseInfo
    report: QAReport
    #: qa.json and qa.md, when written
    report_files: tuple[Path, Path] | None = None


def build(
    config: BuildConfig,
    store: Store,
    catalog: LayerCatalog | None = None,
    progress: Progress | None = None,
    keep: int | None = None,
    report_dir: Path | None = None,
    full: bool = False,
) -> BuildResult:
    """Prepare the release ``config`` describes and publish it to ``store`` (pruning to ``keep``, else
    the config's ``keep``); write the QA report into ``report_dir`` when given.

    A layer whose sources and config are those of the current release is carried over from it,
    not read again (cim/build/carry.py), unless ``full``.

    The store loads each layer as soon as its features are final, while the pipeline goes on with
    its cross-checks and the next layers (:mod:`cim.build.feed`); the release becomes current once
    everything has passed, and a failure anywhere leaves the current release as it was."""
    progress = progress or Progress()
    catalog = catalog if catalog is not None else load_catalog(config.catalog)
    draft = ReleaseDraft(layers=LayerFeed(), config=_config_record(config), srid=config.storage_srid)
    done: list[Prepared] = []

    def work(feed: LayerFeed) -> None:
        def load(layer: LayerData) -> None:
            progress.message(f"{layer.spec.name}: loading into {store.url} while the checks go on")
            feed.put(layer)

        prepared = prepare(config, catalog, progress, on_layer=load, carrier=Carrier.open(store, full))
        done.append(prepared)
        draft.config, draft.checksums, draft.qa = prepared.draft.config, prepared.draft.checksums, prepared.draft.qa
        if report_dir is not None:
            draft.qa["report"] = str(report_dir)
        progress.message(f"checks done; making the release of {len(config.layers)} layers current")

    try:
        release = publishing(store, draft, keep if keep is not None else config.keep, work)
    except HollowLayer as exc:  # nothing published: the QA report says which features were rejected, and why
        if report_dir is None or exc.report is None:
            raise
        try:
            exc.report.write(report_dir)
        except OSError:
            raise exc from None
        reason = f"{exc.reason}; every rejected feature is in the QA report {report_dir / 'qa.md'}"
        raise BuildError(reason, file=exc.file, layer=exc.layer) from None
    finally:
        for prepared in done:
            prepared.discard()
    # the release is current: its tile geometry (PostGIS) follows; tiles render without it meanwhile
    crash_point("build.switched")
    try:
        store.prepare_tiles(lambda layer, zoom, seconds: progress.message(f"{layer}: tile geometry z{zoom} ready ({seconds:.1f} s)"))
    except StoreError as exc:  # the release stands; its tiles render the plain way
        progress.message(f"warning: release {release.number} is current, but its tile geometry is not prepared: {exc}"
                         " (tiles render without it; `cim tiles prepare` retries)")
    report = done[0].report
    report.release = release.number
    for c in store.edit_conflicts():  # edits whose feature this release lacks: kept aside, not applied
        report.add(c.layer, c.source or "", c.source_id, "edits.conflict", "flagged", f"{c.action}: {c.reason}")
    files = None
    if report_dir is not None:
        try:
            files = report.write(report_dir)
        except OSError as exc:
            reason = f"release {release.number} is published, but its QA report cannot be written: {exc.strerror or exc}"
            raise BuildError(reason, file=str(report_dir)) from None
    return BuildResult(release, report, files)


def prepare(
    config: BuildConfig,
    catalog: LayerCatalog | None = None,
    progress: Progress | None = None,
    on_layer: Callable[[LayerData], None] | None = None,
    carrier: Carrier | None = None,
) -> Prepared:
    """Read, check and normalise every source; raises BuildError for a source that cannot be used.
    ``on_layer`` gets each layer as soon as its features are final (before its cross-checks); the
    draft lists the layers in catalog order. A layer ``carrier`` finds unchanged since its release
    is carried over (cim/build/carry.py): handed on with ``carried_from`` and not read."""
    progress = progress or Progress()
    ready = on_layer or (lambda layer: None)
    catalog = catalog if catalog is not None else load_catalog(config.catalog)
    check_against(config, catalog)
    storage = CRS.from_epsg(config.storage_srid)
    report = QAReport(config.city, config.path.name)
    checksums: dict[str, str] = {}
    raster_staging.remove_stale()  # left by builds that were killed
    staging = raster_staging.make() if any(catalog[l.name].kind == "raster" for l in config.layers) else None
    carrier = carrier if carrier is not None else Carrier(None)
    layers = []
    try:
        # the carried layers first, before anything is read: the store may start the release from
        # the file that holds them (the embedded store copies it: cim/store/duckdb/carry.py)
        built = []
        for layer in config.layers:
            carried = _carry(config, layer, catalog[layer.name], carrier, report, checksums, progress)
            if carried is not None:
                layers.append(carried)
                ready(carried)
            else:
                built.append(layer)
        for layer in built:
            spec = catalog[layer.name]
            if staging is not None and spec.kind == "raster":
                layers.append(build_raster_layer(layer, spec, report, checksums, progress, staging))
                ready(layers[-1])
            else:
                layers.append(_build_layer(layer, spec, storage, report, checksums, progress, ready))
            carrier.record(layer.name, build_key(config, layer, spec, carrier.digests(layer)), None)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    layers.sort(key=lambda data: (data.spec.order, data.spec.name))
    draft = ReleaseDraft(
        layers=layers, config={**_config_record(config), RECORD: carrier.config_record()}, checksums=checksums, qa=report.summary(), srid=config.storage_srid
    )
    return Prepared(draft, report, staging)


def _config_record(config: BuildConfig) -> dict[str, Any]:
    """The build config as the release records it."""
    return {**config.raw, "config_file": str(config.path)}


def _carry(
    config: BuildConfig,
    layer: LayerConfig,
    spec: LayerSpec,
    carrier: Carrier,
    report: QAReport,
    checksums: dict[str, str],
    progress: Progress,
) -> LayerData | None:
    """The layer carried over from the release that holds it, when its build key is the one the
    current release recorded for it; None: build it (also when a source file cannot be hashed: the
    read then says why)."""
    if not carrier.may_carry(layer.name):
        return None
    try:
        digests = carrier.digests(layer)
    except OSError:
        return None
    key = build_key(config, layer, spec, digests)
    number = carrier.holder(layer.name, key, spec)
    if number is None:
        return None
    checksums.update(digests)
    carrier.record(layer.name, key, number)
    progress.message(f"{layer.name}: unchanged since release {number} (sources and config): carried over, not read")
    return carrier.carried(spec, number, config.storage_srid, report)


def _build_layer(
    layer: LayerConfig,
    spec: LayerSpec,
    storage: CRS,
    report: QAReport,
    checksums: dict[str, str],
    progress: Progress,
    ready: Callable[[LayerData], None],
) -> LayerData:
    """The layer from its primary source (handed to ``ready`` at once), then cross-checked against
    the other sources."""
    if layer.invalid_geometry is not None:
        spec = dataclasses.replace(spec, invalid_geometry=layer.invalid_geometry)  # type: ignore[arg-type]
    sides = []
    # checksums on the second core while the first one checks what was read (after the read, when
    # the file is in the page cache: hashing beside the read made both wait for the disk)
    with ThreadPoolExecutor(1, thread_name_prefix="cim-sha256") as hashing:
        digests: dict[str, Future[str]] = {}

        def hash_files(source: SourceConfig) -> None:
            for name, path in source_files(source).items():
                digests.setdefault(name, hashing.submit(sha256, path))

        for position, source in enumerate(layer.sources):
            progress.start_source(layer.name, source.label, STEPS)
            frame = _load_source(
                spec,
                source,
                storage,
                report,
                progress,
                primary=position == 0,
                on_read=lambda s=source: hash_files(s),
                limits=layer.loss,
            )
            sides.append(Side(source.label, frame))
            if position == 0:
                data = LayerData(spec, frame)
                report.features[layer.name] = len(frame)
                if spec.lod1:
                    report.count_heights(layer.name, frame)
                ready(data)
        checksums.update({name: digest.result() for name, digest in digests.items()})
    scale = active_scale()  # a distributed build (cim/build/distributed.py), else None
    for other in sides[1:]:
        progress.message(f"{layer.name}: cross-checking {sides[0].label} with {other.label}")
        match = scale.match(spec, sides[0], other, layer.crosscheck, progress) if scale is not None else None
        report.crosschecks.append(crosscheck(spec, sides[0], other, layer.crosscheck, report, match))
    return data


def _field_values(spec: LayerSpec, source: SourceConfig, frame: gpd.GeoDataFrame) -> dict[str, pd.Series]:
    """Per layer field, the source column mapped onto it, else a source column of the same name."""
    columns = {c for c in frame.columns if c != frame.geometry.name}
    values = {}
    for field in spec.fields:
        column = source.fields.get(field.name, field.name if field.name in columns else None)
        if column is not None and column in columns:  # (a mapped column is missing only from an empty source)
            values[field.name] = frame[column]
    return values


def _load_source(
    spec: LayerSpec,
    source: SourceConfig,
    storage: CRS,
    report: QAReport,
    progress: Progress,
    primary: bool,
    on_read: Callable[[], None] = lambda: None,
    limits: LossLimits = LossLimits(),
) -> gpd.GeoDataFrame:
    """One source's features, normalised into ``spec`` in the storage CRS, deduplicated; ``on_read``
    is called once the source is read. A primary source that loses more than ``limits`` allow stops
    the build (:mod:`cim.build.hollow`)."""
    label, layer = source.label, spec.name
    progress.step("read")
    read = read_source(source, layer, allow_empty=primary and limits.allow_empty)
    crash_point("build.read")
    on_read()
    stats = SourceStats(layer, label, source.format, read=len(read.frame), filtered=read.filtered, primary=primary)
    report.sources.append(stats)
    for rule, reason in read.notes:
        report.add(layer, label, None, rule, "flagged", reason)
    progress.step("crs")
    embedded = CRS.from_user_input(read.frame.crs) if read.frame.crs is not None else None
    crs, note = resolve_crs(source.crs, embedded, label, layer, read.unreadable_crs)
    stats.crs, stats.declared_crs = crs.label, source.crs or ""
    stats.embedded_crs = crs_label(embedded) if embedded is not None else ""
    if note:
        report.add(layer, label, None, "crs.override", "flagged", note)
    geoms = read.frame.geometry.to_numpy()
    values = _field_values(spec, source, read.frame)
    scale, keys = active_scale(), None
    if scale is not None and scale.spreads(len(geoms)):  # the same steps per spatial partition on a cluster
        reprojected, conformed, keys = scale.conform_source(
            spec, source.name, label, read, values, crs, storage, progress
        )
    else:
        done = to_storage(
            spec, source.name, geoms, read.ids, values, crs, storage, stop_outside=(label, layer), step=progress.step
        )
        assert done.geometry is not None and done.conformed is not None  # (else to_storage raised)
        reprojected, conformed = done.geometry, done.conformed
    _record_conform(spec, label, read, reprojected, values, conformed, report)
    if primary:
        check_loss(report, layer, label, stats.read, int((~conformed.keep).sum()), limits)
    progress.step("dedupe")
    kept = conformed.kept()
    removed, flagged = find_duplicates(
        kept,
        kept.geometry.to_numpy(),
        kept["source_id"],
        [f.name for f in spec.fields],
        None if keys is None else keys[conformed.keep],
    )
    ids = kept["source_id"].to_numpy()
    report.add_many(
        layer, label, (ids[d.position] for d in removed), "duplicate.geometry", "removed", (d.reason for d in removed)
    )
    report.add_many(
        layer, label, (ids[d.position] for d in flagged), "duplicate.id", "flagged", (d.reason for d in flagged)
    )
    if removed:
        kept = kept.drop(index=[d.position for d in removed]).reset_index(drop=True)
    stats.kept = len(kept)
    progress.end_source(f"{stats.kept} of {stats.read} features kept")
    return kept


def _record_conform(
    spec: LayerSpec,
    label: str,
    read: SourceFrame,
    geoms: np.ndarray,
    values: Mapping[str, pd.Series],
    conformed: Conformed,
    report: QAReport,
) -> None:
    """QA records for what conforming did: one rejection per dropped feature, plus repairs and clearings."""
    ids = read.ids.to_numpy()

    def record(mask: np.ndarray, rule: str, action: Action, reason: Callable[[int], str]) -> np.ndarray:
        at = np.flatnonzero(mask)
        report.add_many(spec.name, label, ids[at], rule, action, (reason(int(i)) for i in at))
        return mask

    def value(name: str, i: int) -> str:
        return f"{values[name].iloc[i]!r} is not a {spec.field(name).type}"

    problems = read.geometry_problems.to_numpy()
    rejected = record(
        conformed.missing_geometry, "geometry.missing", "rejected", lambda i: problems[i] or "no geometry"
    )
    invalid = conformed.invalid & ~rejected
    why = {int(i): str(shapely.is_valid_reason(geoms[i])) for i in np.flatnonzero(invalid)}
    if spec.invalid_geometry == "reject":
        rejected = rejected | record(
            invalid, "geometry.invalid", "rejected", lambda i: f"{why[i]} (the layer rejects invalid geometries)"
        )
    else:
        record(
            invalid & ~conformed.unusable,
            "geometry.invalid",
            "repaired",
            lambda i: f"{why[i]}; repaired with make_valid",
        )
        left = f"nothing of type {spec.geometry_type} is left after make_valid"
        rejected = rejected | record(
            invalid & conformed.unusable, "geometry.invalid", "rejected", lambda i: f"{why[i]}; {left}"
        )
    expected = f"where {spec.geometry_type} is expected"
    rejected = rejected | record(
        conformed.unusable & ~rejected, "geometry.type", "rejected", lambda i: f"{geoms[i].geom_type} {expected}"
    )
    for name, missing in conformed.missing_required.items():
        uncast = conformed.uncast[name]
        rejected = rejected | record(
            missing & ~rejected,
            "attribute.required",
            "rejected",
            lambda i, n=name, u=uncast: (
                f"required field {n}: {value(n, i)}" if u[i] else f"required field {n} is missing"
            ),
        )
    for name, uncast in conformed.uncast.items():
        record(uncast & ~rejected, "attribute.type", "cleared", lambda i, n=name: f"{n}: {value(n, i)}")
    for name, outside in conformed.outside_enum.items():
        codes = ", ".join(spec.field(name).enum or ())
        record(
            outside & ~rejected,
            "attribute.enum",
            "flagged",
            lambda i, n=name, c=codes: f"{n} {conformed.frame[n].iloc[i]!r} is not one of {c}",
        )
