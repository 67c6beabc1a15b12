"""Terrain from a release's DEM (an ``elevation`` raster layer) for 3D clients (docs/3d-terrain.md).

- sample.py          DEM heights at points (the ground LOD1 blocks stand on, tiles/threed/) and on
                     grids (the terrain tiles), by one bilinear rule
- tiling.py          Cesium's geographic tiling (EPSG:4326, TMS rows), levels' geometric errors,
                     the deepest level from the DEM's pixel, the available tiles
- quantized_mesh.py  a grid of heights → a quantized-mesh-1.0 tile (pymartini, quantized_mesh_encoder)
- engine.py          ``TerrainEngine``: ``dem_layer()``, ``layer_json()``, ``tile()`` per release,
                     cached with the vector tiles (tiles/cache.py); a release without a DEM has none
"""
