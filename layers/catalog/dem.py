"""Digital elevation model (数字高程模型, DEM)."""

from __future__ import annotations

from cim.layerspec import LayerSpec

LAYER = LayerSpec(
    name="dem",
    title="Digital elevation model",
    description="Digital elevation model (数字高程模型, DEM): bare-earth terrain heights in metres, the CIM1 terrain base.",
    kind="raster",
    raster="elevation",
    category="时空基础",
    minzoom=0,
    maxzoom=16,
    color="#8c6d46",
    order=5,
    keywords=("DEM", "数字高程模型", "elevation", "terrain"),
)
