"""``cim tiles seed`` (pre-render into the tile cache), ``cim tiles prepare`` (the current release's
tile geometry, PostGIS) ``cim export pmtiles|mbtiles``, ``cim export features`` (a layer as a download file)
and ``cim export 3dtiles`` (a lod1 layer as a static 3D Tiles directory)."""

from __future__ import annotations

from pathlib import Path

import click

from cim.cli import store_option
from cim.errors import ConfigError
from cim.store import Bounds
from cim.tms import TMS_IDS, WEB_MERCATOR


def _bbox(value: str | None) -> Bounds | None:
    if value is None:
        return None
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or not (parts[0] < parts[2] and parts[1] < parts[3]):
        raise ConfigError(f"--bbox wants minlon,minlat,maxlon,maxlat (CRS84); got {value!r}")
    return parts  # type: ignore[return-value]


bbox_option = click.option("--bbox", default=None, help="minlon,minlat,maxlon,maxlat in CRS84 [default: the data extent]")
maxzoom_option = click.option("--maxzoom", required=True, type=click.IntRange(0, 24), help="Deepest zoom (tile matrix).")
minzoom_option = click.option("--minzoom", default=0, show_default=True, type=click.IntRange(0, 24), help="Shallowest zoom.")


def _report(stats, what: str) -> None:
    per_zoom = ", ".join(f"z{z}: {n}" for z, n in sorted(stats.per_zoom.items()))
    click.echo(
        f"{what}: release {stats.release}, {stats.tiles} tiles with features ({per_zoom or 'none'}), "
        f"{stats.empty} empty; {stats.bytes / 1e6:.1f} MB, largest tile {stats.largest / 1e3:.1f} KB"
    )


@click.group()
def tiles() -> None:
    """Vector tiles of the current release."""


@tiles.command()
@store_option
def prepare(store_url: str | None) -> None:
    """Prepare the current release's tile geometry (PostGIS; `cim build` does it after publishing).

    Renders nothing: the tiles of the prepared zooms get faster (cim/store/sql/tile_geometry.py).
    What is prepared already is skipped, so it resumes an interrupted preparation."""
    from cim.store import open_store

    with open_store(store_url) as store:
        done = store.prepare_tiles(lambda layer, zoom, seconds: click.echo(f"{layer}: z{zoom} ({seconds:.1f} s)"))
        zooms = sum(len(z) for z in done.values())
        click.echo(f"release {store.current_number()}: {zooms} tables of tile geometry prepared"
                   + ("" if zooms else " (none missing, or the store renders every tile the plain way)"))


@tiles.command()
@store_option
@maxzoom_option
@minzoom_option
@click.option("--tms", "tms_id", default=WEB_MERCATOR, show_default=True, type=click.Choice(TMS_IDS), help="Tile matrix set.")
@click.option("--tileset", "tileset_id", default="basemap", show_default=True, help="basemap (the composite) or a collection id.")
@bbox_option
@click.option("--cache", "cache_dir", default=None, type=click.Path(file_okay=False),
              help="Cache directory [default: $CIM_TILE_CACHE, else <store>.d/tiles for the embedded store].")
def seed(store_url: str | None, maxzoom: int, minzoom: int, tms_id: str, tileset_id: str, bbox: str | None,
         cache_dir: str | None) -> None:
    """Pre-render tiles into the disk cache the server reads."""
    from cim.store import open_store
    from tiles.cache import DiskCache, TileCache
    from tiles.engine import TileEngine, default_cache
    from tiles.export import ExportStats, render_tiles

    with open_store(store_url) as store:
        cache = TileCache(disk=DiskCache(Path(cache_dir))) if cache_dir else default_cache(store)
        if cache.disk is None:
            raise ConfigError("seeding needs a disk cache: give --cache DIR or set CIM_TILE_CACHE (and the same for `cim serve`)")
        engine = TileEngine(store, cache)
        stats = ExportStats()
        for _ in render_tiles(engine, minzoom, maxzoom, _bbox(bbox), tms_id, tileset_id, stats, click.echo):
            pass
        _report(stats, f"seeded {cache.disk.root}")


@click.group()
def export() -> None:
    """Export the composite base map as a tile archive (WebMercatorQuad, gzip-compressed MVT), or a
    layer as a download file (GeoPackage, GeoParquet, FlatGeobuf)."""


def _export(kind: str):
    @store_option
    @click.argument("out", type=click.Path(dir_okay=False))
    @maxzoom_option
    @minzoom_option
    @bbox_option
    def command(store_url: str | None, out: str, maxzoom: int, minzoom: int, bbox: str | None) -> None:
        from cim.store import open_store
        from tiles.engine import TileEngine, default_cache
        from tiles.export import export_mbtiles, export_pmtiles

        writer = export_pmtiles if kind == "pmtiles" else export_mbtiles
        with open_store(store_url) as store:
            engine = TileEngine(store, default_cache(store))
            stats = writer(engine, Path(out), maxzoom, minzoom, _bbox(bbox), click.echo)
        _report(stats, f"wrote {out}")

    command.__doc__ = f"Write the composite base map to OUT as {'PMTiles v3' if kind == 'pmtiles' else 'MBTiles 1.3'}."
    return export.command(kind)(command)


_export("pmtiles")
_export("mbtiles")


@export.command("features")
@store_option
@click.argument("layer")
@click.option("--format", "fmt", required=True, type=click.Choice(["gpkg", "parquet", "fgb"]),
              help="GeoPackage, GeoParquet 1.1 or FlatGeobuf.")
@click.option("--release", type=int, default=None, help="A kept past release (default: the current one, with its edits).")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), default=None,
              help="File to write (default: <layer>-r<N>.<ext> in the working directory).")
def features(store_url: str | None, layer: str, fmt: str, release: int | None, out: str | None) -> None:
    """Write vector layer LAYER of a release as a download file: the bytes the server's
    /collections/LAYER/downloads/FORMAT sends (made through the same file cache)."""
    from cim.city import City
    from cim.sharing.download_cache import DownloadCache
    from cim.store import open_store

    with open_store(store_url) as store:
        city = City(store)
        if out is None:
            out = DownloadCache(store).get(layer, fmt, release).filename
        download = city.export_features(layer, fmt, out, release)
    click.echo(f"wrote {out}: {layer} of release {download.release} as {download.format.title}, "
               f"{download.size} bytes, sha256 {download.sha256}")


@export.command("3dtiles")
@store_option
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--layer", default="buildings", show_default=True, help="A lod1 layer (extruded footprints).")
@click.option("--release", type=int, default=None, help="A kept past release (default: the current one).")
@click.option("--force", is_flag=True, help="Replace OUT when it is a directory that is not empty.")
def threedtiles(store_url: str | None, out: str, layer: str, release: int | None, force: bool) -> None:
    """Write lod1 layer LAYER as a static OGC 3D Tiles 1.1 directory OUT: tileset.json (relative
    content URIs) and one GLB per leaf tile, the bytes /collections/LAYER/3dtiles serves."""
    from cim.store import open_store
    from tiles.threed.engine import SceneEngine
    from tiles.threed.export import export_3dtiles

    with open_store(store_url) as store:
        result = export_3dtiles(SceneEngine(store), Path(out), layer, release, force, click.echo)
    click.echo(
        f"wrote {out}: {layer} of release {result.release}, {result.count} buildings in {result.files} tiles, "
        f"{result.bytes / 1e6:.1f} MB, largest tile {result.largest / 1e3:.1f} KB"
    )
