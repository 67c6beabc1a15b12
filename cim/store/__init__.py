"""Opening a store by URL: ``postgresql://...`` for PostGIS, a path ending ``.duckdb`` (or
``duckdb:///path``) for the embedded store. With no URL given, ``$CIM_STORE`` or ``./cim.duckdb``."""

from __future__ import annotations

import os
import threading

from cim.errors import StoreError
from cim.store.base import FeaturePage, FeatureQuery, LayerData, LayerInfo, ReleaseDraft, ReleaseInfo, Store

__all__ = [
    "FeaturePage",
    "FeatureQuery",
    "LayerData",
    "LayerInfo",
    "ReleaseDraft",
    "ReleaseInfo",
    "Store",
    "open_store",
    "resolve_url",
    "shared_store",
]

DEFAULT_URL = "cim.duckdb"


def resolve_url(url: str | None = None) -> str:
    """The store URL in force: the one given, else ``$CIM_STORE``, else ``./cim.duckdb``."""
    return url or os.environ.get("CIM_STORE") or DEFAULT_URL


def open_store(url: str | None = None) -> Store:
    """A new store object for ``url`` (see :func:`resolve_url`); raises StoreError for bad URLs."""
    url = resolve_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from cim.store.postgis_store import PostgisStore

        return PostgisStore(url.replace("postgres://", "postgresql://", 1))
    if scheme == "duckdb":
        url = url.split("://", 1)[1]
        scheme = ""
    if scheme == "" and url.endswith(".duckdb"):
        from cim.store.duckdb_store import DuckDBStore

        return DuckDBStore(url)
    raise StoreError(
        f"unknown store {url!r}: use postgresql://user@host:port/db (PostGIS) or a path ending .duckdb (embedded)"
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
