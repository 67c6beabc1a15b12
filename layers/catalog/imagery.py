"""Orthophoto imagery (数字正射影像, DOM)."""

from __future__ import annotations

from cim.layerspec import LayerSpec

LAYER = LayerSpec(
    name="imagery",
    title="Orthophoto imagery",
    description="Digital orthophoto imagery (数字正射影像图, DOM) from aerial or satellite sensors.",
    kind="raster",
    raster="image",
    category="时空基础",
    minzoom=0,
    maxzoom=20,
    color="#4d4d4d",
    order=0,
    keywords=("imagery", "DOM", "正射影像", "orthophoto", "remote sensing"),
)
