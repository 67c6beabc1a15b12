"""Incremental builds: a layer whose sources and config are unchanged is carried over from the
current release instead of being read and loaded again.

A layer's *build key* is the SHA-256 of canonical JSON over everything its published form follows
from: its config section as written (and the loss limits in effect for it), its ``LayerSpec``, the
storage SRID, the SHA-256 of every file of each of its sources, and :data:`CARRY_VERSION`. Each
release records the keys in its config record, ``config["cim_build"]["layers"][name] =
{"key": ..., "carried_from": N | None}``. When the current release has the same key for a layer
(and holds it), the build hands the store ``LayerData(spec, <empty frame>, carried_from=N)`` where
N is the release that holds the data (the chain followed: a layer carried into the current release
is carried from where that one took it, if that release is still kept, else from the current
release), and the store takes the layer as published (cim/store/postgis/carry.py,
cim/store/duckdb/carry.py). ``cim build --full`` never carries.

Anything that does not fit (no current release, a key missing or different, the holding release's
layer unreadable) builds the layer normally: carrying never fails a build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd

from cim.build.config import BuildConfig, LayerConfig
from cim.build.qa import QAReport
from cim.build.readers import sha256, source_files
from cim.layerspec import LayerSpec
from cim.store import LayerData, ReleaseInfo, Store
from cim.store.base import spec_to_dict

#: bump when the pipeline's output for the same sources and config changes (a new rule, a fix in
#: normalising): every layer of the next build is then built again
CARRY_VERSION = 1
#: the key of the build's own record in a release's config record
RECORD = "cim_build"


def source_digests(layer: LayerConfig, known: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The SHA-256 of every file of each of the layer's sources, by config-relative name (cached
    per file version by :func:`cim.build.readers.sha256`, so the build's own checksums reuse them).
    ``known``: file records of an earlier release (:func:`file_record`); a file whose record still
    matches keeps its recorded digest instead of being read again."""
    digests = {}
    for source in layer.sources:
        for name, path in source_files(source).items():
            earlier = (known or {}).get(name)
            if isinstance(earlier, dict) and isinstance(earlier.get("sha256"), str) and earlier == file_record(path, earlier["sha256"]):
                digests[name] = earlier["sha256"]
            else:
                digests[name] = sha256(path)
    return digests


def file_record(path: Path, digest: str) -> dict[str, Any]:
    """What a release records of a source file beside its SHA-256, so that the next build can tell
    the file is the same one without reading it: its resolved path, size, inode, and modification
    and status-change times in ns — as git's index does. A file written again, replaced, renamed
    over or restored with its old modification time has a new status-change time (which no
    program can set), so its digest is computed again; ``cim build --full`` reads everything."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "inode": stat.st_ino,
            "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "sha256": digest}  # fmt: skip


def build_key(config: BuildConfig, layer: LayerConfig, spec: LayerSpec, digests: Mapping[str, str]) -> str:
    """The layer's build key (module docstring)."""
    section = (config.raw.get("layers") or {}).get(layer.name)
    body = {
        "version": CARRY_VERSION,
        "catalog": config.catalog,
        "config": section,
        "loss": dataclasses.asdict(layer.loss),
        "spec": spec_to_dict(spec),
        "srid": config.storage_srid,
        "files": dict(sorted(digests.items())),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def empty_frame(srid: int) -> gpd.GeoDataFrame:
    """The frame of a carried layer: no rows (the store takes the published layer)."""
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=f"EPSG:{srid}"))


@dataclass
class Carrier:
    """What the current release of ``store`` lets this build carry over (nothing with ``full``)."""

    store: Store | None
    full: bool = False
    #: the release the build starts from (the store's current one)
    base: ReleaseInfo | None = None
    #: release number → layer names it holds (asked once per release)
    _held: dict[int, set[str]] = field(default_factory=dict)
    #: every layer's record for the new release's config record
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every source file's record (:func:`file_record`) for it
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, store: Store | None, full: bool = False) -> Carrier:
        base = None
        if store is not None and not full:
            try:
                base = store.current_release()
            except Exception:  # noqa: BLE001 - an unreadable store: the publish says why
                base = None
        return cls(store, full, base)

    def _base_layers(self) -> dict[str, Any]:
        if self.base is None:
            return {}
        record = self.base.config.get(RECORD) if isinstance(self.base.config, dict) else None
        layers = record.get("layers") if isinstance(record, dict) else None
        return layers if isinstance(layers, dict) else {}

    def may_carry(self, name: str) -> bool:
        """Whether the base release has a key for ``name`` at all (else the sources need not be
        hashed before reading)."""
        return not self.full and name in self._base_layers() and self.base is not None and name in self.base.layers

    def holder(self, name: str, key: str, spec: LayerSpec) -> int | None:
        """The release to carry layer ``name`` from, when the base release built or carried it with
        ``key``; None: build it."""
        if not self.may_carry(name) or self.base is None:
            return None
        entry = self._base_layers().get(name)
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        earlier = entry.get("carried_from")
        for number in ([earlier] if isinstance(earlier, int) else []) + [self.base.number]:
            if self._holds(number, name, spec):
                return number
        return None

    def _holds(self, number: int, name: str, spec: LayerSpec) -> bool:
        """Release ``number`` is kept and its layer ``name`` reads (a vector layer's table is there)."""
        assert self.store is not None
        if number not in self._held:
            try:
                self._held[number] = {info.name for info in self.store.release_layers(number)}
            except Exception:  # noqa: BLE001 - pruned or unreadable: not a release to carry from
                self._held[number] = set()
        if name not in self._held[number]:
            return False
        if spec.kind != "vector":
            return True
        try:
            self.store.read_frame(name, limit=1, release=number, columns=())
        except Exception:  # noqa: BLE001 - the table is missing or broken: build the layer
            return False
        return True

    def known_files(self) -> dict[str, Any]:
        """The base release's records of its source files (:func:`file_record`), by name."""
        record = self.base.config.get(RECORD) if self.base is not None and isinstance(self.base.config, dict) else None
        files = record.get("files") if isinstance(record, dict) else None
        return files if isinstance(files, dict) and not self.full else {}

    def digests(self, layer: LayerConfig) -> dict[str, str]:
        """:func:`source_digests` of ``layer``, trusting the base release's file records; the files
        are recorded for the new release."""
        digests = source_digests(layer, self.known_files())
        for source in layer.sources:
            for name, path in source_files(source).items():
                self.files[name] = file_record(path, digests[name])
        return digests

    def record(self, name: str, key: str, carried_from: int | None) -> None:
        self.records[name] = {"key": key, "carried_from": carried_from}

    def carried(self, spec: LayerSpec, number: int, srid: int, report: QAReport) -> LayerData:
        """The carried layer for the store, its earlier QA (sources, cross-checks, count, raster
        summary) kept in ``report`` and one ``build.carried`` record added."""
        earlier = self.base.qa if self.base is not None and isinstance(self.base.qa, dict) else {}
        report.carry(spec.name, number, earlier)
        reason = f"carried over from release {number}: sources and config unchanged"
        report.add(spec.name, "", None, "build.carried", "flagged", reason)
        return LayerData(spec, empty_frame(srid), carried_from=number)

    def config_record(self) -> dict[str, Any]:
        return {"layers": dict(self.records), "files": dict(self.files), "version": CARRY_VERSION, "full": self.full}
