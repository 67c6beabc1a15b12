"""Reads of past releases and totals per division, the same for both back-ends (a mixin of the stores).

A back-end supplies two things: :meth:`ReleaseReads.release_layers` (the layers of release N) and
:meth:`ReleaseReads._release_rows`, which runs a statement built for the dialects of some releases
(``None``: the current release, read with its edits; a number: that release's tables as published).
The statements are the shared SQL of cim/store/sql/ (features.py, diff.py, division_totals.py).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pyarrow as pa

from cim.errors import BadInput, LayerNotFound, NotFound, ReleaseGone
from cim.store.arrow_batches import BATCH_ROWS, LayerBatches, arrow_schema
from cim.store.base import FID, LayerInfo, ReleaseInfo
from cim.store.frames import to_frame
from cim.store.sql.diff import diff_statement, compared_fields
from cim.store.sql.dialect import Dialect, Statement
from cim.store.sql.division_totals import division_totals_statement, prepared_statement
from cim.store.sql.features import frame_fields, select_frame

#: builds a statement from the dialects of the releases it reads, in the order asked
Build = Callable[[Sequence[Dialect]], Statement]
#: the layer of administrative divisions (layers/catalog/admin_divisions.py)
DIVISIONS = "admin_divisions"


@dataclass(frozen=True)
class FeatureChange:
    """One feature that differs between two releases (:meth:`ReleaseReads.diff_releases`)."""

    source: str | None
    source_id: str | None
    #: "added", "removed" or "changed"
    change: str
    fid_from: int | None
    fid_to: int | None
    #: the changed fields ("geometry" included); empty for added and removed features
    fields: tuple[str, ...]
    #: the feature's geometry as WKB: in the later release, or the earlier one for a removed feature
    wkb: bytes | None


@dataclass(frozen=True)
class DivisionTotal:
    """A layer's features in one division (and one value of the grouping field)."""

    code: str
    group: Any
    count: int
    #: area in m² or length in m (None when not measured)
    measure: float | None


class ReleaseReads(abc.ABC):
    """Put first among a store's bases; it relies on the Store methods ``releases``, ``layers`` and
    ``release_layers`` (declared there, so not here: a declaration here would hide a base's)."""

    url: str
    releases: Callable[[], list[ReleaseInfo]]
    layers: Callable[[], list[LayerInfo]]
    release_layers: Callable[[int], list[LayerInfo]]

    @abc.abstractmethod
    def _release_rows(self, releases: Sequence[int | None], build: Build) -> list[tuple[Any, ...]]:
        """Rows of ``build(dialects)``, one dialect per entry of ``releases`` (None: the current
        release with its edits, only alone; numbers checked by :meth:`_check_release` first)."""

    @abc.abstractmethod
    def _release_batches(self, release: int | None, build: Callable[[Dialect], Statement], schema: pa.Schema, rows: int) -> Iterator[pa.RecordBatch]:
        """The rows of ``build(dialect)`` (the dialect of ``release`` as :meth:`_release_rows` takes
        it) as record batches of ``schema`` of at most ``rows`` rows, read from the database while
        they are iterated (a generator: its connection or cursor is released when it is closed)."""

    def _check_release(self, number: int) -> None:
        """NotFound for a release never published; ReleaseGone (410) for one pruned away: release
        numbers are consecutive (a failed build's number is reused), so a number below the newest
        kept one that is not kept was pruned."""
        kept = [r.number for r in self.releases()]
        if number not in kept:
            listed = ", ".join(str(n) for n in kept) or "none"
            if kept and 0 < number < max(kept):
                raise ReleaseGone(f"release {number} of store {self.url} was pruned (releases kept: {listed})")
            raise NotFound(f"store {self.url} has no release {number} (releases kept: {listed})")

    def _layer_of(self, layer: str, release: int | None) -> LayerInfo:
        infos = self.layers() if release is None else self.release_layers(release)
        for info in infos:
            if info.name == layer and info.spec.kind == "vector":
                return info
        names = ", ".join(i.name for i in infos if i.spec.kind == "vector") or "none"
        where = "the current release" if release is None else f"release {release}"
        raise LayerNotFound(f"no layer {layer!r} in {where} (layers: {names})")

    def _optional_layer(self, layer: str, release: int) -> LayerInfo | None:
        try:
            return self._layer_of(layer, release)
        except LayerNotFound:
            return None

    def _prepared_totals(self, release: int | None, build: Callable[[Dialect], Statement]) -> list[tuple[Any, ...]]:
        """Rows of ``build(dialect)`` on the release's table of prepared totals
        (cim/store/sql/division_totals.py: ``prepared_statement``), read as :meth:`_release_rows`
        reads it; [] when the release has no such table (published before they were prepared)."""
        return []

    # -- reads ---------------------------------------------------------------------------------
    def _release_frame(
        self, layer: str, release: int | None, bbox: Any = None, out_srid: int | None = None,
        limit: int | None = None, columns: Sequence[str] | None = None, equals: Sequence[tuple[str, Any]] = (),
    ) -> gpd.GeoDataFrame:
        info = self._layer_of(layer, release)
        rows = self._release_rows((release,), lambda d: select_frame(info, d[0], bbox, out_srid, limit, columns, equals))
        names = [FID, *frame_fields(info, columns), "wkb"]
        return to_frame(rows, out_srid or info.srid, names)

    def layer_batches(self, layer: str, release: int | None = None, rows: int = BATCH_ROWS) -> LayerBatches:
        """Every feature of vector layer ``layer`` of the current release (with its edits: what
        /items serves) or of release ``release`` (as published), streamed as Arrow record batches
        (cim/store/arrow_batches.py: fid, the fields, WKB in the storage CRS; fid order). The layer
        and release are checked now (LayerNotFound, NotFound, ReleaseGone); rows are read as the
        batches are iterated, never the whole layer at once."""
        number = self.current_number() if release is None else release  # type: ignore[attr-defined]
        info = self._layer_of(layer, release)
        schema = arrow_schema(info)
        batches = self._release_batches(release, lambda d: select_frame(info, d), schema, rows)
        return LayerBatches(info, number, schema, batches)

    def find_features(
        self, layer: str, equals: Sequence[tuple[str, Any]], release: int | None = None, out_srid: int | None = None
    ) -> gpd.GeoDataFrame:
        return self._release_frame(layer, release, out_srid=out_srid, equals=equals)

    def diff_releases(
        self, layer: str, from_release: int, to_release: int, area_wkb: bytes | None = None, out_srid: int | None = None
    ) -> list[FeatureChange]:
        before, after = self._optional_layer(layer, from_release), self._optional_layer(layer, to_release)
        if before is None and after is None:
            raise LayerNotFound(f"no layer {layer!r} in release {from_release}" + (f" nor in release {to_release}" if to_release != from_release else ""))
        fields = compared_fields(before, after)
        if from_release == to_release:
            return []
        rows = self._release_rows(
            (from_release, to_release), lambda d: diff_statement(before, after, d, area_wkb, out_srid)
        )
        names = [*fields, "geometry"]
        changes = []
        for row in rows:
            flags = row[6:]
            changed = tuple(name for name, flag in zip(names, flags) if flag) if row[4] == "changed" else ()
            wkb = bytes(row[5]) if row[5] is not None else None
            changes.append(FeatureChange(row[0], row[1], row[4], row[2], row[3], changed, wkb))
        return changes

    def division_totals(
        self, layer: str, level: str, codes: Sequence[str] | None = None, group_by: str | None = None,
        measure: str | None = None, metric_srid: int = 4548, release: int | None = None,
    ) -> list[DivisionTotal]:
        info = self._layer_of(layer, release)
        divisions = self._layer_of(DIVISIONS, release)
        if group_by is not None and group_by not in info.field_types:
            raise BadInput(f"layer {layer!r} has no field {group_by!r} to group by (fields: {', '.join(info.field_types)})")
        prepared = self._prepared_totals(
            release, lambda d: prepared_statement(d, info, divisions, level, codes, group_by, measure, metric_srid),  # type: ignore[arg-type]
        )
        if prepared and prepared[0][0] is None:  # the marker: prepared so, and not edited since
            rows = prepared[1:]
        else:  # totalled live (edits in the overlay, another question, or a release from before)
            rows = self._release_rows(
                (release,),
                lambda d: division_totals_statement(info, divisions, d[0], level, codes, group_by, measure, metric_srid),  # type: ignore[arg-type]
            )
        return [DivisionTotal(r[0], r[1], int(r[2]), None if r[3] is None else float(r[3])) for r in rows]


__all__ = ["DIVISIONS", "Build", "DivisionTotal", "FeatureChange", "ReleaseReads"]
