"""Integrity checks for formats whose readers do not notice a cut-off file.

GDAL reads a truncated Shapefile without complaint, returning missing geometries for the records it
could not reach; the Shapefile and dBase headers record the file sizes, so a short file is detected
here before reading. Other formats fail in their readers (GeoJSON, FlatGeobuf, GeoPackage, Parquet, PBF).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from cim.errors import BuildError

_SHP_FILE_CODE = 9994


def check_integrity(path: Path, fmt: str, fail: Callable[[str], BuildError]) -> None:
    """Raise ``fail(reason)`` when ``path`` (of format ``fmt``) is visibly truncated or corrupt."""
    if fmt == "shapefile":
        _check_shapefile(path, fail)


def _sidecar(path: Path, suffix: str) -> Path | None:
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.is_file():
            return candidate
    return None


def _check_shapefile(path: Path, fail: Callable[[str], BuildError]) -> None:
    shx = _sidecar(path, ".shx")
    if shx is None:
        raise fail("the Shapefile's index (.shx) is missing")
    for part in (path, shx):
        data = part.read_bytes()[:100]
        if len(data) < 100 or struct.unpack(">i", data[0:4])[0] != _SHP_FILE_CODE:
            raise fail(f"{part.name} is not a Shapefile (bad header)")
        expected = struct.unpack(">i", data[24:28])[0] * 2  # length in 16-bit words
        actual = part.stat().st_size
        if actual < expected:
            raise fail(f"{part.name} is truncated: its header says {expected} bytes, the file has {actual}")
    dbf = _sidecar(path, ".dbf")
    if dbf is None:
        raise fail("the Shapefile's attribute table (.dbf) is missing")
    with dbf.open("rb") as fh:
        header = fh.read(12)
    if len(header) < 12:
        raise fail(f"{dbf.name} is truncated: no dBase header")
    records, header_size, record_size = struct.unpack("<IHH", header[4:12])
    expected = header_size + records * record_size
    if dbf.stat().st_size < expected:
        raise fail(f"{dbf.name} is truncated: its header says {expected} bytes, the file has {dbf.stat().st_size}")
    _check_fields(dbf, header_size, record_size, fail)
    shapes = (shx.stat().st_size - 100) // 8  # one 8-byte index record per shape
    if records != shapes:
        raise fail(
            f"{dbf.name} has {records} records but {shx.name} indexes {shapes} shapes: the attribute table does not"
            " belong to the shapes, or one of the files is damaged"
        )


def _check_fields(dbf: Path, header_size: int, record_size: int, fail: Callable[[str], BuildError]) -> None:
    """The dBase field descriptors (32 bytes each after the 32-byte header, ended by 0x0D) fit in the
    header and add up to the record size (plus the deletion flag): GDAL reads a .dbf whose header is
    garbage as a table without columns, silently dropping every attribute."""
    with dbf.open("rb") as fh:
        header = fh.read(max(header_size, 0))
    width, at = 1, 32
    while at < len(header) and header[at] != 0x0D:
        if at + 32 > len(header):
            break
        width += header[at + 16]  # the field's length in bytes
        at += 32
    if header_size < 33 or at >= len(header) or header[at] != 0x0D or width != record_size:
        raise fail(
            f"{dbf.name} is corrupt: its header does not describe its records (header {header_size} bytes,"
            f" fields {width} of {record_size} bytes a record)"
        )
