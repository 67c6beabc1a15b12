"""Finding the layer catalog without importing the package that defines it.

Packages register a catalog under the ``cim.catalogs`` entry point (this project's ``layers``
package registers ``base``); a catalog is any object that iterates over :class:`LayerSpec` and
looks one up by name (:class:`LayerCatalog`; the ``layers`` package's is a
``layers.registry.LayerRegistry``).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Iterable, Protocol

from cim.errors import ConfigError
from cim.layerspec import LayerSpec


class LayerCatalog(Protocol):
    """The layer specs of a catalog: iterated in drawing order, looked up by name."""

    def __getitem__(self, name: str) -> LayerSpec: ...

    def __iter__(self) -> Iterable[LayerSpec]: ...


def load_catalog(name: str = "base") -> LayerCatalog:
    for ep in entry_points(group="cim.catalogs"):
        if ep.name == name:
            return ep.load()
    known = sorted(ep.name for ep in entry_points(group="cim.catalogs"))
    raise ConfigError(f"no layer catalog {name!r} is installed (installed: {', '.join(known) or 'none'})")
