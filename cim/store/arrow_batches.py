"""A layer as a stream of Arrow record batches (bulk downloads, cim/sharing/downloads.py).

Every batch has the same schema, whichever back-end read it: ``fid`` (int64), the layer's fields
(schema fields then ``source``/``source_id``) typed from their ``FieldSpec``, and ``geometry``, the
geometry as WKB in the layer's storage CRS. The rows are those of
:func:`cim.store.sql.features.select_frame` (fid order), read :data:`BATCH_ROWS` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cim.store.base import FID, LayerInfo

#: rows per batch (one Parquet row group each)
BATCH_ROWS = 50_000
#: the name of the WKB column
GEOMETRY = "geometry"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
}


def arrow_schema(info: LayerInfo) -> pa.Schema:
    """The schema of a layer's batches."""
    fields = [pa.field(FID, pa.int64(), nullable=False)]
    fields += [pa.field(f.name, _ARROW_TYPES[f.type]) for f in info.fields]
    fields.append(pa.field(GEOMETRY, pa.binary()))
    return pa.schema(fields)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` (columns in the schema's order, as a back-end typed them) cast to ``schema``."""
    columns = []
    for column, field in zip(batch.columns, schema):
        if isinstance(column.type, pa.ExtensionType):  # e.g. DuckDB's WKB blob
            column = column.storage
        if column.type != field.type:
            column = column.cast(field.type)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def batch_from_rows(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """A batch of ``schema`` from database rows (column order of the schema): one Arrow array per
    column, converted by pyarrow (no Python loop over the rows' values)."""
    columns = list(zip(*rows)) if rows else [() for _ in schema]
    return pa.RecordBatch.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, schema)], schema=schema)


@dataclass
class LayerBatches:
    """A layer of a release as record batches, read while they are iterated (once)."""

    info: LayerInfo
    #: the release number read (the current one's number when the current release was asked)
    release: int
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]

    def reader(self) -> pa.RecordBatchReader:
        """The batches as a ``pyarrow.RecordBatchReader`` (the Arrow C stream pyogrio writes from)."""
        return pa.RecordBatchReader.from_batches(self.schema, self.batches)

    def close(self) -> None:
        close = getattr(self.batches, "close", None)
        if close is not None:
            close()


__all__ = ["BATCH_ROWS", "GEOMETRY", "LayerBatches", "arrow_schema", "batch_from_rows", "conform"]
