"""The height rule of LOD1 blocks: how tall a footprint is extruded (docs/3d.md).

A footprint of a ``lod1`` layer (cim/layerspec.py) is extruded to, in this order:

1. ``height_m``, when it is a finite number above 0 (metres above ground);
2. else whole ``floors`` × :attr:`HeightRule.storey_m` (3 m), when ``floors`` has at least one whole floor;
3. else :attr:`HeightRule.default_m` (10 m).

Every consumer applies the same rule through :meth:`HeightRule.resolve`: the 3D Tiles content
(tiles/threed/), the QA report of a build (rule ``height.rule``: how many footprints took their
height from each source) and the 2D viewer's extrusion. :data:`HEIGHT_SOURCES` names the sources;
the 3D Tiles carry each building's source beside its height (property ``height_source``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

#: where a height came from, by the code :meth:`HeightRule.resolve` gives (0, 1, 2)
HEIGHT_SOURCES: tuple[str, ...] = ("height_m", "floors", "default")
#: metres per above-ground floor (GB 50352 puts a dwelling's storey at 2.8–3.0 m; offices higher)
STOREY_HEIGHT_M = 3.0
#: the height of a footprint with neither ``height_m`` nor ``floors``
DEFAULT_HEIGHT_M = 10.0


@dataclass(frozen=True)
class HeightRule:
    """``height_m``, else ``floors`` × ``storey_m``, else ``default_m``."""

    storey_m: float = STOREY_HEIGHT_M
    default_m: float = DEFAULT_HEIGHT_M

    def __post_init__(self) -> None:
        for name in ("storey_m", "default_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"height rule: {name} must be a number of metres above 0, not {value!r}")

    def resolve(
        self, height_m: npt.ArrayLike | None, floors: npt.ArrayLike | None, size: int | None = None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
        """Heights (metres) and their sources (codes into :data:`HEIGHT_SOURCES`) for footprints
        whose ``height_m`` and ``floors`` are given (None, NaN, pandas NA: missing). A layer
        without one of the fields passes None for it, and then ``size`` (the number of footprints)
        when both are None."""
        heights = _numbers(height_m)
        storeys = _numbers(floors)
        n = len(heights) if heights is not None else len(storeys) if storeys is not None else size
        if n is None:
            raise ValueError("height rule: give height_m, floors or size")
        out = np.full(n, self.default_m, dtype=np.float64)
        source = np.full(n, 2, dtype=np.int8)
        if storeys is not None:
            if len(storeys) != n:
                raise ValueError(f"height rule: {len(storeys)} floors for {n} heights")
            counted = np.isfinite(storeys) & (np.floor(storeys) > 0)  # at least one whole floor
            out[counted] = np.floor(storeys[counted]) * self.storey_m
            source[counted] = 1
        if heights is not None:
            measured = np.isfinite(heights) & (heights > 0)
            out[measured] = heights[measured]
            source[measured] = 0
        return out, source

    def resolve_one(self, height_m: object, floors: object) -> tuple[float, str]:
        """The height and source name of one footprint."""
        heights, sources = self.resolve([height_m], [floors])
        return float(heights[0]), HEIGHT_SOURCES[int(sources[0])]

    def to_dict(self) -> dict[str, object]:
        return {"order": list(HEIGHT_SOURCES), "storey_m": self.storey_m, "default_m": self.default_m}


def _numbers(values: npt.ArrayLike | None) -> npt.NDArray[np.float64] | None:
    """``values`` as float64 with every missing value (None, NaN, pd.NA, non-numbers) as NaN."""
    if values is None:
        return None
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object).ravel())
    if series.dtype == bool or series.dtype == object:
        series = series.map(lambda v: None if isinstance(v, (bool, np.bool_)) else v)
    numbers = pd.to_numeric(series, errors="coerce")
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


#: the rule every part of the project applies (a build config may not change it yet: docs/3d.md)
DEFAULT_RULE = HeightRule()
