"""The embedded store (DuckDB spatial): one immutable file per release (:mod:`.store`, :mod:`.releases`),
an edits overlay of versioned files (:mod:`.live`, :mod:`.edits`), its SQL spellings (:mod:`.dialect`)
and connections with the spatial extension (:mod:`.spatial`). Registered as the ``duckdb`` store
backend (entry point group ``cim.stores``): ``duckdb:///path`` or a path ending ``.duckdb``."""

from cim.store.duckdb.store import DuckDBStore

__all__ = ["DuckDBStore"]
