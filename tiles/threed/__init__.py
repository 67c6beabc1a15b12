"""LOD1 buildings as OGC 3D Tiles 1.1 (docs/3d.md).

A ``lod1`` layer (cim/layerspec.py; the demo's ``buildings``) is served as one 3D Tiles tileset
per release: footprints extruded by the height rule (cim/heights.py) onto the terrain height of
the release's DEM where it has one (tiles/terrain/sample.py), as glTF 2.0 binary (GLB) content with
one feature id per building (EXT_mesh_features) and its attributes in a property table
(EXT_structural_metadata).

- model.py     what the parts share: ``Mesh``, ``SceneTile``, ``ScenePlan``, ``SceneContent``, media
               types, the GeoVolumes link relation and conformance classes, the property table's columns
- geodesy.py   storage CRS → longitude/latitude → ECEF (WGS 84; CGCS2000 taken as equal, < 0.1 mm)
- mesh.py      footprints → LOD1 mesh: walls (flat normals), roofs (earcut), positions relative to an origin
- glb.py       ``Mesh`` + property table → GLB bytes (pygltflib), glTF y-up as 3D Tiles expects
- plan.py      the tileset's quadtree: every building in exactly one leaf (by its centroid), regions,
               geometric errors; tileset.json from a plan
- plan_store.py  a plan as one ``.npz`` (the engine's disk cache of plans)
- engine.py    ``SceneEngine``: plans and contents per release, cached (tiles/cache.py); ETags
- export.py    ``cim export 3dtiles DIR``: a static tileset directory
"""
