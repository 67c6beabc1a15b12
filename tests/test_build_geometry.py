"""Invalid geometries are repaired (keeping the layer's dimension) or rejected, per layer policy."""

from __future__ import annotations

import numpy as np
import shapely

from cim.build.validity import apply_validity_policy

BOWTIE = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
SQUARE = shapely.box(10, 10, 11, 11)
# a polygon with a spike: make_valid gives a polygon plus a stray line
SPIKE = shapely.Polygon([(0, 0), (4, 0), (4, 4), (2, 4), (2, 6), (2, 4), (0, 4), (0, 0)])


def test_repair_keeps_polygonal_parts_and_area() -> None:
    geoms = np.array([BOWTIE, SQUARE, None, SPIKE], dtype=object)
    out, invalid = apply_validity_policy(geoms, "MultiPolygon", "repair")
    assert invalid.tolist() == [True, False, False, True]
    assert out[1] is SQUARE and out[2] is None
    assert out[0].is_valid and out[0].geom_type == "MultiPolygon" and out[0].area == 2.0
    assert out[3].is_valid and out[3].geom_type == "MultiPolygon" and out[3].area == 16.0


def test_reject_drops_invalid_geometries() -> None:
    out, invalid = apply_validity_policy(np.array([BOWTIE, SQUARE], dtype=object), "MultiPolygon", "reject")
    assert invalid.tolist() == [True, False]
    assert out[0] is None and out[1] is SQUARE


def test_line_layers_keep_lines() -> None:
    zero_length = shapely.LineString([(1, 1), (1, 1)])
    out, invalid = apply_validity_policy(np.array([zero_length], dtype=object), "MultiLineString", "repair")
    assert invalid.tolist() == [True]
    assert out[0] is None  # nothing one-dimensional is left of a collapsed line
