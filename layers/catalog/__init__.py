"""The base-map layer catalog: one module per layer, found at import time.

Each module in this package defines ``LAYER = LayerSpec(...)`` and is named like its layer; adding a
layer means adding one file here. ``CATALOG`` is what the ``cim.catalogs`` entry point exposes.
"""

from __future__ import annotations

import sys

from layers.registry import LayerRegistry, discover

CATALOG: LayerRegistry = discover(sys.modules[__name__])

__all__ = ["CATALOG", "LayerRegistry"]
