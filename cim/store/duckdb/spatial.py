"""Connections to DuckDB with the spatial extension loaded from the PyPI package
``duckdb-extension-spatial`` — never INSTALLed from the network — and, when ``$CIM_DUCKDB_KEY`` is
set, every store file encrypted at rest.

Encryption (DuckDB database encryption, AES-256-GCM): with ``CIM_DUCKDB_KEY`` set, :func:`connect`
opens a file by ``ATTACH ... (ENCRYPTION_KEY ...)`` into an in-memory connection and makes it the
default database (``USE``), so what runs on the connection reads and writes the file as before; a
file it creates (a release, an edits-overlay version) is encrypted. Other statements attaching a
store file take :func:`attach_sql`, and per-thread cursors :func:`cursor` (a DuckDB cursor starts in
the in-memory database). Writing encrypted files needs OpenSSL's AES, which DuckDB takes from the
httpfs extension: loaded (from the PyPI package ``duckdb-extension-httpfs``) by the ``ATTACH`` of a
file for writing only (about 0.5 s, once per connection). A wrong key, a missing key for an encrypted file, or a key for a plain one: StoreError saying
which. Raster COGs, the JSON sidecars of releases and the audit log are not DuckDB files and are
not encrypted (docs/security.md)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import duckdb

from cim.errors import StoreError

#: no extension is ever fetched or auto-loaded behind our back
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
#: the environment variable holding the encryption key of the embedded store's files
KEY_VARIABLE = "CIM_DUCKDB_KEY"
#: the name an encrypted file is attached under by :func:`connect`
ENCRYPTED = "cim_encrypted"


def encryption_key() -> str | None:
    """The key of the store's files (``$CIM_DUCKDB_KEY``), None when they are not encrypted."""
    return os.environ.get(KEY_VARIABLE) or None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attach_sql(path: str | os.PathLike[str], alias: str, read_only: bool) -> str:
    """``ATTACH`` of store file ``path`` as ``alias`` (an identifier, quoted by the caller if need
    be), with the encryption key when one is set."""
    options = ["READ_ONLY"] if read_only else []
    key = encryption_key()
    load = ""
    if key is not None:
        options.append(f"ENCRYPTION_KEY {_literal(key)}")
        if not read_only:  # writing encrypted needs OpenSSL's AES (a no-op once loaded)
            load = f"LOAD {_literal(str(httpfs_path()))}; "
    return f"{load}ATTACH {_literal(str(path))} AS {alias}" + (f" ({', '.join(options)})" if options else "")


def cursor(connection: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of ``connection`` on the same default database (an encrypted file's, see the module's doc)."""
    cur = connection.cursor()
    if encryption_key() is not None:
        if cur.execute("SELECT 1 FROM duckdb_databases() WHERE database_name = ?", (ENCRYPTED,)).fetchone():
            cur.execute(f"USE {ENCRYPTED}")
    return cur


def _open_error(path: str | os.PathLike[str], exc: duckdb.Error) -> StoreError:
    text = str(exc)
    if "without a key" in text:
        reason = f"it is encrypted: set {KEY_VARIABLE} to its key"
    elif "Wrong encryption key" in text or "wrong encryption key" in text.lower():
        reason = f"{KEY_VARIABLE} is not the key it was encrypted with"
    elif "is not encrypted" in text:
        reason = f"it is not encrypted, but {KEY_VARIABLE} is set: unset it to read plain files"
    else:
        reason = text
    return StoreError(f"cannot open DuckDB file {path}: {reason}")


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


@cache
def httpfs_path() -> Path:
    """The httpfs extension of ``duckdb-extension-httpfs`` (OpenSSL's AES for writing encrypted files)."""
    try:
        import duckdb_extension_httpfs
    except ImportError as exc:  # pragma: no cover - a packaging error
        raise StoreError(f"writing encrypted files ({KEY_VARIABLE}) needs the PyPI package duckdb-extension-httpfs") from exc
    wanted = Path(duckdb_extension_httpfs.__path__[0]) / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if not wanted.is_file():
        raise StoreError(f"duckdb {duckdb.__version__} needs duckdb-extension-httpfs=={duckdb.__version__}")
    return wanted


def connect(path: str | os.PathLike[str], read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to ``path`` (or ``:memory:``) with spatial loaded; with ``$CIM_DUCKDB_KEY`` set,
    ``path`` is attached encrypted (see the module's doc)."""
    memory = str(path) == ":memory:"
    key = encryption_key()
    try:
        con = duckdb.connect(":memory:" if key is not None else str(path), read_only=read_only and (key is None or memory), config=_CONFIG)
    except duckdb.Error as exc:
        raise _open_error(path, exc) from exc
    con.execute(f"LOAD '{extension_path()}'")
    if key is None or memory:
        return con
    try:
        con.execute(attach_sql(path, ENCRYPTED, read_only))
        con.execute(f"USE {ENCRYPTED}")
        con.execute("SET temp_file_encryption = true")  # what a large query spills, too
    except duckdb.Error as exc:
        con.close()
        raise _open_error(path, exc) from exc
    return con
