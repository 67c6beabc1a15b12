"""The embedded store's edits overlay: immutable, versioned DuckDB files, like the releases.

Layout beside the releases::

    cim.duckdb.d/live/r0002.duckdb -> l000007.duckdb    symlink: the overlay of release 2
    cim.duckdb.d/live/l000006.duckdb l000007.duckdb     overlay versions (the last few are kept)
    cim.duckdb.d/live.lock                              flock taken by writers

DuckDB lets one process write a file, and nobody else open it meanwhile; a server with several
workers (and the CLI beside it) must all read edits. So an edit writes a new version: the current
one is copied table by table (``COPY FROM DATABASE``, so the new file is compact however many
versions came before), the change and the edit-log entry are applied in one transaction and
checkpointed, and the release's overlay link is switched with one ``rename(2)``. Files are written
only before anyone reads them; readers (read-only, ``ATTACH``ed to their release connection under a
per-version alias) see the edit on their next query. The writing is done by one in-memory DuckDB
connection per process, with the spatial extension loaded once (loading it took 0.3 s per edit).

Each release has its own overlay link: when a release becomes current, the current overlay is
re-based onto it (:mod:`cim.store.rebase`) into a new version linked for that release *before*
the release symlink is switched, so a reader never sees a release with an overlay made for another.
Readers detach versions superseded for longer than any read may take; versions are pruned once no
link names them and they are not among the last few (a reader between ``readlink`` and ``ATTACH``
retries with the link's new target).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from cim.store.duckdb.locks import file_lock
from cim.errors import StoreError
from cim.limits import limits
from cim.store.base import LayerInfo
from cim.store.duckdb import spatial
from cim.store.duckdb.dialect import SQL_TYPES, LiveView
from cim.store.rebase import Rebase
from cim.store.sql import quote_ident
from cim.store.sql.overlay import CONFLICT, add_columns_sql, create_table_sql

T = TypeVar("T")
#: overlay versions kept besides those a link names (a reader may have just read an older link)
KEEP = 3
EDIT_LOG_DDL = (
    "CREATE TABLE IF NOT EXISTS edit_log (id BIGINT PRIMARY KEY, edited_at TIMESTAMPTZ NOT NULL, who VARCHAR NOT NULL,"
    " action VARCHAR NOT NULL, layer VARCHAR NOT NULL, fid BIGINT NOT NULL, release INTEGER NOT NULL, feature VARCHAR)"
)
SOURCE, TARGET = "cim_live_source", "cim_live_target"
#: block size of overlay files: DuckDB's default (256 KiB) gives each table at least one such
#: block, a few MB per version for a few edits; 16 KiB blocks make versions ~6x smaller and faster
#: to write and checkpoint
BLOCK_SIZE = 16_384


def detach_after() -> float:
    """Seconds a reader keeps a superseded version attached: longer than any read may run."""
    return max(60.0, 3 * limits().request_seconds)


#: one lock per process for attaching and detaching overlay versions: DuckDB keeps one database
#: instance per file in a process, so two readers of one release file (the one a release switch
#: replaced, still finishing requests, and the new one) share their attached databases, and checking
#: then attaching under a lock per reader let both attach the same version ("already exists")
_ATTACH_LOCK = threading.Lock()


class ReaderOverlays:
    """The overlay versions attached to one reader connection: the one in use, and those superseded
    (detached once no read can still be running on them, which frees their files' space)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        # a cursor of its own, used under the lock: a DuckDB connection object must not run
        # statements in two threads at once, and request threads use the release connection's cursors
        self.connection = connection.cursor()
        self.view: LiveView | None = None
        self._retired: dict[str, float] = {}

    def show(self, path: Path) -> LiveView:
        view = self.view
        if view is not None and view.path == path:
            return view
        with _ATTACH_LOCK:
            if self.view is not None and self.view.path == path:
                return self.view
            alias = f"cim_live_{path.stem}"
            con = self.connection
            if not con.execute("SELECT 1 FROM duckdb_databases() WHERE database_name = ?", (alias,)).fetchall():
                con.execute(spatial.attach_sql(path, quote_ident(alias), read_only=True))
            rows = con.execute(
                "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ?", (alias,)
            ).fetchall()
            columns: dict[str, set[str]] = {}
            for table, column in rows:
                columns.setdefault(table, set()).add(column)
            if self.view is not None:
                self._retired[self.view.alias] = time.monotonic()
            self._retired.pop(alias, None)
            self.view = LiveView(path, alias, {t: frozenset(c) for t, c in columns.items() if t != "edit_log"})
            now = time.monotonic()
            for old, since in list(self._retired.items()):
                if now - since > detach_after():
                    try:
                        con.execute(f"DETACH {quote_ident(old)}")
                    except duckdb.Error:
                        pass  # still in use: next time
                    else:
                        del self._retired[old]
            return self.view


_writer: tuple[int, duckdb.DuckDBPyConnection] | None = None
_writer_lock = threading.Lock()


@contextmanager
def writer() -> Iterator[duckdb.DuckDBPyConnection]:
    """This process's in-memory connection that writes overlay versions (spatial loaded once)."""
    global _writer
    with _writer_lock:
        if _writer is None or _writer[0] != os.getpid():
            con = spatial.connect(":memory:", read_only=False)
            # a few rows per edit: one thread (several made its checkpoint slower, 46 -> 36 ms)
            con.execute("SET threads = 1")
            _writer = (os.getpid(), con)
        con = _writer[1]
        try:
            yield con
        finally:
            con.execute("USE memory")
            for (name,) in con.execute(
                "SELECT database_name FROM duckdb_databases() WHERE database_name IN (?, ?, ?, ?)",
                (SOURCE, TARGET, "cim_release", "cim_previous"),
            ).fetchall():
                con.execute(f"DETACH {quote_ident(name)}")


class LiveFiles:
    """The overlay versions of one embedded store (``root`` is ``<store>.d``)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "live"
        self.legacy_link = root / "live.duckdb"
        self.lock_path = root / "live.lock"

    def link(self, release: int) -> Path:
        """The symlink naming the overlay of ``release``."""
        return self.dir / f"r{release:04d}.duckdb"

    def current(self, release: int) -> Path | None:
        """The overlay of ``release`` (one ``readlink``), or None before the first edit. A store whose
        overlay was written before overlays were per release has one link for all."""
        for link in (self.link(release), self.legacy_link):
            try:
                return (link.parent / os.readlink(link)).resolve()
            except OSError:
                continue
        return None

    def view(self, overlays: ReaderOverlays, release: int) -> LiveView | None:
        """The overlay of ``release`` attached to a reader's connection; None without one."""
        for _ in range(5):
            path = self.current(release)
            if path is None:
                return None
            try:
                return overlays.show(path)
            except duckdb.Error as exc:
                if path.exists():
                    raise StoreError(f"cannot read the edits overlay {path}: {exc}") from exc
                # pruned between readlink and ATTACH: the link names a newer version now
        raise StoreError(f"cannot read the edits overlay of release {release}: it keeps changing")

    def locked(self) -> AbstractContextManager[None]:
        """Serialise writers across processes (held while an edit reads what it changes)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return file_lock(self.lock_path)

    def _next(self) -> Path:
        numbers = [int(p.stem[1:]) for p in self.dir.glob("l[0-9]*.duckdb") if p.stem[1:].isdigit()]
        return self.dir / f"l{max(numbers, default=0) + 1:06d}.duckdb"

    def write(
        self, release: int, change: Callable[[duckdb.DuckDBPyConnection], T], base: Path | None = None, atomic: bool = True
    ) -> T:
        """Write a new version from ``base`` (default: the overlay of ``release``), applying
        ``change`` (in one transaction when ``atomic``; it sees the new file as the current
        database), and link it as the overlay of ``release``. Call inside :meth:`locked`."""
        source = self.current(release) if base is None else base
        final = self._next()
        partial = final.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        try:
            with writer() as con:
                con.execute(_small_blocks(spatial.attach_sql(partial, TARGET, read_only=False)))
                if source is not None:
                    con.execute(spatial.attach_sql(source, SOURCE, read_only=True))
                    con.execute(f"COPY FROM DATABASE {SOURCE} TO {TARGET}")
                    con.execute(f"DETACH {SOURCE}")
                con.execute(f"USE {TARGET}")
                con.execute(EDIT_LOG_DDL)
                if atomic:
                    con.execute("BEGIN TRANSACTION")
                    try:
                        result = change(con)
                    except BaseException:
                        con.execute("ROLLBACK")
                        raise
                    con.execute("COMMIT")
                else:
                    result = change(con)
                con.execute("USE memory")
                con.execute(f"CHECKPOINT {TARGET}")
        except duckdb.Error as exc:
            partial.unlink(missing_ok=True)
            raise StoreError(f"edit failed: {exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, final)
        self._point(self.link(release), final)
        self.prune(release)
        return result

    def _point(self, link: Path, target: Path) -> None:
        tmp = link.with_name(f".{link.name}.{os.getpid()}.link")
        tmp.unlink(missing_ok=True)
        os.symlink(target.name, tmp)
        os.replace(tmp, link)

    def prune(self, release: int) -> None:
        """Keep the overlay of ``release`` and of the release before it (a reader may still be on
        it for a moment), and the last :data:`KEEP` versions; remove the rest."""
        links = sorted(self.dir.glob("r[0-9]*.duckdb"), key=lambda p: p.lstat().st_mtime)
        keep_links = {self.link(release), *links[-2:]}
        for link in links:
            if link not in keep_links:
                link.unlink(missing_ok=True)
        self.legacy_link.unlink(missing_ok=True)
        named = {(self.dir / os.readlink(link)).name for link in keep_links if link.is_symlink()}
        versions = sorted(self.dir.glob("l[0-9]*.duckdb"))
        for old in versions[:-KEEP]:
            if old.name not in named:
                old.unlink(missing_ok=True)

    def rebase(self, previous: int | None, previous_file: Path | None, release: int, release_file: Path) -> None:
        """Make the overlay of ``release``: the current overlay (that of ``previous``) re-based onto
        the release file (call inside :meth:`locked`, before the release becomes current)."""
        base = self.current(previous if previous is not None else 0)
        if base is None:
            return

        def change(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(spatial.attach_sql(release_file, "cim_release", read_only=True))
            prior = None
            if previous_file is not None and previous_file.exists():
                con.execute(spatial.attach_sql(previous_file, "cim_previous", read_only=True))
                prior = "cim_previous"
            columns = _columns(con, TARGET)
            in_release = set(_columns(con, "cim_release"))
            in_prior = set(_columns(con, prior)) if prior else set()
            rebase = Rebase(lambda sql, params: con.execute(sql, params).fetchall(), "?")
            for layer, names in columns.items():
                if layer == "edit_log":
                    continue
                rebase.rebase_table(
                    f"{TARGET}.{quote_ident(layer)}", names,
                    f"cim_release.{quote_ident(layer)}" if layer in in_release else None, release,
                    f"{prior}.{quote_ident(layer)}" if layer in in_prior else None, previous,
                )  # fmt: skip

        # not one transaction: DuckDB refuses a key deleted and inserted again in one; the file is
        # new and nobody reads it before it is linked, so a failure just discards it
        self.write(release, change, base=base, atomic=False)


def _small_blocks(attach: str) -> str:
    """An ``ATTACH`` of a new file with :data:`BLOCK_SIZE` blocks (readers need no option)."""
    if attach.endswith(")"):
        return f"{attach[:-1]}, BLOCK_SIZE {BLOCK_SIZE})"
    return f"{attach} (BLOCK_SIZE {BLOCK_SIZE})"


def _columns(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? ORDER BY table_name, column_index",
        (catalog,),
    ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def ensure_table(con: duckdb.DuckDBPyConnection, info: LayerInfo) -> str:
    """The layer's overlay table in the file being written, created or given new fields."""
    table = quote_ident(info.name)
    con.execute(create_table_sql(info, table, SQL_TYPES, "GEOMETRY"))
    existing = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND table_name = ?",
        (info.name,),
    ).fetchall()}  # fmt: skip
    for statement in add_columns_sql(info, table, SQL_TYPES, existing):
        con.execute(statement)
    if CONFLICT not in existing:  # a table written before edits followed identities
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote_ident(CONFLICT)} VARCHAR")
    return table
