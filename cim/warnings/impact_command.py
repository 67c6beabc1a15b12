"""``cim warnings impact ID``: what lies inside warning ID (or a polygon of a GeoJSON file), as tables.

The lead registers :func:`impact_command` in the ``cim warnings`` group. With ``--geometry FILE`` the
polygon of the file (a GeoJSON geometry, Feature or FeatureCollection of one polygon feature; CRS84)
is analysed instead of the warning's, and ID is ignored. ``--lists DIR`` writes buildings.geojson,
pois.geojson, parcels.geojson and roads.geojson (CRS84) into DIR. docs/warnings/impact.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cim.errors import BadInput, CIMError
from cim.impact import LISTS, Impact, impact
from cim.store import open_store


@click.command("impact")
@click.argument("warning_id", metavar="ID", type=int)
@click.option("--geometry", "geometry_file", type=click.Path(path_type=Path), default=None,
              help="Analyse the polygon of this GeoJSON file (CRS84) instead of warning ID's.")
@click.option("--store", "store_url", envvar="CIM_STORE", default=None,
              help="Store URL: postgresql://user@host:port/db or a path ending .duckdb [env CIM_STORE; default ./cim.duckdb]")
@click.option("--lists", "lists_dir", type=click.Path(path_type=Path), default=None,
              help="Write the features inside as GeoJSON files (buildings, pois, parcels, roads) into this directory.")
def impact_command(warning_id: int, geometry_file: Path | None, store_url: str | None, lists_dir: Path | None) -> None:
    """What lies inside warning ID: buildings, floor area, people, POIs, parcels, roads, by division."""
    try:
        with open_store(store_url) as store:
            if geometry_file is not None:
                area, title = _read_geometry(geometry_file), str(geometry_file)
            else:
                feature = store.get_feature("warnings", warning_id, out_srid=4326)
                if not feature.get("geometry"):
                    raise BadInput(f"warning {warning_id} has no geometry: nothing to analyse")
                area, title = feature["geometry"], f"warning {warning_id} ({feature['properties'].get('headline') or ''})"
            result = impact(store, area, area_crs=4326, lists=lists_dir is not None)
    except CIMError as exc:
        raise click.ClickException(str(exc)) from None
    _print(result, title)
    if lists_dir is not None:
        lists_dir.mkdir(parents=True, exist_ok=True)
        doc = result.to_json(LISTS)
        for name, collection in doc.get("lists", {}).items():
            (lists_dir / f"{name}.geojson").write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
        click.echo(f"lists written to {lists_dir}/ ({', '.join(f'{n}.geojson' for n in doc.get('lists', {}))})")


def _read_geometry(path: Path) -> Any:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise BadInput(f"{path} is not JSON: {exc}") from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
        if len(features) != 1:
            raise BadInput(f"{path}: a FeatureCollection of exactly one polygon feature was expected, it has {len(features)}")
        doc = features[0]
    return doc


def _print(result: Impact, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = result.totals
    head = Table(title=f"Impact of {title}", show_header=False)
    for label, value in (
        ("area", f"{t['area_m2'] / 1e6:,.3f} km²"), ("buildings", f"{t['buildings']:,}"),
        ("floor area", f"{t['floor_area_m2']:,.0f} m²"), ("people (estimated)", f"{t['people']:,.0f} ({result.people_source})"),
        ("POIs", f"{t['pois']:,}"), ("parcels", f"{t['parcels']:,}"), ("road length", f"{t['road_length_m']:,.0f} m"),
        ("absent layers", ", ".join(result.absent) or "none"),
    ):
        head.add_row(label, value)
    console.print(head)
    if len(result.by_division):
        table = Table(title=f"By division ({result.division_level or 'any level'})")
        for column in ("code", "name", "buildings", "floor area m²", "people", "parcels", "POIs", "roads m"):
            table.add_column(column, justify="left" if column in ("code", "name") else "right")
        for row in result.by_division.itertuples(index=False):
            table.add_row(str(row.code or "-"), str(row.name), f"{row.buildings:,}", f"{row.floor_area_m2:,.0f}", f"{row.people:,.0f}",
                          f"{row.parcels:,}", f"{row.pois:,}", f"{row.road_length_m:,.0f}")
        console.print(table)
    for frame, key, value, label in ((result.pois_by_category, "category", "pois", "POIs by category"),
                                     (result.roads_by_class, "road_class", "length_m", "Road length by class (m)")):
        if len(frame):
            table = Table(title=label)
            table.add_column(key)
            table.add_column(value, justify="right")
            for k, v in zip(frame[key], frame[value]):
                table.add_row(str(k), f"{v:,.0f}")
            console.print(table)
