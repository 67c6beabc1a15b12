"""Writing a layer of a release as a download file: GeoParquet 1.1, GeoPackage or FlatGeobuf.

The features come from :meth:`cim.store.Store.layer_batches` (Arrow record batches of ~50,000 rows:
fid, the fields, WKB in the storage CRS) and go to the file batch by batch, never the whole layer in
memory:

- GeoParquet: pyarrow's ``ParquetWriter``, one row group per batch (zstd), with the ``geo`` file
  metadata of GeoParquet 1.1 (encoding WKB, the geometry types present, the CRS as PROJJSON from
  pyproj, the bounding box; both measured while writing and added before the footer is written);
- GeoPackage and FlatGeobuf: ``pyogrio.write_arrow`` fed by a ``pyarrow.RecordBatchReader`` over
  the batches (GDAL reads the Arrow C stream as it writes), layer name = the layer, CRS = the storage
  CRS, geometry type = the layer's; both with their spatial index (R-tree, packed Hilbert R-tree).

The file cache (ETag, one build per file for concurrent requests) is cim/sharing/download_cache.py.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from pyproj import CRS

from cim.sharing.formats import DownloadFormat
from cim.store.arrow_batches import GEOMETRY, LayerBatches

#: GeoParquet specification version written
GEOPARQUET_VERSION = "1.1.0"
#: shapely type id -> GeoParquet geometry type name
_TYPE_NAMES = {
    0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon",
    7: "GeometryCollection",
}


def write_download(batches: LayerBatches, fmt: DownloadFormat, path: str | os.PathLike[str]) -> int:
    """Write ``batches`` as ``fmt`` to ``path`` (which must not exist); the number of features."""
    if fmt.driver is None:
        return write_geoparquet(batches, path)
    return write_ogr(batches, fmt, path)


class _GeometryStats:
    """The geometry types and bounding box of the geometries seen so far (GeoParquet ``geo``)."""

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.bounds = [math.inf, math.inf, -math.inf, -math.inf]

    def add(self, wkb: pa.Array) -> None:
        geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
        ids = shapely.get_type_id(geoms)
        has_z = shapely.has_z(geoms)
        for type_id in np.unique(ids[ids >= 0]):
            name = _TYPE_NAMES[int(type_id)]
            of_type = ids == type_id
            self.types.add(name + " Z" if bool(has_z[of_type].any()) else name)
        box = shapely.total_bounds(geoms)
        if not np.isnan(box).any():
            self.bounds = [min(self.bounds[0], box[0]), min(self.bounds[1], box[1]),
                           max(self.bounds[2], box[2]), max(self.bounds[3], box[3])]

    def bbox(self) -> list[float] | None:
        return None if math.isinf(self.bounds[0]) else [float(v) for v in self.bounds]


def geo_metadata(srid: int, types: set[str], bbox: list[float] | None) -> dict:
    """The GeoParquet 1.1 ``geo`` file metadata of a file whose one geometry column is ``geometry``
    (WKB, planar edges). The CRS is the EPSG CRS as PROJJSON; coordinates are x/y (easting/longitude
    first) whatever the CRS's axis order, as the specification says of WKB."""
    column: dict = {
        "encoding": "WKB",
        "geometry_types": sorted(types),
        "crs": CRS.from_epsg(srid).to_json_dict(),
        "edges": "planar",
    }
    if bbox is not None:
        column["bbox"] = bbox
    return {"version": GEOPARQUET_VERSION, "primary_column": GEOMETRY, "columns": {GEOMETRY: column}}


def write_geoparquet(batches: LayerBatches, path: str | os.PathLike[str]) -> int:
    """GeoParquet 1.1 through pyarrow: a row group per batch, zstd, the ``geo`` metadata."""
    stats = _GeometryStats()
    count = 0
    with pq.ParquetWriter(str(path), batches.schema, compression="zstd") as writer:
        for batch in batches.batches:
            stats.add(batch.column(GEOMETRY))
            writer.write_batch(batch)
            count += batch.num_rows
        meta = geo_metadata(batches.info.srid, stats.types, stats.bbox())
        writer.add_key_value_metadata({"geo": json.dumps(meta)})
    return count


def write_ogr(batches: LayerBatches, fmt: DownloadFormat, path: str | os.PathLike[str]) -> int:
    """GeoPackage or FlatGeobuf through GDAL (pyogrio) from the Arrow stream of the batches."""
    import pyogrio

    counted = _Counting(batches)
    reader = pa.RecordBatchReader.from_batches(batches.schema, counted)
    options = {"SPATIAL_INDEX": "YES"}
    pyogrio.write_arrow(
        reader, str(path), layer=batches.info.name, driver=fmt.driver, geometry_name=GEOMETRY,
        geometry_type=batches.info.spec.geometry_type or "Unknown", crs=f"EPSG:{batches.info.srid}",
        layer_options=options,
    )
    return counted.count


class _Counting:
    """The batches, counting their rows as GDAL takes them."""

    def __init__(self, batches: LayerBatches) -> None:
        self.batches = batches.batches
        self.count = 0

    def __iter__(self):
        for batch in self.batches:
            self.count += batch.num_rows
            yield batch


__all__ = ["GEOPARQUET_VERSION", "geo_metadata", "write_download", "write_geoparquet", "write_ogr"]
