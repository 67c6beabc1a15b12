"""The file cache of downloads: each (layer, release, format[, edit generation]) written once.

Where: ``$CIM_DOWNLOAD_CACHE``, else ``downloads/`` under the store's tile cache directory when it
has one (the embedded store: ``<store>.d/tiles/downloads``), else
``~/.cache/cim/downloads/<store key>``. Layout::

    <root>/<layer>/r0002.parquet            release 2 as published (immutable)
    <root>/<layer>/r0003-g17.gpkg           the current release 3 of an editable (or live) layer,
                                            at edit generation 17 (an edit makes a new file)
    <root>/<layer>/r0002.parquet.sha256     its sha256 (the ETag), written before the file appears
    <root>/<layer>/.r0002.parquet.lock      the per-file flock writers take
    <root>/<layer>/.tmp-r0002.parquet-...   a file being written (renamed into place when complete)

A file is built under its exclusive ``flock``: concurrent requests (threads or processes) for the
same new file wait for the one build and then all serve it. The writer writes a temporary name and
``rename(2)``s it; temporary files left by a killed writer are removed by the next writer of that
file (it holds the lock, so no one else is writing them). Making a file also removes the files of
releases the store no longer keeps and the older generations of the file just made.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cim.errors import BadInput, StoreError
from cim.sharing.downloads import write_download
from cim.sharing.formats import DownloadFormat, download_format
from cim.store import Store

#: the variable naming the cache directory
CACHE_VARIABLE = "CIM_DOWNLOAD_CACHE"
_NAME = re.compile(r"^r(?P<release>\d+)(?:-g(?P<generation>\d+))?\.(?P<ext>[a-z]+)(?P<sha>\.sha256)?$")
#: attempts at a current-release file while releases switch under it
_ATTEMPTS = 3


@dataclass(frozen=True)
class Download:
    """A finished download file in the cache."""

    path: Path
    #: sha256 of the file's bytes (hex): its ETag
    sha256: str
    layer: str
    release: int
    format: DownloadFormat
    size: int

    @property
    def filename(self) -> str:
        """The name a client saves it as: ``<layer>-r<N>.<ext>``."""
        return f"{self.layer}-r{self.release}.{self.format.extension}"


def cache_root(store: Store) -> Path:
    """The cache directory of ``store`` (see the module's doc)."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    tiles = store.tile_cache_dir()
    if tiles is not None:
        return tiles / "downloads"
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", store.url).strip("_")[:60]
    digest = hashlib.sha256(store.url.encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "cim" / "downloads" / f"{key}-{digest}"


class DownloadCache:
    """Downloads of ``store``'s layers, built on first request and kept in :func:`cache_root`."""

    def __init__(self, store: Store, root: Path | None = None) -> None:
        self.store = store
        self.root = root if root is not None else cache_root(store)

    def get(self, layer: str, fmt: str | DownloadFormat, release: int | None = None) -> Download:
        """The download of ``layer`` in ``fmt`` of the current release (with its edits, as /items
        serves it) or of release ``release``, written now unless the cache has it. LayerNotFound
        (also for a raster layer), NotFound (release never published), ReleaseGone (pruned),
        BadInput (format)."""
        fmt = fmt if isinstance(fmt, DownloadFormat) else download_format(fmt)
        for _ in range(_ATTEMPTS):
            found = self._get(layer, fmt, release)
            if found is not None:
                return found
        raise StoreError(f"the current release kept changing while {layer!r} was written as {fmt.name}")

    def find(self, layer: str, fmt: str | DownloadFormat, release: int | None = None) -> Download | None:
        """The download :meth:`get` would answer when the cache has it already (None: it must be
        written); the same errors as :meth:`get`."""
        fmt = fmt if isinstance(fmt, DownloadFormat) else download_format(fmt)
        number, name = self._key(layer, fmt, release)
        return _finished(self.root / _safe(layer) / name, layer, number, fmt)

    def _key(self, layer: str, fmt: DownloadFormat, release: int | None) -> tuple[int, str]:
        """(release number, file name) of the download asked for; checks layer and release."""
        if release is None:
            number = self.store.current_number()
            info = self.store.layer(layer)
        else:
            number = release
            info = next((i for i in self.store.release_layers(release) if i.name == layer), None)
            if info is None:
                from cim.errors import LayerNotFound

                raise LayerNotFound(f"no layer {layer!r} in release {release}")
        if info.spec.kind != "vector":
            raise BadInput(f"layer {layer!r} is a {info.spec.kind} layer: it has no features to download")
        name = f"r{number:04d}"
        if release is None and (info.spec.editable or info.spec.live):
            name += f"-g{self.store.edit_generation()}"
        return number, f"{name}.{fmt.extension}"

    def _get(self, layer: str, fmt: DownloadFormat, release: int | None) -> Download | None:
        number, name = self._key(layer, fmt, release)
        folder = self.root / _safe(layer)
        path = folder / name
        found = _finished(path, layer, number, fmt)
        if found is not None:
            return found
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"the download cache {self.root} cannot be written ({exc.strerror}): set {CACHE_VARIABLE}") from None
        with _locked(folder / f".{name}.lock"):
            found = _finished(path, layer, number, fmt)  # another writer finished it while we waited
            if found is not None:
                return found
            for stale in folder.glob(f".tmp-{name}-*"):  # left by a killed writer
                stale.unlink(missing_ok=True)
            temp = folder / f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}.{fmt.extension}"
            batches = self.store.layer_batches(layer, release)
            try:
                write_download(batches, fmt, temp)
                if release is None and (batches.release != number or self.store.current_number() != number):
                    return None  # the current release switched under the write: again, with the new one
                digest = _sha256(temp)
                _write_atomic(path.with_name(name + ".sha256"), digest)
                os.replace(temp, path)
            finally:
                batches.close()
                for left in folder.glob(f"{temp.name}*"):
                    left.unlink(missing_ok=True)
        self._clean(layer, name)
        return Download(path, digest, layer, number, fmt, path.stat().st_size)

    def _clean(self, layer: str, made: str) -> None:
        """Remove the files (and locks) of releases no longer kept, and the older generations of
        the file just made."""
        try:
            kept = {r.number for r in self.store.releases()}
        except Exception:  # the cache is tidied another time
            return
        made_key = _parse(made)
        for folder in (p for p in self.root.iterdir() if p.is_dir()):
            for entry in folder.iterdir():
                key = _parse(entry.name)
                if key is None:
                    continue
                gone = key[0] not in kept
                older = folder.name == _safe(layer) and made_key is not None and (
                    key[0] == made_key[0] and key[2] == made_key[2] and key[1] != made_key[1]
                )
                if gone or older:
                    entry.unlink(missing_ok=True)


def _parse(name: str) -> tuple[int, int | None, str] | None:
    """(release, generation, extension) of a cache entry's name (a file, its .sha256 or its lock)."""
    match = _NAME.match(name.removeprefix(".").removesuffix(".lock"))
    if match is None:
        return None
    generation = match["generation"]
    return int(match["release"]), None if generation is None else int(generation), match["ext"]


def _finished(path: Path, layer: str, number: int, fmt: DownloadFormat) -> Download | None:
    try:
        digest = path.with_name(path.name + ".sha256").read_text().strip()
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    return Download(path, digest, layer, number, fmt, size)


def _safe(layer: str) -> str:
    """A layer name as a directory name (layer names are identifiers; anything else is escaped)."""
    return re.sub(r"[^A-Za-z0-9_-]", lambda m: f"%{ord(m.group()):02x}", layer)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    temp.write_text(text + "\n")
    os.replace(temp, path)


def export_features(
    store: Store, layer: str, fmt: str, path: str | os.PathLike[str], release: int | None = None
) -> Download:
    """Write the download of ``layer`` (format ``fmt``, current release or ``release``) to ``path``:
    a copy of the cached file, made first if need be — the same bytes the server sends."""
    download = DownloadCache(store).get(layer, fmt, release)
    target = Path(path)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    shutil.copyfile(download.path, temp)
    os.replace(temp, target)
    return download


__all__ = ["CACHE_VARIABLE", "Download", "DownloadCache", "cache_root", "export_features"]
