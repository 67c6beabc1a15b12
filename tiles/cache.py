"""A two-level tile cache: a bounded in-memory LRU in front of a bounded directory on disk.

Keys are ``(release tag, tileset, tms id, z, row, col)``. The release tag names one release of one
store (its number and creation time; for tilesets with an editable layer also the store's edit
generation, see tiles/engine.py), so a new release — or a rollback, an edit, or a store rebuilt
from scratch that reuses a number — reads and writes other keys: a tile cached for one release is
never served for another, and nothing needs invalidating. Empty tiles are cached too (as b"").

On disk a tile is ``<dir>/<release tag>/<tileset>/<tms id>/<z>/<row>/<col>.mvt``, written to a temporary
name and renamed, so several processes (server workers, ``cim tiles seed``) can share a directory.
The disk bound is kept by each process over the files it knows (the ones found at start plus the
ones it writes), evicting the least recently written first; old releases' tiles go first.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

LOGGER = logging.getLogger(__name__)

TileKey = tuple[str, str, str, int, int, int]

MEMORY_BYTES = 128 * 1024 * 1024
DISK_BYTES = 2 * 1024 * 1024 * 1024
#: environment variable bounding a server process's tiles in memory, in MiB (0: none kept)
MEMORY_ENV = "CIM_TILE_MEMORY_MB"
#: bytes an entry costs besides its data (so that cached empty tiles count too)
ENTRY_OVERHEAD = 100

_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


def memory_budget() -> int:
    """Bytes of tiles a process keeps in memory: ``$CIM_TILE_MEMORY_MB`` (default 128). It bounds
    the engine's LRU and, as much again, the server's fast path (ogcapi/tiles_fastpath.py); 0 keeps
    none, so that every request renders (or reads the disk cache)."""
    value = os.environ.get(MEMORY_ENV)
    try:
        mib = float(value) if value is not None else MEMORY_BYTES / 2**20
    except ValueError:
        raise ValueError(f"${MEMORY_ENV} must be a number of MiB, not {value!r}") from None
    return max(0, int(mib * 2**20))


def _part(value: str | int) -> str:
    text = str(value)
    if not _SAFE.match(text) or text in (".", ".."):
        raise ValueError(f"unsafe tile cache key part {text!r}")
    return text


class MemoryLRU:
    """Least-recently-used bytes, bounded by their total size."""

    def __init__(self, max_bytes: int = MEMORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[TileKey, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: TileKey) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: TileKey, data: bytes) -> None:
        cost = len(data) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old) + ENTRY_OVERHEAD
            self._items[key] = data
            self.size += cost
            while self.size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped) + ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._items)


class DiskCache:
    """Tiles as files under ``root``, bounded by ``max_bytes`` (oldest written evicted first)."""

    def __init__(self, root: Path, max_bytes: int = DISK_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.size = 0
        self._files: OrderedDict[Path, int] | None = None
        self._lock = threading.Lock()

    def path(self, key: TileKey) -> Path:
        tag, tileset, tms, z, row, col = key
        return self.root.joinpath(_part(tag), _part(tileset), _part(tms), str(int(z)), str(int(row)), f"{int(col)}.mvt")

    def _index(self) -> OrderedDict[Path, int]:
        if self._files is None:
            found: list[tuple[float, Path, int]] = []
            if self.root.is_dir():
                for path in self.root.rglob("*.mvt"):
                    try:
                        stat = path.stat()
                    except OSError:
                        continue
                    found.append((stat.st_mtime, path, stat.st_size))
            found.sort()
            self._files = OrderedDict((path, size + ENTRY_OVERHEAD) for _, path, size in found)
            self.size = sum(self._files.values())
        return self._files

    def get(self, key: TileKey) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            LOGGER.warning("tile cache: cannot read %s: %s", self.path(key), exc)
            return None

    def put(self, key: TileKey, data: bytes) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            LOGGER.warning("tile cache: cannot write %s: %s", path, exc)
            return
        with self._lock:
            files = self._index()
            old = files.pop(path, None)
            if old is not None:
                self.size -= old
            files[path] = len(data) + ENTRY_OVERHEAD
            self.size += len(data) + ENTRY_OVERHEAD
            while self.size > self.max_bytes and files:
                victim, cost = files.popitem(last=False)
                self.size -= cost
                victim.unlink(missing_ok=True)


class TileCache:
    """Memory first, then disk (when a directory is configured); a disk hit is promoted to memory."""

    def __init__(self, memory_bytes: int = MEMORY_BYTES, disk: DiskCache | None = None) -> None:
        self.memory = MemoryLRU(memory_bytes)
        self.disk = disk

    def get(self, key: TileKey) -> bytes | None:
        data = self.memory.get(key)
        if data is None and self.disk is not None:
            data = self.disk.get(key)
            if data is not None:
                self.memory.put(key, data)
        return data

    def put(self, key: TileKey, data: bytes) -> None:
        self.memory.put(key, data)
        if self.disk is not None:
            self.disk.put(key, data)
