"""Tile engine: TileMatrixSets, MVT and raster tiles, cache, PMTiles/MBTiles export, styles."""
