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


def find_duplicates(
    frame: pd.DataFrame, geoms: np.ndarray, ids: pd.Series, fields: list[str], keys: np.ndarray | None = None
) -> tuple[list[Duplicate], list[Duplicate]]:
    """(geometry duplicates to remove, id duplicates to flag) among the rows of ``frame``.

    ``keys``: the :func:`geometry_keys` of ``geoms`` when already computed.
    """
    keys = pd.Series(geometry_keys(geoms) if keys is None else keys, dtype=object)
    present = keys.notna().to_numpy()
    first_of = pd.Series(np.arange(len(keys)), dtype="int64").groupby(keys.where(present, None)).transform("min")
    removed: list[Duplicate] = []
    for pos in np.flatnonzero(present & keys.duplicated(keep="first").to_numpy()):
        first = int(first_of.iloc[pos])
        differs = _differences(frame, fields, first, int(pos))
        detail = f"; attributes differ: {', '.join(differs)}" if differs else "; attributes equal"
        removed.append(Duplicate(int(pos), first, f"same geometry as feature {ids.iloc[first]}{detail}"))
    gone = {d.position for d in removed}
    remaining = pd.Series([i if p not in gone else None for p, i in enumerate(ids)], dtype=object)
    first_id = pd.Series(np.arange(len(ids)), dtype="int64").groupby(remaining).transform("min")
    flagged = [
        Duplicate(
            int(pos),
            int(first_id.iloc[pos]),
            f"source id {ids.iloc[pos]} is used by an earlier feature with another geometry",
        )
        for pos in np.flatnonzero((remaining.notna() & remaining.duplicated(keep="first")).to_numpy())
    ]
    return removed, flagged
