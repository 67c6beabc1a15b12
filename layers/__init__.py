"""The base-map layers of cim-basemap: the layer catalog and the sources that fill it."""
