"""The store interface: one API, two backends (embedded DuckDB, PostGIS).

A store holds numbered *releases*. Each release is a complete, immutable set of layers; exactly one
release is *current*. Readers always see the current release; a build writes a new release beside
it and makes it current in one atomic step (see ``publish``), so a server keeps answering from the
old release until the switch and never sees a half-loaded one.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import geopandas as gpd

from cim.errors import FeatureNotFound, LayerNotFound
from cim.layerspec import FieldSpec, LayerSpec
from cim.store.audit import AuditLog
from cim.store.tilequery import RenderedTile, TileQuery

if TYPE_CHECKING:
    from cim.processes.jobs import JobStore
    from cim.store.release_reads import DivisionTotal, FeatureChange

#: columns every vector layer table has besides its schema fields
FID = "fid"
GEOM = "geom"
PROVENANCE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("source", "string", "Name of the source this feature was taken from"),
    FieldSpec("source_id", "string", "Identifier of the feature in its source"),
)


@dataclass(frozen=True)
class LayerInfo:
    """A layer as stored in a release: its definition plus what the build measured."""

    spec: LayerSpec
    srid: int
    count: int
    #: extent in CRS84 (lon/lat): minx, miny, maxx, maxy; None for an empty layer
    bbox: tuple[float, float, float, float] | None
    #: temporal extent (ISO 8601 strings), when the layer has time
    interval: tuple[str | None, str | None] | None = None
    #: for raster layers: path of the Cloud-Optimised GeoTIFF of the release
    raster_path: str | None = None
    #: the largest feature's area (polygon layers, storage CRS units²) or length (line layers) in
    #: the release: tiles skip a layer at zooms where even it is below the visibility threshold
    max_size: float | None = None
    #: WebMercatorQuad zooms for which the store holds the layer's tile geometry ready
    #: (cim/store/sql/tile_geometry.py; PostGIS only, filled from its cim.tile_geometry, not serialised)
    tile_zooms: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        """Schema fields followed by the provenance fields every feature carries."""
        return self.spec.fields + PROVENANCE_FIELDS

    @property
    def field_types(self) -> dict[str, str]:
        return {f.name: f.type for f in self.fields}

    def to_json(self) -> str:
        return json.dumps(
            {
                "spec": spec_to_dict(self.spec),
                "srid": self.srid,
                "count": self.count,
                "bbox": self.bbox,
                "interval": self.interval,
                "raster_path": self.raster_path,
                "max_size": self.max_size,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LayerInfo:
        data = json.loads(text)
        return cls(
            spec=spec_from_dict(data["spec"]),
            srid=data["srid"],
            count=data["count"],
            bbox=tuple(data["bbox"]) if data["bbox"] else None,
            interval=tuple(data["interval"]) if data.get("interval") else None,
            raster_path=data.get("raster_path"),
            max_size=data.get("max_size"),
        )


def spec_to_dict(spec: LayerSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> LayerSpec:
    fields = tuple(
        FieldSpec(**{**f, "enum": tuple(f["enum"]) if f.get("enum") else None}) for f in data["fields"]
    )
    tuples = {k: tuple(data[k]) for k in ("tile_attributes", "keywords") if k in data}
    return LayerSpec(**{**data, **tuples, "fields": fields})


@dataclass(frozen=True)
class ReleaseInfo:
    number: int
    created: datetime
    current: bool
    layers: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    qa: dict[str, Any] = field(default_factory=dict)


@dataclass
class LayerData:
    """A layer ready to be written: normalised features with columns named as the spec's fields.

    A *carried* layer (``carried_from`` = N, an incremental build: cim/build/carry.py) has an empty
    ``frame``: the store takes the layer of its release N as it was published (table, indexes,
    ``LayerInfo``, tile geometry, totals; a raster's COG) without the features passing through
    Python again, and the new release holds it like any other layer."""

    spec: LayerSpec
    frame: gpd.GeoDataFrame
    raster_path: str | None = None
    #: the release whose stored layer this release takes over unchanged (None: load ``frame``)
    carried_from: int | None = None


@dataclass
class ReleaseDraft:
    """What a build hands the store to publish as the next release.

    ``layers`` is iterated once, in order; a store reads ``config``, ``checksums`` and ``qa`` only
    after it has been exhausted, so a build may stream its layers while it still checks them
    (cim/build/feed.py) and fill those in last. An error raised by the iteration aborts the publish."""

    layers: Iterable[LayerData]
    config: dict[str, Any] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    qa: dict[str, Any] = field(default_factory=dict)
    #: EPSG code every vector layer is stored in
    srid: int = 4326


def catalog_order(infos: Iterable[LayerInfo]) -> list[LayerInfo]:
    """Layers as a release lists them: in the catalog's order (``LayerSpec.order``, then name),
    whatever order a build loaded them in."""
    return sorted(infos, key=lambda info: (info.spec.order, info.spec.name))


@dataclass(frozen=True)
class FeatureQuery:
    """A page of features as OGC API - Features asks for it."""

    layer: str
    limit: int = 10
    offset: int = 0
    #: minx, miny, maxx, maxy in the layer's storage CRS (x = easting / longitude)
    bbox: tuple[float, float, float, float] | None = None
    #: property equality filters
    equals: tuple[tuple[str, Any], ...] = ()
    #: (property, ascending)
    sortby: tuple[tuple[str, bool], ...] = ()
    #: properties to return; None = all
    properties: tuple[str, ...] | None = None
    skip_geometry: bool = False
    #: EPSG code of the output geometry; None = storage CRS. Coordinates are always x/y (lon/lat) order.
    out_srid: int | None = None
    #: swap x and y on output (authority axis order: lat/lon for EPSG:4326 and 4490, N/E for GK zones)
    flip_axes: bool = False
    #: compute numberMatched
    count: bool = True
    #: a CQL2 filter (cim.store.cql2_parse.Cql2Filter)
    filter: Any = None
    #: the ``datetime`` parameter (cim.store.sql.temporal.TimeInterval), applied to the layer's temporal field
    datetime: Any = None
    #: keyset paging: start after this row (cim.store.sql.keyset.Cursor); ``offset`` is then ignored
    cursor: Any = None
    #: give each feature's geometry as the database wrote it, an ``orjson.Fragment`` of GeoJSON
    #: text, instead of a dict (for responses encoded with orjson: no parse and re-encode)
    encoded_geometry: bool = False


@dataclass
class FeaturePage:
    features: list[dict[str, Any]]
    number_matched: int | None
    #: where the next page starts (a cim.store.sql.keyset.Cursor); None on the last page
    next_cursor: Any = None


class Store(abc.ABC):
    """Backend-neutral access to a city's base-map releases.

    A backend is a subclass registered in the ``cim.stores`` entry point group under its URL scheme
    (pyproject.toml); :func:`cim.store.open_store` finds it there and asks :meth:`accepts`."""

    url: str

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def accepts(cls, url: str) -> bool:
        """Whether ``url`` names a store of this backend."""
        return False

    @classmethod
    def from_url(cls, url: str) -> Store:
        """The store ``url`` names (a URL this backend :meth:`accepts`)."""
        return cls(url)  # type: ignore[call-arg]

    def tile_cache_dir(self) -> Path | None:
        """Where tiles of this store are cached on disk unless configured otherwise
        (``$CIM_TILE_CACHE``, tiles/engine.py); None: in memory only."""
        return None

    # -- catalog -------------------------------------------------------------------------------
    @abc.abstractmethod
    def layers(self) -> list[LayerInfo]:
        """The layers of the current release, in drawing order."""

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers():
            if info.name == name:
                return info
        raise LayerNotFound(f"no layer {name!r} in {self.url} (layers: {', '.join(self.layer_names()) or 'none'})")

    def layer_names(self) -> list[str]:
        return [info.name for info in self.layers()]

    # -- reads ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def query(self, query: FeatureQuery) -> FeaturePage:
        """Features as GeoJSON dicts (ids are the integer ``fid``)."""

    @abc.abstractmethod
    def get_feature(
        self, layer: str, fid: int, out_srid: int | None = None, flip_axes: bool = False
    ) -> dict[str, Any]:
        """One feature as a GeoJSON dict; raises FeatureNotFound."""

    @abc.abstractmethod
    def read_frame(
        self,
        layer: str,
        bbox: tuple[float, float, float, float] | None = None,
        out_srid: int | None = None,
        limit: int | None = None,
        columns: Sequence[str] | None = None,
        release: int | None = None,
    ) -> gpd.GeoDataFrame:
        """A layer (or the part of it within ``bbox``, given in storage CRS) as a GeoDataFrame;
        ``columns``: only these properties (default: all). ``release``: read that release's table as
        it was published (no edits overlay) instead of the current release; an unknown or pruned
        release is a NotFound naming the releases kept."""

    # -- past releases and totals (shared implementation: cim/store/release_reads.py) ---------------
    @abc.abstractmethod
    def release_layers(self, number: int) -> list[LayerInfo]:
        """The vector and raster layers of release ``number`` as it was published; an unknown or
        pruned release is a NotFound naming the releases kept."""

    @abc.abstractmethod
    def find_features(
        self, layer: str, equals: Sequence[tuple[str, Any]], release: int | None = None, out_srid: int | None = None
    ) -> gpd.GeoDataFrame:
        """The features of ``layer`` whose properties equal ``equals`` (e.g. a feature's identity,
        ``source``/``source_id``), in the current release (with its edits) or in release ``release``."""

    @abc.abstractmethod
    def diff_releases(
        self, layer: str, from_release: int, to_release: int, area_wkb: bytes | None = None, out_srid: int | None = None
    ) -> list[FeatureChange]:
        """The features of ``layer`` added, removed or changed from release ``from_release`` to
        ``to_release`` (identity (source, source_id); SQL in cim/store/sql/diff.py), those intersecting
        ``area_wkb`` (storage CRS) in either release when given; geometries in ``out_srid``. A layer
        missing from one release: every feature of the other is added or removed."""

    @abc.abstractmethod
    def division_totals(
        self, layer: str, level: str, codes: Sequence[str] | None = None, group_by: str | None = None,
        measure: str | None = None, metric_srid: int = 4548, release: int | None = None,
    ) -> list[DivisionTotal]:
        """Count (and area m² with ``measure="area"``, length m with ``"length"``) of ``layer`` per
        division of ``level`` in layer ``admin_divisions`` (and per value of ``group_by``); SQL in
        cim/store/sql/division_totals.py."""

    def prepare_division_totals(self, number: int) -> bool:
        """Prepare the totals per division of release ``number`` if it was published without them
        (publish makes them: cim/store/sql/division_totals.py); True when made now. The embedded store
        writes a release file only while publishing it: its older releases are totalled live."""
        return False

    # -- tiles ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def render_tile(self, query: TileQuery) -> RenderedTile:
        """One Mapbox Vector Tile of ``query.layers`` from the current release, encoded by the
        database (SQL in ``cim/store/sql/tiles.py``), with the number of the release it was read
        from; ``data`` is b"" when no feature falls in the tile. Raises LayerNotFound."""

    def prepare_tiles(self, on_zoom: Callable[[str, int, float], None] | None = None) -> dict[str, tuple[int, ...]]:
        """Prepare the current release's tile geometry (cim/store/sql/tile_geometry.py) where this store
        keeps it, calling ``on_zoom(layer, zoom, seconds)`` as each is done; returns the zooms
        prepared now by layer. Tiles render without it (more slowly) until it is done; what is done
        already is skipped. The embedded store renders every tile the plain way: nothing to do."""
        return {}

    def tile_geometry_version(self) -> int:
        """A number that changes when prepared tile geometry of the current release becomes usable
        (tiles may then differ by a pixel): part of the tile engine's cache keys and ETags. Cheap,
        like :meth:`edit_generation`; 0 for a store that prepares none."""
        return 0

    # -- edits (OGC API - Features Part 4; see cim/store/edits.py) ------------------------------
    @abc.abstractmethod
    def edit(self, edit: Any) -> int:
        """Apply a ``cim.store.edits.Edit`` to an editable layer in one transaction, recording it in
        the edit log; returns the feature's fid. Raises NotEditable, FeatureNotFound, InvalidFeature."""

    @abc.abstractmethod
    def edit_log(self, layer: str | None = None, limit: int = 100) -> list[Any]:
        """The latest ``cim.store.edits.EditRecord`` entries, newest first."""

    @abc.abstractmethod
    def edit_conflicts(self) -> list[Any]:
        """The edits the current release does not take: ``cim.store.rebase.EditConflict`` entries
        (layer, source, source_id, action, reason). Edits follow a feature's (source, source_id);
        one whose feature is not in the current release is kept aside, not applied, and listed here."""

    def edit_generation(self) -> int:
        """A number that grows with every edit applied to the store, by any process (0 before the
        first): the tile engine keys tiles of editable layers by it, asking per tile request, so it
        is cheap (DuckDB: one readlink; PostGIS: read with the current release, CURRENT_TTL)."""
        return 0

    # -- live layers (written at run time, beside the releases: cim/store/live.py) --------------
    @abc.abstractmethod
    def live_write(self, layer: str, change: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
        """Run ``change(tx)`` (tx: a ``cim.store.live.LiveTransaction`` on live layer ``layer``) as one
        atomic write, one writer at a time across processes; returns its result and the
        ``LiveEvent`` entries it logged. A change that raises leaves the layer untouched."""

    @abc.abstractmethod
    def live_events(self, layer: str, after: int = 0, limit: int = 1000) -> list[Any]:
        """The ``cim.store.live.LiveEvent`` entries of ``layer`` with seq > ``after``, oldest first."""

    @abc.abstractmethod
    def live_version(self, layer: str) -> int:
        """A number that changes with every write to the live layers (cheap)."""

    # -- processes (cim/processes) --------------------------------------------------------------
    def jobs(self) -> JobStore:
        """Where this store keeps OGC API – Processes jobs (cim/processes/jobs.py)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no jobs")

    # -- releases ------------------------------------------------------------------------------
    @abc.abstractmethod
    def publish(self, draft: ReleaseDraft, keep: int | None = None) -> ReleaseInfo:
        """Write ``draft`` as a new release and make it current atomically; prune to ``keep`` releases."""

    @abc.abstractmethod
    def releases(self) -> list[ReleaseInfo]:
        """All releases, oldest first."""

    @abc.abstractmethod
    def set_current(self, number: int) -> ReleaseInfo:
        """Make release ``number`` current (rollback or roll forward)."""

    @abc.abstractmethod
    def current_number(self) -> int:
        """Number of the release readers see now (cheap: servers call it per request)."""

    def known_current_number(self) -> int | None:
        """The number :meth:`current_number` would give, when the store can tell without a query
        or anything else that may block (a server's event loop asks it per cached tile); None
        when it cannot, and then the caller takes the way that calls :meth:`current_number`."""
        return None

    def peek_current_number(self) -> int:
        """The number of the current release, read as cheaply as the store can, without getting
        ready to read that release (the release watcher polls it to see a switch soon after it
        happens: cim/sharing/release_watcher.py). Default: :meth:`current_number`."""
        return self.current_number()

    def known_edit_generation(self) -> int | None:
        """:meth:`edit_generation`, when the store can tell without blocking (as above); else None."""
        return None

    def current_release(self) -> ReleaseInfo | None:
        return next((r for r in self.releases() if r.current), None)

    def audit_log(self) -> AuditLog:
        """The store's audit log (writes and reads of restricted layers, who/what/when): one object
        per store, made by :meth:`open_audit_log`."""
        log: AuditLog | None = getattr(self, "_cim_audit_log", None)
        if log is None:
            log = self._cim_audit_log = self.open_audit_log()
        return log

    @abc.abstractmethod
    def open_audit_log(self) -> AuditLog:
        """A new audit log of this store (cim/store/audit.py): JSON-lines files beside an embedded
        store, the table ``cim.audit_log`` in PostGIS."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def not_found(layer: str, fid: object) -> FeatureNotFound:
    return FeatureNotFound(f"no feature {fid!r} in layer {layer!r}")


def iter_chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
