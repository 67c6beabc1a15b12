"""The change feed between two releases differing by 1 % of their buildings: time of the whole feed
(every page) through the core (cim/sharing/changes.py), cold (the change list made) and warm.

    .venv/bin/python -m bench.changes_feed --store /tmp/feed.duckdb --buildings 100000 [--limit 1000]
    .venv/bin/python -m bench.changes_feed --store postgresql://postgres@127.0.0.1:5432/cim_feed ...

Release 1: ``--buildings`` boxes on a grid in Tianjin; Runs: ``first`` (the process's first comparison), ``cached`` (the list in the cache), ``again``
(the list made again on open connections: a running server's case). Release 2: a third of 1 % removed, a third
added, a third changed (every other one moved, the rest with a new height). The store must be empty.
"""

from __future__ import annotations

import argparse
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cim.sharing.changes import CACHE, changes
from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG


def buildings(count: int) -> gpd.GeoDataFrame:
    side = int(np.ceil(np.sqrt(count)))
    i = np.arange(count)
    x = 117.0 + (i % side) * 0.0002
    y = 39.0 + (i // side) * 0.0002
    return gpd.GeoDataFrame(
        {
            "name": [f"b{n}" for n in i], "use": "residential", "height_m": 10.0 + (i % 50),
            "floors": pd.array(3 + (i % 20), dtype="Int64"), "structure": "concrete",
            "year_built": pd.array(np.full(count, 2000), dtype="Int64"), "address": None,
            "source": "survey", "source_id": [f"b{n}" for n in i],
        },
        geometry=shapely.box(x, y, x + 0.0001, y + 0.0001),
        crs=4326,
    )  # fmt: skip


def next_release(frame: gpd.GeoDataFrame, share: float = 0.01) -> gpd.GeoDataFrame:
    n = len(frame)
    step = max(1, int(round(1 / share)))
    picked = np.arange(0, n, step)
    removed, changed, added = picked[0::3], picked[1::3], picked[2::3]
    out = frame.copy()
    moved = changed[0::2]
    out.loc[moved, "geometry"] = [shapely.transform(g, lambda c: c + 0.00001) for g in out.loc[moved, "geometry"]]
    out.loc[changed[1::2], "height_m"] = 99.0
    extra = frame.loc[added].copy()
    extra["source_id"] = [f"new{n}" for n in added]
    extra["name"] = extra["source_id"]
    extra["geometry"] = [shapely.transform(g, lambda c: c + 0.00003) for g in extra["geometry"]]
    out = out.drop(index=removed)
    return gpd.GeoDataFrame(pd.concat([out, extra], ignore_index=True), geometry="geometry", crs=4326)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--buildings", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()
    first = buildings(args.buildings)
    second = next_release(first)
    with open_store(args.store) as store:
        if not store.releases():
            t = time.perf_counter()
            store.publish(ReleaseDraft(layers=[LayerData(CATALOG["buildings"], first)], srid=4326))
            store.publish(ReleaseDraft(layers=[LayerData(CATALOG["buildings"], second)], srid=4326))
            print(f"published two releases of {args.buildings} buildings in {time.perf_counter() - t:.1f} s")
        numbers = sorted(r.number for r in store.releases())[-2:]
        # first: the process's first comparison (DuckDB: the comparing connection made, spatial loaded);
        # cached: every page from the cached list; again: the list made again, connections open (a server)
        for run in ("first", "cached", "again"):
            if run != "cached":
                CACHE.clear()
            t = time.perf_counter()
            pages, features, cursor = 0, 0, None
            while True:
                page = changes(store, "buildings", numbers[0], numbers[1], limit=args.limit, cursor=cursor)
                pages += 1
                features += len(page.features)
                cursor = page.next_cursor
                if cursor is None:
                    break
            print(f"{run}: {features} changes in {pages} pages of {args.limit} in {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
