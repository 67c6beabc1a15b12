"""The build's shortcuts give what the plain way gives: chunked reprojection on threads, WKB into
Arrow from one buffer, the area-of-use check by the data's extent, the streamed layer feed."""

from __future__ import annotations

import threading

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pytest
import shapely
from pyproj import CRS

from cim.build import reproject
from cim.build.feed import FeedAborted, FeedClosed, LayerFeed
from cim.build.referencing import SourceCRS, lonlat_bounds, outside_areas
from cim.store.postgis.copy import wkb_array


def squares(n: int, x0: float = 13_000_000.0, y0: float = 4_700_000.0) -> np.ndarray:
    """``n`` 10 m squares in EPSG:3857 along a row (near Tianjin), one missing."""
    geoms = shapely.box(x0 + np.arange(n) * 20.0, y0, x0 + np.arange(n) * 20.0 + 10.0, y0 + 10.0)
    geoms[n // 3] = None
    return geoms


def test_chunked_reprojection_equals_to_crs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reproject, "MIN_CHUNK", 1_000)
    monkeypatch.setattr(reproject, "THREADS", 3)
    series = gpd.GeoSeries(squares(5_000), index=np.arange(5_000) * 7, crs="EPSG:3857")
    chunked, plain = reproject.to_crs(series, "EPSG:4490"), series.to_crs("EPSG:4490")
    assert chunked.crs == plain.crs and chunked.index.equals(plain.index)
    assert chunked.isna().sum() == 1
    assert shapely.equals_exact(chunked.dropna().to_numpy(), plain.dropna().to_numpy(), 0).all()


def test_wkb_array_equals_pyarrow_with_nulls_and_empties() -> None:
    wkb = shapely.to_wkb(squares(10))
    wkb[2] = b""
    assert wkb_array(wkb).equals(pa.array(list(wkb), type=pa.binary()))
    assert wkb_array(wkb).null_count == 1
    assert wkb_array(np.array([], dtype=object)).equals(pa.array([], type=pa.binary()))


@pytest.mark.parametrize("x0", [13_000_000.0, 15_002_500.0])  # inside CGCS2000's area; across its east edge
def test_area_check_by_extent_gives_the_per_feature_masks(x0: float) -> None:
    geoms = squares(2_000, x0=x0 - 20.0 * 1_000)  # straddles x0
    source = SourceCRS(CRS.from_epsg(3857), None, "EPSG:3857", "file")
    masks = outside_areas(geoms, source, CRS.from_epsg(4490))
    lonlat = lonlat_bounds(geoms, source)
    east = CRS.from_epsg(4490).area_of_use.east + 0.1  # type: ignore[union-attr]
    expected = ~np.isnan(lonlat).any(axis=1) & (lonlat[:, 2] > east)
    assert np.array_equal(masks[1], expected)
    assert not masks[0].any()  # EPSG:3857: the world
    if x0 > 14_000_000:  # the extent leaves the area: checked feature by feature, some in, some out
        assert masks[1].any() and not masks[1].all()
    else:
        assert not masks[1].any()


def test_a_layer_feed_ends_with_the_producers_error_and_stops_a_producer_when_the_store_fails() -> None:
    feed = LayerFeed()
    got: list[object] = []

    def consume() -> None:
        try:
            for layer in feed:
                got.append(layer)
        except FeedAborted as exc:
            got.append(exc.__cause__)

    consumer = threading.Thread(target=consume)
    consumer.start()
    feed.put("a layer")  # type: ignore[arg-type]
    feed.fail(ValueError("a bad verifying source"))
    consumer.join(5)
    assert got[0] == "a layer" and isinstance(got[1], ValueError)

    feed = LayerFeed()
    feed.consumer_failed(RuntimeError("disk full"))
    with pytest.raises(FeedClosed, match="disk full"):
        feed.put("a layer")  # type: ignore[arg-type]
