"""The warnings in /styles/basemap (tiles/warning_style.py): last, over the base map, coloured by
GB/T 35965.1 colour (预警颜色) else CAP severity — the colour expression is evaluated here by a small
interpreter of the three MapLibre operators it uses (``match``, ``get``, ``coalesce``)."""

from __future__ import annotations

from typing import Any

import pytest

from cim.store import LayerInfo
from layers.catalog import CATALOG
from tiles.style import basemap_style
from tiles.tilesets import COMPOSITE, Tileset
from tiles.warning_style import COLOURS, NO_COLOUR, colour_expression, is_warning_layer

BASE = "http://example.test"


def evaluate(expr: Any, properties: dict[str, Any]) -> Any:
    """``expr`` for a feature with ``properties`` (MapLibre semantics of match / get / coalesce)."""
    if not isinstance(expr, list):
        return expr
    op, *args = expr
    if op == "get":
        return properties.get(args[0])
    if op == "coalesce":
        for arg in args:
            value = evaluate(arg, properties)
            if value is not None:
                return value
        return None
    if op == "match":
        value = evaluate(args[0], properties)
        pairs, default = args[1:-1], args[-1]
        for labels, output in zip(pairs[::2], pairs[1::2]):
            if value in (labels if isinstance(labels, list) else [labels]):
                return evaluate(output, properties)
        return evaluate(default, properties)
    raise AssertionError(f"operator {op!r} not interpreted here")


def tileset(*names: str) -> Tileset:
    infos = tuple(LayerInfo(spec=CATALOG[n], srid=4326, count=1, bbox=(24.9, 60.1, 25.0, 60.2)) for n in names)
    return Tileset(id=COMPOSITE, title="CIM base map", description="", layers=infos, composite=True)


@pytest.fixture(scope="module")
def style() -> dict[str, Any]:
    # warnings first in the tileset on purpose: the style still draws them last
    return basemap_style(tileset("warnings", "landuse", "water", "roads", "buildings", "pois"), BASE, 3)


def test_only_the_warnings_layer_is_styled_as_warnings() -> None:
    assert [spec.name for spec in CATALOG if is_warning_layer(spec)] == ["warnings"]


def test_warnings_are_the_last_layers_of_the_style(style: dict[str, Any]) -> None:
    layers = style["layers"]
    assert [layer["id"] for layer in layers[-3:]] == ["warnings", "warnings-outline", "warnings-label"]
    assert [layer["type"] for layer in layers[-3:]] == ["fill", "line", "symbol"]
    assert all(layer["source"] == COMPOSITE and layer["source-layer"] == "warnings" for layer in layers[-3:])
    assert [layer["id"] for layer in layers[:-3]] == ["background", "landuse", "water", "roads", "buildings", "pois"]
    fill, outline, label = layers[-3:]
    assert 0 < fill["paint"]["fill-opacity"] < 1  # translucent: the base map shows through
    assert "line-opacity" not in outline["paint"] and outline["paint"]["line-width"] >= 2  # solid outline
    assert fill["paint"]["fill-color"] == outline["paint"]["line-color"] == colour_expression()
    assert fill["minzoom"] == 0 and fill["maxzoom"] == 23
    assert label["minzoom"] == 12
    assert evaluate(label["layout"]["text-field"], {"headline": "暴雨蓝色预警", "event": "暴雨"}) == "暴雨蓝色预警"
    assert evaluate(label["layout"]["text-field"], {"event": "燃气泄漏"}) == "燃气泄漏"
    assert "glyphs" not in style  # nothing fetched from elsewhere: MapLibre draws the glyphs locally


def test_the_legend_names_the_four_colours(style: dict[str, Any]) -> None:
    legend = style["layers"][-3]["metadata"]["cim:legend"]
    assert [(e["colour"], e["color"], e["zh"], e["severity"]) for e in legend] == [
        ("red", "#e53935", "红色预警", "Extreme"),
        ("orange", "#fb8c00", "橙色预警", "Severe"),
        ("yellow", "#fdd835", "黄色预警", "Moderate"),
        ("blue", "#1e88e5", "蓝色预警", "Minor"),
    ]
    assert all(e["en"] == f"{e['colour'].capitalize()} warning" for e in legend)


@pytest.mark.parametrize(
    ("properties", "colour"),
    [
        ({"colour": "red", "severity": "Extreme"}, "#e53935"),
        ({"colour": "orange", "severity": "Severe"}, "#fb8c00"),
        ({"colour": "yellow", "severity": "Moderate"}, "#fdd835"),
        ({"colour": "blue", "severity": "Minor"}, "#1e88e5"),
        ({"colour": "blue", "severity": "Extreme"}, "#1e88e5"),  # the colour the sender chose wins
        ({"colour": "none", "severity": "Severe"}, "#fb8c00"),  # no colour: by severity
        ({"severity": "Extreme"}, "#e53935"),
        ({"colour": None, "severity": "Minor"}, "#1e88e5"),
        ({"colour": "none", "severity": "Unknown"}, NO_COLOUR),
        ({}, NO_COLOUR),
    ],
)
def test_colour_expression(style: dict[str, Any], properties: dict[str, Any], colour: str) -> None:
    assert evaluate(style["layers"][-3]["paint"]["fill-color"], properties) == colour


def test_colours_are_the_issue_s() -> None:
    assert COLOURS == {"red": "#e53935", "orange": "#fb8c00", "yellow": "#fdd835", "blue": "#1e88e5"}
    assert NO_COLOUR == "#9e9e9e"


def test_a_style_without_warnings_is_unchanged() -> None:
    style = basemap_style(tileset("landuse", "buildings"), BASE, 1)
    assert [layer["id"] for layer in style["layers"]] == ["background", "landuse", "buildings"]
