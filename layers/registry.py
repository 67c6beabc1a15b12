"""The :class:`LayerRegistry` of base-map layers (a :class:`cim.catalog.LayerCatalog`) and its discovery
from a package of layer modules.

A layer is declared by a module holding a module-level ``LAYER = LayerSpec(...)``; the module's name
must equal the layer's name, so adding a layer means adding one file to the catalog package.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Iterable, Iterator

from cim.layerspec import LayerSpec


class LayerRegistry:
    """An immutable, name-indexed collection of layer specs, iterated in drawing order."""

    def __init__(self, specs: Iterable[LayerSpec]) -> None:
        ordered = sorted(specs, key=lambda s: (s.order, s.name))
        by_name: dict[str, LayerSpec] = {}
        for spec in ordered:
            if spec.name in by_name:
                raise ValueError(f"duplicate layer name {spec.name!r} in catalog")
            by_name[spec.name] = spec
        self._specs: dict[str, LayerSpec] = by_name

    def __getitem__(self, name: str) -> LayerSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown layer {name!r}; known layers: {', '.join(self.names())}") from None

    def __iter__(self) -> Iterator[LayerSpec]:
        """The specs in drawing order (lowest ``order`` first)."""
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __repr__(self) -> str:
        return f"LayerRegistry({', '.join(self.names())})"

    def names(self) -> list[str]:
        """Layer names in drawing order."""
        return list(self._specs)

    def get(self, name: str, default: LayerSpec | None = None) -> LayerSpec | None:
        """The spec named ``name``, or ``default`` when there is none."""
        return self._specs.get(name, default)

    def vector(self) -> list[LayerSpec]:
        """The vector layers in drawing order."""
        return [s for s in self if s.kind == "vector"]

    def raster(self) -> list[LayerSpec]:
        """The raster layers in drawing order."""
        return [s for s in self if s.kind == "raster"]


def discover(package: ModuleType) -> LayerRegistry:
    """Build a catalog from every public module of ``package`` that defines ``LAYER``.

    Raises ``TypeError`` for a module without a ``LayerSpec`` named ``LAYER`` and ``ValueError`` when a
    module's name differs from its layer's name, so a misplaced file fails loudly at import.
    """
    specs: list[LayerSpec] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        spec = getattr(module, "LAYER", None)
        if not isinstance(spec, LayerSpec):
            raise TypeError(f"layer module {module.__name__} must define LAYER = LayerSpec(...)")
        if spec.name != info.name:
            raise ValueError(f"layer module {module.__name__} defines layer {spec.name!r}; name them alike")
        specs.append(spec)
    return LayerRegistry(specs)
