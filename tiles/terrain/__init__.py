"""Terrain from a release's DEM (an ``elevation`` raster layer) for 3D clients (docs/3d.md).

- sample.py   DEM heights at points (the ground LOD1 blocks stand on, tiles/threed/)
- (the terrain tiles CesiumJS reads: quantized-mesh-1.0 with a layer.json, skipped cleanly for a
  release without a DEM)
"""
