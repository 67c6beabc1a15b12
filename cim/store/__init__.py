"""The store: releases of a city's layers, read and written through one interface (:class:`Store`,
cim/store/base.py), whatever the backend.

Backends are plug-ins: a :class:`Store` subclass registered under its URL scheme in the entry
point group ``cim.stores`` (pyproject.toml): ``postgresql`` (``cim.store.postgis``, PostGIS) and
``duckdb`` (``cim.store.duckdb``, embedded; also any path ending ``.duckdb``). :func:`open_store`
asks the backend named by the URL's scheme (for a path: by its suffix) whether it
:meth:`~Store.accepts` the URL, and failing that every installed backend. With no URL given,
``$CIM_STORE`` or ``./cim.duckdb``. The SQL both backends share is in :mod:`cim.store.sql`.

Modules outside ``cim/store`` import from here, never from a backend package.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from importlib.metadata import entry_points

from cim.errors import StoreError
from cim.store.audit import WRITE_METHODS, AuditRecord
from cim.store.base import (
    PROVENANCE_FIELDS,
    FeaturePage,
    FeatureQuery,
    LayerData,
    LayerInfo,
    ReleaseDraft,
    ReleaseInfo,
    Store,
)
from cim.store.cql2_parse import Cql2Filter, parse_filter
from cim.store.edits import Edit, EditRecord, InvalidFeature, NotEditable
from cim.store.rasters import RASTER_SRID
from cim.store.sql.keyset import Cursor
from cim.store.sql.temporal import TimeInterval, bound_moment
from cim.store.tilequery import MAX_FEATURES, Bounds, RenderedTile, TileLayerQuery, TileQuery
from cim.store.write_checks import TooLarge, check_depth

__all__ = [
    "MAX_FEATURES",
    "PROVENANCE_FIELDS",
    "RASTER_SRID",
    "WRITE_METHODS",
    "AuditRecord",
    "Bounds",
    "Cql2Filter",
    "Cursor",
    "Edit",
    "EditRecord",
    "FeaturePage",
    "FeatureQuery",
    "InvalidFeature",
    "LayerData",
    "LayerInfo",
    "NotEditable",
    "ReleaseDraft",
    "ReleaseInfo",
    "RenderedTile",
    "Store",
    "TileLayerQuery",
    "TileQuery",
    "TimeInterval",
    "TooLarge",
    "backends",
    "bound_moment",
    "check_depth",
    "open_store",
    "parse_filter",
    "resolve_url",
    "shared_store",
]

DEFAULT_URL = "cim.duckdb"
#: the entry point group of store backends: name = URL scheme, value = a Store subclass
GROUP = "cim.stores"


def resolve_url(url: str | None = None) -> str:
    """The store URL in force: the one given, else ``$CIM_STORE``, else ``./cim.duckdb``."""
    return url or os.environ.get("CIM_STORE") or DEFAULT_URL


def backends() -> list[str]:
    """The URL schemes of the installed store backends, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


@cache
def _backend(scheme: str) -> type[Store] | None:
    """The backend registered under ``scheme``, imported on first use; None if there is none."""
    for ep in entry_points(group=GROUP, name=scheme):
        return ep.load()
    return None


def _scheme(url: str) -> str:
    """The scheme of ``url``; for a path, its suffix (``city.duckdb`` -> ``duckdb``)."""
    if "://" in url:
        return url.split("://", 1)[0].lower()
    return os.path.splitext(url)[1].removeprefix(".").lower()


def open_store(url: str | None = None) -> Store:
    """A new store object for ``url`` (see :func:`resolve_url`); raises StoreError for bad URLs."""
    url = resolve_url(url)
    first = _backend(_scheme(url))
    if first is not None and first.accepts(url):
        return first.from_url(url)
    for scheme in backends():
        backend = _backend(scheme)
        if backend is not None and backend is not first and backend.accepts(url):
            return backend.from_url(url)
    raise StoreError(
        f"unknown store {url!r}: use postgresql://user@host:port/db (PostGIS) or a path ending .duckdb (embedded)"
        f" (store backends installed: {', '.join(backends()) or 'none'})"
    )


_shared: dict[str, Store] = {}
_shared_lock = threading.Lock()


def shared_store(url: str | None = None) -> Store:
    """One store object per URL for the whole process (servers: pooled connections are reused)."""
    url = resolve_url(url)
    with _shared_lock:
        store = _shared.get(url)
        if store is None:
            store = _shared[url] = open_store(url)
        return store
