"""People in buildings for impact analysis (cim/impact.py): persons per m² of floor area by building use.

``people = floor area (m²) × persons per m²`` of the building's use class. The defaults below are
night-time/residential-style occupancy averages, not peak (evacuation-design) densities:

- residential 0.027: 1 person per 36.5 m², the urban per-capita housing floor area of China's 7th
  population census (2020, 城镇家庭户人均住房建筑面积 36.52 m²).
- office 0.08 (1 per 12.5 m² gross): assumption (typical office planning 10–15 m² gross per workstation).
- retail 0.10: assumption (average occupancy; GB 50016 design densities of 0.43–0.85 persons/m² are peak
  values for evacuation).
- education 0.10: assumption (school floor area ~10 m² per pupil incl. corridors and facilities).
- health 0.05, hotel 0.03, public 0.05: assumption.
- industrial 0.01, warehouse 0.005: assumption.
- other 0.01 (also garages, sheds, unknown ``yes``): assumption.

A building's ``use`` is lower-cased and mapped to a class through :data:`USE_CLASSES` (OpenStreetMap
``building=*`` values among them); anything else is ``other``. Override the rates with the
``persons_per_m2`` argument (a dict class → rate; missing classes keep their defaults) or with
``$CIM_IMPACT_PERSONS_PER_M2``: a JSON object, or the path of a JSON or YAML file holding one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cim.errors import BadInput, ConfigError

ENV = "CIM_IMPACT_PERSONS_PER_M2"

#: persons per m² of floor area by use class (sources in the module's docstring)
DEFAULT_PERSONS_PER_M2: dict[str, float] = {
    "residential": 0.027,
    "office": 0.08,
    "retail": 0.10,
    "education": 0.10,
    "health": 0.05,
    "hotel": 0.03,
    "public": 0.05,
    "industrial": 0.01,
    "warehouse": 0.005,
    "other": 0.01,
}

#: building ``use`` values (lower case) → use class; a class name maps to itself
USE_CLASSES: dict[str, str] = {
    **{name: "residential" for name in (
        "residential", "house", "apartments", "detached", "semidetached_house", "terrace", "dormitory",
        "bungalow", "farm", "houseboat", "cabin", "住宅")},
    **{name: "office" for name in ("office", "commercial", "government", "办公")},
    **{name: "retail" for name in ("retail", "shop", "supermarket", "kiosk", "mall", "商业")},
    **{name: "education" for name in ("education", "school", "university", "college", "kindergarten", "教育")},
    **{name: "health" for name in ("health", "hospital", "clinic", "医疗")},
    **{name: "hotel" for name in ("hotel",)},
    **{name: "public" for name in ("public", "civic", "church", "temple", "mosque", "culture", "sports_hall", "train_station", "transportation")},
    **{name: "industrial" for name in ("industrial", "factory", "manufacture", "工业")},
    **{name: "warehouse" for name in ("warehouse", "storage_tank", "仓储")},
}


def use_class(use: np.ndarray) -> np.ndarray:
    """The use class of each building ``use`` value (``other`` for unknown or missing)."""
    keys = np.array(["" if not isinstance(u, str) else u for u in use], dtype=object)
    unique, inverse = np.unique(keys.astype(str), return_inverse=True)
    classes = np.array([USE_CLASSES.get(u.strip().lower(), "other") for u in unique], dtype=object)
    return classes[inverse] if len(keys) else np.array([], dtype=object)


def persons_per_m2(override: Mapping[str, float] | None = None) -> dict[str, float]:
    """The rates in force: the defaults, then ``$CIM_IMPACT_PERSONS_PER_M2``, then ``override``."""
    rates = dict(DEFAULT_PERSONS_PER_M2)
    text = os.environ.get(ENV, "").strip()
    if text:
        rates.update(_checked(_load_env(text), f"${ENV}", ConfigError))
    if override:
        rates.update(_checked(override, "persons_per_m2", BadInput))
    return rates


def people(floor_area_m2: np.ndarray, classes: np.ndarray, rates: Mapping[str, float]) -> np.ndarray:
    """Floor area × the rate of each building's class (classes without a rate use ``other``)."""
    other = rates.get("other", 0.0)
    factor = np.array([rates.get(name, other) for name in classes], dtype=float)
    return np.asarray(floor_area_m2, dtype=float) * factor


def _load_env(text: str) -> Any:
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"${ENV} is not a JSON object: {exc}") from None
    path = Path(text)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"${ENV}: cannot read {text!r}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(content)
        return json.loads(content)
    except Exception as exc:  # noqa: BLE001 - any parse error is the same configuration error
        raise ConfigError(f"${ENV}: {text!r} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None


def _checked(value: Any, where: str, error: type[BadInput]) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise error(f"{where} must map use classes to persons per m² (e.g. {{\"residential\": 0.03}})")
    rates: dict[str, float] = {}
    for name, rate in value.items():
        ok = isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate) and 0 <= rate <= 10
        if not isinstance(name, str) or not ok:
            raise error(f"{where}: {name!r}: {rate!r} is not a number of persons per m² between 0 and 10")
        rates[name.strip().lower()] = float(rate)
    return rates
