"""``cim catalog``: the layer catalog's records (cim/sharing/records.py) on the command line — a
table by default, ``--json`` the FeatureCollection ``/collections/catalog/items`` answers (links
relative to the server's root)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import click

from cim.cli import store_option
from cim.errors import BadInput
from cim.sharing.records_search import RecordQuery, listed, select_records, sort_keys, terms
from cim.store import TimeInterval, open_store


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        numbers = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise BadInput(f"--bbox must be minx,miny,maxx,maxy in lon/lat (CRS84); got {text[:60]!r}") from None
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise BadInput(f"--bbox must be four finite numbers minx,miny,maxx,maxy (CRS84); got {text[:60]!r}")
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise BadInput("--bbox: longitudes within -180..180, latitudes within -90..90 and miny <= maxy")
    return minx, miny, maxx, maxy


def _instant(text: str) -> date | datetime | None:
    if text in ("", ".."):
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"--datetime: {text[:40]!r} is no RFC 3339 date or date-time") from None
    return value if value.tzinfo is not None else value.astimezone()


def _interval(text: str) -> TimeInterval:
    if "/" in text:
        start, _, end = text.partition("/")
        return TimeInterval(_instant(start), _instant(end))
    instant = _instant(text)
    return TimeInterval(instant, instant)


@click.command("catalog")
@store_option
@click.option("-q", "q", default=None, help="Search terms (any of them; title, description, keywords, theme, layer, source files).")
@click.option("--bbox", default=None, help="minx,miny,maxx,maxy in lon/lat (CRS84): records whose extent intersects it.")
@click.option("--datetime", "when", default=None, help="An instant or start/end: releases that were the newest then.")
@click.option("--external-id", "external_ids", multiple=True, help="The sha256 of a source file (or sha256:HEX): records built from it.")
@click.option("--sortby", default=None, help="Comma-separated title, created, updated, layer, release, count, each with +/-.")
@click.option("--release", type=click.IntRange(min=1), default=None, help="The records of release N [default: the current one].")
@click.option("--all", "all_releases", is_flag=True, help="The records of every kept release.")
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The records as the API's GeoJSON FeatureCollection.")
def catalog(
    store_url: str | None,
    q: str | None,
    bbox: str | None,
    when: str | None,
    external_ids: tuple[str, ...],
    sortby: str | None,
    release: int | None,
    all_releases: bool,
    limit: int,
    as_json: bool,
) -> None:
    """The layer catalog: one record per layer and release, with where it came from."""
    if release is not None and all_releases:
        raise click.UsageError("give --release N or --all, not both")
    query = RecordQuery(
        terms=terms(q or ""),
        bbox=_bbox(bbox) if bbox else None,
        interval=_interval(when) if when else None,
        external_ids=tuple(v for e in external_ids for v in listed(e, "--external-id")),
        sortby=sort_keys(sortby) if sortby else (),
        limit=limit,
    )
    with open_store(store_url) as store:
        records, matched = select_records(store, query, release, all_releases)
    if as_json:
        doc = {"type": "FeatureCollection", "features": records, "numberMatched": matched, "numberReturned": len(records)}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=1))
        return
    _print(records, matched)


def _crs(uri: str) -> str:
    parts = uri.rstrip("/").split("/")
    return f"{parts[-3]}:{parts[-1]}" if len(parts) > 3 and parts[-3] == "EPSG" else parts[-1]


def _print(records: list[dict], matched: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Layer catalog: {len(records)} of {matched} records")
    for column in ("id", "title", "features", "crs", "sources (role, sha256)", "QA findings", "built"):
        table.add_column(column, justify="right" if column == "features" else "left", no_wrap=column in ("id", "built"))
    for r in records:
        p = r["properties"]
        lineage = p["lineage"]
        sources = "\n".join(
            f"{s['file']} ({s['role']}, {(s['sha256'] or '?')[:12]})" for s in lineage["sources"]
        ) or ("carried from r%s" % lineage["carriedFrom"] if "carriedFrom" in lineage else "-")
        count = "-" if p["featureCount"] is None else f"{p['featureCount']:,}"
        table.add_row(
            r["id"], p["title"], count, _crs(p["crs"]), sources, str(lineage["qa"]["findings"]), str(lineage["buildTime"])[:16].replace("T", " ")
        )
    Console().print(table)
