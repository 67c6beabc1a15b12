"""Loading a layer into PostGIS with one binary COPY, encoded by pgpq from Arrow columns.

The text COPY this replaces sent every row through Python (``write_row``, 1,000,000 calls) and
every geometry as hex EWKB, which PostgreSQL decoded again. Here the columns become Arrow arrays
and pgpq (Rust) writes PostgreSQL's binary COPY format for a whole batch at once. A geometry
travels as its WKB, which PostGIS's binary receive function reads as it is (the column's SRID is
applied to WKB without one); a timestamp as microseconds since 2000 UTC, which is what
``timestamptz`` receives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder

from cim.store.sql import quote_ident

#: Arrow types of the layer field types, as PostgreSQL's binary format wants them
ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
}
BATCH_ROWS = 65_536


def wkb_array(wkb: np.ndarray) -> pa.Array:
    """The WKB geometries (bytes, None for none) as an Arrow binary array, built from one joined
    buffer and its offsets: ``pa.array`` copied them one object at a time (1,000,000 footprints:
    1.5 s against 0.3 s, GIL held — while the build's checks run beside the publish)."""
    lengths = np.fromiter((len(b) if b is not None else -1 for b in wkb), dtype=np.int64, count=len(wkb))
    present = lengths >= 0
    lengths[~present] = 0
    offsets = np.zeros(len(wkb) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = b"".join(b for b in wkb if b is not None)
    kind, width = (pa.binary(), np.int32) if offsets[-1] < 2**31 else (pa.large_binary(), np.int64)
    validity = None if present.all() else pa.array(present).buffers()[1]
    nulls = int(len(wkb) - present.sum())
    return pa.Array.from_buffers(kind, len(wkb), [validity, pa.py_buffer(offsets.astype(width)), pa.py_buffer(data)], nulls)


def arrow_table(attrs: pd.DataFrame, wkb: np.ndarray, field_types: dict[str, str], fid: str, geom: str) -> pa.Table:
    """``attrs`` (``fid``, then the fields of ``field_types``) and the ``wkb`` geometries as Arrow columns;
    missing values (None, NaN, NaT, NA) are nulls."""
    columns = {
        fid: pa.array(attrs[fid].to_numpy(dtype="int64"), type=pa.int64()),
        geom: wkb_array(wkb),
    }
    for name, ftype in field_types.items():
        columns[name] = pa.Array.from_pandas(attrs[name], type=ARROW_TYPES[ftype])
    return pa.table(columns)


def copy_rows(
    conn: psycopg.Connection,
    table: str,
    attrs: pd.DataFrame,
    wkb: np.ndarray,
    field_types: dict[str, str],
    fid: str,
    geom: str,
) -> None:
    """COPY ``attrs`` with the ``wkb`` geometries into ``table`` (qualified and quoted) on ``conn``."""
    data = arrow_table(attrs, wkb, field_types, fid, geom)
    encoder = ArrowToPostgresBinaryEncoder(data.schema)
    columns = ", ".join(quote_ident(name) for name in data.column_names)
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(encoder.write_header())
        for batch in data.to_batches(max_chunksize=BATCH_ROWS):
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())
