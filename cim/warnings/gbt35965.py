"""The Chinese national profile of CAP, GB/T 35965.1-2018 (应急信息交互协议 第1部分: 预警信息):
identifiers that carry a GB/T 2260 division code, and the four warning colours (预警颜色).

Identifier: ``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N`` — ZZZZZZ the six-digit GB/T 2260 code of the
issuing division, DDD/UUU/XX the department, unit and serial, then the issue time and a sequence
number. :func:`division_code` reads ZZZZZZ.

Colours and severity (docs/warnings/cap.md): the profile keeps ``<severity>`` a CAP value and states
the level as a colour, I red 红, II orange 橙, III yellow 黄, IV blue 蓝. We map red -> Extreme,
orange -> Severe, yellow -> Moderate, blue -> Minor: yellow -> Moderate is attested in published
national CAP feeds, the others are the natural reading of the ordered scales. The colour is taken
from an eventCode or parameter named like colour/level/预警级别/预警颜色, else from the event or
headline text (e.g. "暴雨黄色预警"); with a colour found and severity Unknown, severity comes from
the colour; with none found, the colour comes from the severity (None for Unknown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

COLOURS = ("red", "orange", "yellow", "blue")
_SEVERITY = {
    "red": "Extreme",
    "orange": "Severe",
    "yellow": "Moderate",
    "blue": "Minor",
}
_COLOUR = {severity: colour for colour, severity in _SEVERITY.items()}
#: how a colour may be written, lower case: English, Chinese, level numerals
_SPELLINGS = {
    "red": ("red", "红", "红色", "i", "1", "Ⅰ", "i级", "1级", "Ⅰ级", "一级"),
    "orange": ("orange", "橙", "橙色", "ii", "2", "Ⅱ", "ii级", "2级", "Ⅱ级", "二级"),
    "yellow": ("yellow", "黄", "黄色", "iii", "3", "Ⅲ", "iii级", "3级", "Ⅲ级", "三级"),
    "blue": ("blue", "蓝", "蓝色", "iv", "4", "Ⅳ", "iv级", "4级", "Ⅳ级", "四级"),
}
_BY_SPELLING = {spelling.lower(): colour for colour, spellings in _SPELLINGS.items() for spelling in spellings}
#: valueNames of an eventCode/parameter that state the colour or level
_NAME = re.compile(r"colou?r|level|grade|预警级别|预警颜色|级别|颜色|等级", re.IGNORECASE)
#: a colour in free text: 红色预警, 黄色暴雨预警, "yellow warning"
_TEXT = re.compile(
    r"(红|橙|黄|蓝)色|\b(red|orange|yellow|blue)\b(?=[\s-]*(?:warning|alert|level))",
    re.IGNORECASE,
)
_TEXT_COLOUR = {"红": "red", "橙": "orange", "黄": "yellow", "蓝": "blue"}
_IDENTIFIER = re.compile(r"^([0-9]{6})([0-9]{3})([0-9]{3})([0-9]{2})_([0-9]{14})_([0-9]+)$")  # ASCII digits (\d takes any Unicode digit)


def severity_of(colour: str | None) -> str:
    """CAP severity of a colour (``Unknown`` for None or no colour)."""
    return _SEVERITY.get(colour or "", "Unknown")


def colour_of(severity: str | None) -> str | None:
    """The colour of a CAP severity (None for Unknown)."""
    return _COLOUR.get(severity or "")


def normalise_colour(value: str) -> str | None:
    """A colour as any spelling (red, 红色, Ⅱ级, 3 ...) -> "red" | "orange" | "yellow" | "blue"; None
    when it names none."""
    text = value.strip().lower()
    text = text.removesuffix("预警")
    return _BY_SPELLING.get(text)


def colour_from(named: Iterable[tuple[str, str]], texts: Iterable[str | None]) -> str | None:
    """The colour an info states: first an eventCode/parameter whose valueName is about colour or
    level and whose value is a colour, then the first colour in the texts (event, headline)."""
    for name, value in named:
        if _NAME.search(name):
            colour = normalise_colour(value)
            if colour:
                return colour
    for text in texts:
        if text:
            match = _TEXT.search(text)
            if match:
                return _TEXT_COLOUR[match.group(1)] if match.group(1) else match.group(2).lower()
    return None


def resolve(severity: str, named: Iterable[tuple[str, str]], texts: Iterable[str | None]) -> tuple[str, str | None]:
    """(severity, colour) of an info: a stated colour fills an Unknown severity; without one the
    colour follows the severity."""
    colour = colour_from(named, texts)
    if colour is None:
        return severity, colour_of(severity)
    if severity == "Unknown":
        severity = severity_of(colour)
    return severity, colour


def division_code(identifier: str) -> str | None:
    """The GB/T 2260 code (ZZZZZZ) of a GB/T 35965.1 identifier, None for any other identifier."""
    match = _IDENTIFIER.match(identifier.strip())
    return match.group(1) if match else None
