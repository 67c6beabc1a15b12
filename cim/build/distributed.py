"""Scale-out of the build: the per-feature heavy steps on a dask.distributed cluster, spatially partitioned.

``cim build --workers N`` starts a :class:`distributed.LocalCluster` of N single-threaded worker
processes for the build (closed after it); ``--dask-scheduler ADDR`` connects to a running scheduler
(:mod:`cim.build.cluster`). The pipeline hands its heavy steps to the active :class:`Scale`:

- **per source** (:meth:`Scale.conform_source`): the features are ordered along a Hilbert curve
  and cut into equal runs, one spatial partition each (:mod:`cim.build.partitions`). Every
  partition goes through the single-process build's own function for area-of-use check,
  GCJ-02/BD-09 rectification, reprojection and normalisation/validation
  (:func:`~cim.build.to_storage.to_storage`), then the dedupe keys (normalised WKB), on a worker.
- **per cross-check** (:meth:`Scale.match`): both sources are reprojected to the metric CRS per
  partition on the workers; each partition of the secondary source is matched on a worker against
  the primary features whose bounds come within a halo of its features' bounds (``max_distance_m``
  for points and lines, none for polygons: only overlapping ones can match). Every primary feature
  that can match is a candidate, and ties break by primary position, so the match is the
  single-process one.

Workers return arrays per feature (masks, conformed rows, keys, matches), never QA records. The
client puts them back into the source's row order and runs the same code as the single-process build
on them — area-of-use errors, QA records, dedupe grouping (global, so exact however the features were
partitioned), conflicts — so the layers, feature ids and the QA report are those of a single-process
build, records in the same order. A :class:`~cim.errors.BuildError` raised on a worker is re-raised
unchanged (it pickles with file, layer and feature), from the first failing partition.

Partitions: ``ceil(rows / rows_per_partition)`` (default
:data:`~cim.build.partitions.DEFAULT_PARTITION_ROWS`); a source (for cross-checks: a secondary
source) that makes one partition stays in-process, with no cluster round-trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from cim.build.config import CrossCheckConfig
from cim.build.crosscheck import Match, Side, match_geoms, metric_crs
from cim.build.dedupe import geometry_keys
from cim.build.validity import DIMENSION
from cim.build.normalise import Conformed, cast_field, empty_series
from cim.build.partitions import DEFAULT_PARTITION_ROWS, partition_count, spatial_partitions
from cim.build.progress import Progress
from cim.build.readers import SourceFrame
from cim.build.referencing import SourceCRS, raise_outside
from cim.build.to_storage import to_storage
from cim.layerspec import LayerSpec

#: metres added to the cross-check halo, so that rounding never drops a candidate
HALO_MARGIN_M = 1e-6


# --- work done on the workers (module-level functions: the workers import this module) ---


@dataclass(frozen=True)
class SourceJob:
    """What every partition of one source shares."""

    spec: LayerSpec
    name: str
    crs: SourceCRS
    storage: CRS


def pack(geoms: np.ndarray) -> np.ndarray:
    """Geometries as WKB, for the trip to or from a worker: what pickling does to each geometry, but
    vectorised (many times faster than pickling an array of geometries). None stays None."""
    return shapely.to_wkb(np.asarray(geoms, dtype=object), include_srid=True)


def unpack(wkb: np.ndarray) -> np.ndarray:
    return shapely.from_wkb(wkb)


@dataclass
class Part:
    """One spatial partition of a source: its rows (positions in the source) and their input."""

    positions: np.ndarray
    #: the source geometries, :func:`pack`-ed
    wkb: np.ndarray
    ids: pd.Series
    values: dict[str, pd.Series]


@dataclass
class Conformance:
    """What conforming one partition gave, per feature (see :class:`~cim.build.normalise.Conformed`)."""

    #: the conformed fields and provenance, and the conformed geometries (:func:`pack`-ed)
    attributes: pd.DataFrame
    wkb: np.ndarray
    #: Conformed's masks by name (missing_geometry, invalid, unusable, keep) ...
    masks: dict[str, np.ndarray]
    #: ... and its masks per field by name (missing_required, uncast, outside_enum)
    field_masks: dict[str, dict[str, np.ndarray]]
    #: reprojected geometries where a QA record describes them (invalid or unusable), else None
    described: np.ndarray
    #: dedupe keys of the kept features, None elsewhere
    keys: np.ndarray


@dataclass
class PartDone:
    positions: np.ndarray
    #: per area of use, features outside it
    outside: list[np.ndarray]
    #: None when a feature is outside an area of use: the build stops, so nothing else was computed
    conformance: Conformance | None


_MASKS = ("missing_geometry", "invalid", "unusable", "keep")
_FIELD_MASKS = ("missing_required", "uncast", "outside_enum")


def conform_part(part: Part, job: SourceJob) -> PartDone:
    """:func:`~cim.build.to_storage.to_storage` (area-of-use check, rectify, reproject, conform) and
    the dedupe keys of one partition."""
    done = to_storage(
        job.spec,
        job.name,
        unpack(part.wkb),
        part.ids,
        part.values,
        job.crs,
        job.storage,
        index=pd.Index(part.positions),
        threads=1,  # a worker is one single-threaded process
    )
    if done.geometry is None or done.conformed is None:  # a feature is outside an area of use
        return PartDone(part.positions, done.outside, None)
    reprojected, conformed = done.geometry, done.conformed
    described = np.full(len(reprojected), None, dtype=object)
    at = conformed.invalid | conformed.unusable
    described[at] = reprojected[at]
    conformed_geoms = conformed.frame.geometry.to_numpy()
    keys = np.full(len(reprojected), None, dtype=object)
    keys[conformed.keep] = geometry_keys(conformed_geoms[conformed.keep])
    conformance = Conformance(
        pd.DataFrame(conformed.frame.drop(columns="geometry")),
        pack(conformed_geoms),
        {name: getattr(conformed, name) for name in _MASKS},
        {name: getattr(conformed, name) for name in _FIELD_MASKS},
        described,
        keys,
    )
    return PartDone(part.positions, done.outside, conformance)


def to_metric(wkb: np.ndarray, crs: CRS, metric: CRS) -> np.ndarray:
    return pack(gpd.GeoSeries(unpack(wkb), crs=crs).to_crs(metric).to_numpy())


def bounds_of(wkb: np.ndarray) -> np.ndarray:
    return shapely.bounds(unpack(wkb))


@dataclass(frozen=True)
class MatchJob:
    dimension: int
    config: CrossCheckConfig
    label: str


def match_part(
    secondary: np.ndarray,
    chunks: list[np.ndarray],
    picks: list[tuple[np.ndarray, np.ndarray]],
    candidates: np.ndarray,
    job: MatchJob,
) -> Match:
    """Match one secondary partition against its candidates: ``candidates`` (ascending primary
    positions) gathered from primary partition ``chunks`` by ``picks`` (indices in the chunk, slots in
    ``candidates``); geometries in the metric CRS, :func:`pack`-ed. The match is returned in primary
    positions."""
    near = np.empty(len(candidates), dtype=object)
    for chunk, (local, slots) in zip(chunks, picks):
        near[slots] = chunk[local]
    found = match_geoms(job.dimension, unpack(near), unpack(secondary), job.config, job.label)
    hits = found.primary >= 0
    primary = np.full(len(found.primary), -1, dtype=np.int64)
    primary[hits] = candidates[found.primary[hits]]
    return Match(primary, found.why_not)


# --- the client side ---


class Scale:
    """Runs the heavy steps of a build on a dask.distributed ``client``."""

    def __init__(self, client: Any, rows_per_partition: int = DEFAULT_PARTITION_ROWS) -> None:
        if rows_per_partition < 1:
            raise ValueError("rows_per_partition must be at least 1")
        self.client = client
        self.rows_per_partition = rows_per_partition

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def spreads(self, rows: int) -> bool:
        """Whether ``rows`` features are worth partitioning (more than one partition)."""
        return partition_count(rows, self.rows_per_partition) > 1

    def _run(
        self, func: Callable[..., Any], parts: Sequence[Any], progress: Progress | None = None, **shared: Any
    ) -> list[Any]:
        """``func(part, **shared)`` for every part on the workers; results in the order of ``parts``.

        A failing partition re-raises its exception (the first failing one in ``parts`` order).
        """
        from distributed import as_completed

        futures = self.client.map(func, self.client.scatter(list(parts), hash=False), pure=False, **shared)
        for done, _ in enumerate(as_completed(futures, loop=self.client.loop), start=1):
            if progress is not None:
                progress.partitions(done, len(futures))
        return [future.result() for future in futures]

    def conform_source(
        self,
        spec: LayerSpec,
        name: str,
        label: str,
        read: SourceFrame,
        values: dict[str, pd.Series],
        crs: SourceCRS,
        storage: CRS,
        progress: Progress,
    ) -> tuple[np.ndarray, Conformed, np.ndarray]:
        """The single-process steps from area-of-use check to conform, per spatial partition on the
        workers: (reprojected geometries where QA records need them, conformed features, dedupe keys)."""
        geoms, ids = read.frame.geometry.to_numpy(), read.ids
        runs = spatial_partitions(geoms, partition_count(len(geoms), self.rows_per_partition))
        progress.step("partition", f"{len(runs)} spatial partitions by Hilbert distance, {self.workers} workers")
        if crs.offset is not None:
            progress.step("rectify", f"{crs.offset}, per partition")
        progress.step("reproject", f"{crs.label} → EPSG:{storage.to_epsg()}, per partition")
        progress.step("normalise", "per partition")
        parts = [
            Part(run, pack(geoms[run]), ids.iloc[run], {field: column.iloc[run] for field, column in values.items()})
            for run in runs
        ]
        done = self._run(conform_part, parts, progress, job=SourceJob(spec, name, crs, storage))
        order = np.argsort(np.concatenate([d.positions for d in done]), kind="stable")

        def merged(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(arrays)[order]

        outside = [merged([d.outside[i] for d in done]) for i in range(len(done[0].outside))]
        raise_outside(outside, geoms, ids.to_numpy(), crs, storage, label, spec.name)
        results = [d.conformance for d in done if d.conformance is not None]
        assert len(results) == len(done), "a partition stops early only with features outside"
        conformed = _merge_conformed(spec, results, order, values, storage)
        return merged([r.described for r in results]), conformed, merged([r.keys for r in results])

    def match(
        self, spec: LayerSpec, primary: Side, secondary: Side, config: CrossCheckConfig, progress: Progress
    ) -> Match | None:
        """The cross-check's matching per spatial partition of ``secondary`` on the workers; None when the
        sources are too small to partition (then it is computed in-process)."""
        assert spec.geometry_type is not None
        if len(primary.frame) == 0 or not self.spreads(len(secondary.frame)):
            return None
        metric = metric_crs(primary.frame, secondary.frame)
        dimension = DIMENSION[spec.geometry_type]
        halo = (0.0 if dimension == 2 else config.max_distance_m) + HALO_MARGIN_M
        prim_runs, prim_chunks, prim_bounds = self._metric_partitions(primary.frame, metric)
        sec_runs, sec_chunks, sec_bounds = self._metric_partitions(secondary.frame, metric)
        progress.message(
            f"{spec.name}: matching in {len(sec_runs)} spatial partitions of {secondary.label} "
            f"(halo {halo - HALO_MARGIN_M:g} m) on {self.workers} workers"
        )
        owner = np.empty(len(primary.frame), dtype=np.int64)
        local = np.empty(len(primary.frame), dtype=np.int64)
        for p, run in enumerate(prim_runs):
            owner[run], local[run] = p, np.arange(len(run))
        boxes = shapely.STRtree(shapely.box(*prim_bounds.T))
        job = MatchJob(dimension, config, primary.label)
        futures = []
        for run, chunk in zip(sec_runs, sec_chunks):
            west, south, east, north = sec_bounds[run].T
            near = np.unique(boxes.query(shapely.box(west - halo, south - halo, east + halo, north + halo))[1])
            wanted = np.unique(owner[near])
            picks = [(local[near[owner[near] == p]], np.flatnonzero(owner[near] == p)) for p in wanted]
            chunks = [prim_chunks[p] for p in wanted]
            futures.append(self.client.submit(match_part, chunk, chunks, picks, near, job, pure=False))
        matched = np.full(len(secondary.frame), -1, dtype=np.int64)
        why = [""] * len(secondary.frame)
        for run, future in zip(sec_runs, futures):
            found = future.result()
            matched[run] = found.primary
            for position, reason in zip(run, found.why_not):
                why[position] = reason
        return Match(matched, why)

    def _metric_partitions(
        self, frame: gpd.GeoDataFrame, metric: CRS
    ) -> tuple[list[np.ndarray], list[Any], np.ndarray]:
        """(spatial partitions, futures of their geometries in ``metric`` on the workers, every feature's
        bounds in ``metric``)."""
        geoms = frame.geometry.to_numpy()
        runs = spatial_partitions(geoms, partition_count(len(geoms), self.rows_per_partition))
        scattered = self.client.scatter([pack(geoms[run]) for run in runs], hash=False)
        chunks = self.client.map(to_metric, scattered, crs=frame.crs, metric=metric, pure=False)
        bounds = np.empty((len(geoms), 4))
        for run, part in zip(runs, self.client.gather(self.client.map(bounds_of, chunks, pure=False))):
            bounds[run] = part
        return runs, chunks, bounds


def _merge_conformed(
    spec: LayerSpec, results: list[Conformance], order: np.ndarray, values: dict[str, pd.Series], crs: CRS
) -> Conformed:
    """The partitions' conformed features back in source order, as one :class:`Conformed`."""

    def merged(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays)[order]

    table = pd.concat([r.attributes for r in results]).iloc[order]
    table.index = pd.RangeIndex(len(order))
    for field in spec.fields:
        if len({r.attributes[field.name].dtype for r in results}) > 1:  # e.g. datetime resolutions
            raw = values.get(field.name)  # differ per partition: cast the whole column again
            raw = empty_series(table.index) if raw is None else raw.reindex(table.index)
            table[field.name] = cast_field(raw, field)
    geometry = gpd.GeoSeries(unpack(merged([r.wkb for r in results])), index=table.index, crs=crs)
    masks = {name: merged([r.masks[name] for r in results]) for name in _MASKS}
    per_field = {
        kind: {name: merged([r.field_masks[kind][name] for r in results]) for name in results[0].field_masks[kind]}
        for kind in _FIELD_MASKS
    }
    return Conformed(gpd.GeoDataFrame(table, geometry=geometry), **masks, **per_field)
