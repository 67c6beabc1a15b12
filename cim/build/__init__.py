"""The build pipeline: from a YAML build config and source files to a published release.

``cim build CONFIG`` runs :func:`build`: each source of each layer is read (Shapefile, GeoPackage,
GeoJSON, FlatGeobuf, GeoParquet, CSV, OSM PBF), its CRS resolved (declared or embedded; GCJ-02 and
BD-09 rectified), reprojected to the storage CRS, mapped onto the layer's fields, validated (repair or
reject, required attributes, types), deduplicated, and cross-checked against the layer's primary
source; the QA report records every change. Raster layers (DEM, imagery) take one GeoTIFF each,
which becomes a Cloud-Optimised GeoTIFF in EPSG:3857 installed beside the release
(:mod:`cim.build.raster`). See docs/build-config.md.
"""

from cim.build.config import BuildConfig, load_config
from cim.build.pipeline import BuildResult, Prepared, build, prepare
from cim.build.qa import QAReport, Record

__all__ = ["BuildConfig", "BuildResult", "Prepared", "QAReport", "Record", "build", "load_config", "prepare"]
