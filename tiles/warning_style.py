"""Style layers of event warnings (CAP alerts): coloured by GB/T 35965.1 colour, else CAP severity.

A layer is drawn as warnings when its tiles carry ``severity`` (CAP severity) — the catalog's
``warnings`` layer (layers/catalog/warnings.py), with ``colour`` (预警颜色) beside it; ``tiles``
does not import ``layers``, so it is recognised by its attributes, not its name. Three style layers,
drawn last (over the whole base map):

- ``{name}``: a translucent fill (:data:`FILL_OPACITY`),
- ``{name}-outline``: a solid outline in the same colour,
- ``{name}-label``: the headline (else the event) from zoom :data:`LABEL_MIN_ZOOM` on.

The colour: ``colour`` red/orange/yellow/blue (红/橙/黄/蓝) gives :data:`COLOURS`; otherwise
(``none`` or empty) ``severity`` Extreme/Severe/Moderate/Minor gives the same four; anything else
is grey (:data:`NO_COLOUR`). The viewer (ogcapi/static/viewer.js) copies these layers onto its live
GeoJSON source, so the paint lives here only.

The style has no ``glyphs`` URL (nothing is fetched from elsewhere): MapLibre then draws the label
glyphs locally with the browser's fonts.
"""

from __future__ import annotations

from typing import Any

from cim.layerspec import LayerSpec

#: GB/T 35965.1 warning colours (预警颜色) and their map colours
COLOURS: dict[str, str] = {"red": "#e53935", "orange": "#fb8c00", "yellow": "#fdd835", "blue": "#1e88e5"}
#: CAP severity -> warning colour (docs/warnings.md: red = Extreme, orange = Severe, ...)
SEVERITY_COLOURS: dict[str, str] = {"Extreme": "red", "Severe": "orange", "Moderate": "yellow", "Minor": "blue"}
#: neither a colour nor a known severity
NO_COLOUR = "#9e9e9e"
#: names for legends: colour -> (Chinese, English, CAP severity)
COLOUR_NAMES: dict[str, tuple[str, str, str]] = {
    "red": ("红色预警", "Red warning", "Extreme"),
    "orange": ("橙色预警", "Orange warning", "Severe"),
    "yellow": ("黄色预警", "Yellow warning", "Moderate"),
    "blue": ("蓝色预警", "Blue warning", "Minor"),
}
FILL_OPACITY = 0.3
OUTLINE_WIDTH = 2.5
LABEL_MIN_ZOOM = 12
#: the suffixes of the style layers after the layer's own id (the fill)
PARTS = ("", "-outline", "-label")


def is_warning_layer(spec: LayerSpec) -> bool:
    """Whether ``spec`` is drawn as warnings: polygons whose tiles carry CAP ``severity``."""
    return (spec.geometry_type or "").endswith("Polygon") and "severity" in spec.tile_attributes


def colour_expression(has_colour: bool = True) -> list[Any]:
    """A MapLibre expression: the map colour of a warning feature (``colour``, else ``severity``)."""
    by_severity: list[Any] = ["match", ["get", "severity"]]
    for severity, name in SEVERITY_COLOURS.items():
        by_severity += [severity, COLOURS[name]]
    by_severity.append(NO_COLOUR)
    if not has_colour:
        return by_severity
    by_colour: list[Any] = ["match", ["coalesce", ["get", "colour"], ""]]
    for name, colour in COLOURS.items():
        by_colour += [name, colour]
    return by_colour + [by_severity]


def warning_layers(spec: LayerSpec, source: str, source_layer: str | None, maxzoom: int) -> list[dict[str, Any]]:
    """The fill, outline and label style layers of warnings layer ``spec`` over ``source``
    (``source_layer``: the vector tiles' layer; None for a GeoJSON source)."""
    colour = colour_expression("colour" in spec.tile_attributes)
    common: dict[str, Any] = {"source": source, "minzoom": spec.minzoom, "maxzoom": maxzoom}
    if source_layer is not None:
        common["source-layer"] = source_layer
    meta: dict[str, Any] = {"cim:title": spec.title, "cim:order": spec.order, "cim:warnings": True}
    text: list[Any] = ["coalesce"]
    text += [["get", name] for name in ("headline", "event") if name in spec.tile_attributes]
    text.append("")
    return [
        {"id": spec.name, "type": "fill", **common, "metadata": {**meta, "cim:legend": legend()},
         "paint": {"fill-color": colour, "fill-opacity": FILL_OPACITY}},
        {"id": f"{spec.name}-outline", "type": "line", **common, "metadata": {**meta, "cim:part": "outline"},
         "layout": {"line-join": "round"},
         "paint": {"line-color": colour, "line-width": OUTLINE_WIDTH}},
        {"id": f"{spec.name}-label", "type": "symbol", **common, "metadata": {**meta, "cim:part": "label"},
         "minzoom": max(spec.minzoom, LABEL_MIN_ZOOM),
         "layout": {"text-field": text, "text-size": 13, "text-max-width": 12, "symbol-placement": "point"},
         "paint": {"text-color": "#202020", "text-halo-color": "#ffffff", "text-halo-width": 1.5}},
    ]


def legend() -> list[dict[str, str]]:
    """The warning colours for a legend: colour, map colour, Chinese and English names, severity."""
    return [{"colour": name, "color": COLOURS[name], "zh": zh, "en": en, "severity": severity}
            for name, (zh, en, severity) in COLOUR_NAMES.items()]
