"""Vectorised parsing of OpenStreetMap tag values as pyrosm returns them (strings, NaN when absent)."""

from __future__ import annotations

import pandas as pd

#: a number with an optional metre unit: "12", "12.5", "12,5", "12 m", "12.13 m", "12 metres"
_METRES = r"^\s*(\d+(?:[.,]\d+)?)\s*(?:m|meters?|metres?)?\s*$"
_INTEGER = r"^\s*(\d+)\s*$"
_NUMBER = r"^\s*(\d+(?:[.,]\d+)?)\s*$"
#: a year, alone or as the start of an ISO date ("1998", "1998-05", "1998-05-17")
_YEAR = r"^\s*(\d{4})(?:-\d{2}(?:-\d{2})?)?\s*$"
_TRUE = ("yes", "true", "1", "-1", "reversible")
_FALSE = ("no", "false", "0")


def tag(frame: pd.DataFrame, key: str) -> pd.Series:
    """The ``key`` column of ``frame`` as object strings with None, all None when the column is absent."""
    if key not in frame.columns:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    values = frame[key].astype("string")
    return values.astype(object).where(values.notna(), None)


def _extract(values: pd.Series, pattern: str) -> pd.Series:
    text = values.astype("string").str.extract(pattern, expand=False)
    return pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce").astype("float64")


def parse_metres(values: pd.Series) -> pd.Series:
    """Lengths in metres (float64); values in other units or not numbers become NaN."""
    return _extract(values, _METRES)


def parse_number(values: pd.Series) -> pd.Series:
    """Plain non-negative decimal numbers (float64), NaN for anything else ("3", "3.5" -> 3.0, 3.5)."""
    return _extract(values, _NUMBER)


def parse_int(values: pd.Series) -> pd.Series:
    """Plain non-negative integers (Int64); "2;3", "2.5" or "two" become missing."""
    return _extract(values, _INTEGER).astype("Int64")


def parse_year(values: pd.Series) -> pd.Series:
    """The year of a ``start_date``-style value (Int64); vague dates ("1890s", "before 1939") are missing."""
    return _extract(values, _YEAR).astype("Int64")


def parse_bool(values: pd.Series, true: tuple[str, ...] = _TRUE, false: tuple[str, ...] = _FALSE) -> pd.Series:
    """A yes/no tag as nullable boolean; unrecognised values are missing.

    For ``oneway`` the default treats "-1" (one way against the drawing direction) and "reversible" as true.
    """
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(true).fillna(False).to_numpy(dtype=bool)] = True
    out[text.isin(false).fillna(False).to_numpy(dtype=bool)] = False
    return out


def coalesce(*series: pd.Series) -> pd.Series:
    """Element-wise first non-missing value of ``series`` (object, None when all are missing)."""
    out = series[0].astype(object)
    for more in series[1:]:
        out = out.where(out.notna(), more.astype(object))
    return out.where(out.notna(), None)


def first_key(frame: pd.DataFrame, keys: tuple[str, ...]) -> tuple[pd.Series, pd.Series]:
    """For each row, the first of ``keys`` that is tagged, and that tag's value (both None when none is)."""
    key = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    value = key.copy()
    for name in keys:
        tagged = tag(frame, name)
        fill = key.isna() & tagged.notna()
        key = key.where(~fill, name)
        value = value.where(~fill, tagged)
    return key, value


def address(frame: pd.DataFrame) -> pd.Series:
    """``addr:street addr:housenumber`` ("Annankatu 13"); the street alone without a number; None without a street."""
    street = tag(frame, "addr:street")
    number = tag(frame, "addr:housenumber")
    joined = street.where(number.isna(), street.astype("string") + " " + number.astype("string"))
    return joined.astype(object).where(street.notna(), None)


def element_ids(frame: pd.DataFrame) -> pd.Series:
    """OSM element references "node/1", "way/2", "relation/3" from pyrosm's ``osm_type`` and ``id``."""
    return tag(frame, "osm_type").astype("string") + "/" + frame["id"].astype("int64").astype("string")
