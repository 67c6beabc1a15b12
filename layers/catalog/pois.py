"""Points of interest (兴趣点 POI) with category and address."""

from __future__ import annotations

from cim.layerspec import FieldSpec, LayerSpec

LAYER = LayerSpec(
    name="pois",
    title="Points of interest",
    description="Points of interest (兴趣点, POI): amenities, shops, tourism and public facilities with address.",
    geometry_type="Point",
    fields=(
        FieldSpec("name", "string", "Name of the place (名称)"),
        FieldSpec("category", "string", "Main category (大类), e.g. amenity, shop, tourism"),
        FieldSpec("subcategory", "string", "Sub-category (小类), e.g. restaurant, bakery, museum"),
        FieldSpec("address", "string", "Street address (地址)"),
    ),
    category="公共专题",
    minzoom=14,
    maxzoom=22,
    tile_attributes=("name", "category", "subcategory"),
    color="#c0392b",
    order=70,
    keywords=("POI", "兴趣点", "amenity", "地名地址"),
)
