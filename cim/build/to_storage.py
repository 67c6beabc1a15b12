"""A source's features into the storage CRS and the layer's schema: area-of-use check → rectify
(GCJ-02/BD-09) → reproject → conform (fields, validity, types, required attributes).

Written once: the single-process build (:mod:`cim.build.pipeline`) runs :func:`to_storage` on a
whole source, a distributed build (:mod:`cim.build.distributed`) on each spatial partition of it on
a worker, so both give the same features and the same QA records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from cim.build.normalise import Conformed, conform_detail
from cim.build.china_offsets import rectify
from cim.build.referencing import SourceCRS, outside_areas, raise_outside
from cim.build.reproject import to_crs
from cim.layerspec import LayerSpec


@dataclass
class InStorage:
    """What :func:`to_storage` gave: per area of use (the source CRS's, then the storage CRS's) the
    mask of features outside it; when none is, the reprojected geometries (before conforming, as QA
    records describe them) and the conformed features."""

    outside: list[np.ndarray]
    #: None (and ``conformed`` None) when a feature lies outside an area of use: nothing else was computed
    geometry: np.ndarray | None
    conformed: Conformed | None


def _quiet(step: str, detail: Any = None) -> None:
    pass


def to_storage(
    spec: LayerSpec,
    source: str,
    geoms: np.ndarray,
    ids: pd.Series,
    values: Mapping[str, pd.Series],
    crs: SourceCRS,
    storage: CRS,
    *,
    index: pd.Index | None = None,
    stop_outside: tuple[str, str] | None = None,
    step: Callable[..., None] = _quiet,
    threads: int | None = None,
) -> InStorage:
    """Check, rectify, reproject and conform ``geoms`` (in ``crs``; their ``ids`` and field ``values``)
    of ``source`` into ``spec`` in ``storage``; ``index`` labels the features (default 0..n-1).

    ``stop_outside`` = (file, layer): a feature outside an area of use stops the build at once with a
    :class:`~cim.errors.BuildError` naming them; without it the masks come back for the caller to
    merge (a partition). ``step(name, detail)`` is told as each step starts (a progress bar);
    ``threads`` caps the reprojection's threads (:func:`cim.build.reproject.to_crs`)."""
    outside = outside_areas(geoms, crs, storage)
    if any(mask.any() for mask in outside):
        if stop_outside is not None:
            file, layer = stop_outside
            raise_outside(outside, geoms, ids.to_numpy(), crs, storage, file, layer)
        return InStorage(outside, None, None)
    if crs.offset is not None:
        step("rectify", crs.offset)
        geoms = rectify(geoms, crs.offset)
    step("reproject", f"{crs.label} → EPSG:{storage.to_epsg()}")
    geometry = to_crs(gpd.GeoSeries(geoms, index=index, crs=crs.crs), storage, threads)
    step("normalise")
    conformed = conform_detail(spec, values, geometry, source, ids, crs=storage)
    return InStorage(outside, geometry.to_numpy(), conformed)
