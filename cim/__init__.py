"""cim-basemap: build a city's CIM base layer (空间数据底板) and serve it over OGC APIs.

>>> import cim
>>> city = cim.open("cim.duckdb")
>>> city.read("buildings", bbox=(24.93, 60.16, 24.96, 60.18), crs="EPSG:4490")
"""

from cim.city import City, open
from cim.errors import CIMError

__all__ = ["City", "CIMError", "open"]
__version__ = "0.1.0"
