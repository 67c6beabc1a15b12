"""OGC API web service: pygeoapi providers over the cim store, the FastAPI app, the viewer."""
