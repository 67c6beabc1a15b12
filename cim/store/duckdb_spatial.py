"""Connections to DuckDB with the spatial extension loaded from the PyPI package
``duckdb-extension-spatial`` — never INSTALLed from the network."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import duckdb

from cim.errors import StoreError

#: no extension is ever fetched or auto-loaded behind our back
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


@cache
def extension_path() -> Path:
    """The spatial extension binary shipped in ``duckdb_extension_spatial`` for this DuckDB version."""
    try:
        import duckdb_extension_spatial
    except ImportError as exc:  # pragma: no cover - a packaging error
        raise StoreError("the embedded store needs the PyPI package duckdb-extension-spatial") from exc
    root = Path(duckdb_extension_spatial.__path__[0]) / "extensions"
    wanted = root / duckdb.__version__.join(("v", "")) / "spatial.duckdb_extension"
    if wanted.is_file():
        return wanted
    found = sorted(root.glob("*/spatial.duckdb_extension"))
    raise StoreError(
        f"duckdb {duckdb.__version__} needs duckdb-extension-spatial=={duckdb.__version__}; "
        f"installed: {', '.join(p.parent.name for p in found) or 'none'}"
    )


def connect(path: str | os.PathLike[str], read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to ``path`` (or ``:memory:``) with spatial loaded."""
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=_CONFIG)
    except duckdb.Error as exc:
        raise StoreError(f"cannot open DuckDB file {path}: {exc}") from exc
    con.execute(f"LOAD '{extension_path()}'")
    return con
