"""Duplicates within one source.

Two features of a source are duplicates when their geometries are the same point set written the same
way up to vertex order and ring orientation (equal after ``shapely.normalize``). The first is kept, the
later ones removed — each recorded with the feature it duplicates and the attributes that differ.
Features sharing a source id but not their geometry are kept and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely


@dataclass(frozen=True)
class Duplicate:
    #: positions (in the frame given) of the later feature and of the one it repeats
    position: int
    first: int
    reason: str


def _differences(frame: pd.DataFrame, fields: list[str], a: int, b: int) -> list[str]:
    out = []
    for name in fields:
        x, y = frame[name].iloc[a], frame[name].iloc[b]
        if pd.isna(x) and pd.isna(y):
            continue
        if pd.isna(x) or pd.isna(y) or x != y:
            out.append(f"{name} {_show(y)} vs {_show(x)}")
    return out


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def geometry_keys(geoms: np.ndarray) -> np.ndarray:
    """Per geometry, what makes two of them duplicates: its normalised WKB (None where missing).

    Computed per geometry, so a partitioned build computes the keys per partition; the grouping by key
    in :func:`find_duplicates` stays global, hence exact however the features were partitioned.
    """
    return np.asarray(shapely.to_wkb(shapely.normalize(np.asarray(geoms, dtype=object))), dtype=object)


def candidate_keys(geoms: np.ndarray) -> np.ndarray:
    """:func:`geometry_keys` of the geometries that can have a duplicate, None for the others.

    Normalising changes neither a geometry's bounds nor its number of vertices, so two geometries
    that differ in those are never duplicates; only those sharing them with another geometry are
    normalised and encoded (a million distinct footprints: a few tenths of a second instead of
    seconds). Missing and empty geometries share NaN bounds and stay candidates.
    """
    geoms = np.asarray(geoms, dtype=object)
    shape = pd.DataFrame(shapely.bounds(geoms), columns=["minx", "miny", "maxx", "maxy"])
    shape["vertices"] = shapely.get_num_coordinates(geoms)
    maybe = shape.duplicated(keep=False).to_numpy()
    keys = np.full(len(geoms), None, dtype=object)
    if maybe.any():
        keys[maybe] = geometry_keys(geoms[maybe])
    return keys


def find_duplicates(
    frame: pd.DataFrame, geoms: np.ndarray, ids: pd.Series, fields: list[str], keys: np.ndarray | None = None
) -> tuple[list[Duplicate], list[Duplicate]]:
    """(geometry duplicates to remove, id duplicates to flag) among the rows of ``frame``.

    ``keys``: the :func:`geometry_keys` of ``geoms`` when already computed.
    """
    keys = pd.Series(candidate_keys(geoms) if keys is None else keys, dtype=object)
    present = keys.notna().to_numpy()
    later = np.flatnonzero(present & keys.duplicated(keep="first").to_numpy())
    removed: list[Duplicate] = []
    if len(later):  # where each duplicate's first occurrence is: only looked up when there are any
        first_of = _first_positions(keys.where(present, None))
        for pos in later:
            first = int(first_of.iloc[pos])
            differs = _differences(frame, fields, first, int(pos))
            detail = f"; attributes differ: {', '.join(differs)}" if differs else "; attributes equal"
            removed.append(Duplicate(int(pos), first, f"same geometry as feature {ids.iloc[first]}{detail}"))
    remaining = pd.Series(ids.to_numpy(dtype=object), dtype=object)
    if removed:
        remaining.iloc[[d.position for d in removed]] = None
    reused = np.flatnonzero((remaining.notna() & remaining.duplicated(keep="first")).to_numpy())
    flagged: list[Duplicate] = []
    if len(reused):
        first_id = _first_positions(remaining)
        flagged = [
            Duplicate(
                int(pos),
                int(first_id.iloc[pos]),
                f"source id {ids.iloc[pos]} is used by an earlier feature with another geometry",
            )
            for pos in reused
        ]
    return removed, flagged


def _first_positions(keys: pd.Series) -> pd.Series:
    """Per row, the position of the first row with the same key (NaN where the key is missing);
    groups unsorted — sorting a million WKB keys took seconds and the result does not depend on it."""
    return pd.Series(np.arange(len(keys)), dtype="int64").groupby(keys, sort=False).transform("min")
