"""``cim warnings``: ingest CAP / GeoJSON warnings into a store and list them (docs/warnings.md).

Subcommands from other modules join the group here: ``follow`` (a CAP Atom/RSS feed,
cim/warnings/follow_command.py) and ``impact`` (what a warning touches, cim/warnings/impact_command.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from cim.errors import CIMError

#: the media type of a warning file, by suffix (anything else: sniffed from its first byte)
MEDIA_TYPES = {".xml": "application/cap+xml", ".cap": "application/cap+xml", ".json": "application/geo+json",
               ".geojson": "application/geo+json"}  # fmt: skip


@click.group("warnings")
def warnings() -> None:
    """Event warnings (CAP 1.2 alerts): ingest, follow a feed, list, impact."""


def _store_option(f):  # the same --store as every command (cim.cli.store_option), without importing cim.cli
    return click.option(
        "--store", "store_url", envvar="CIM_STORE", default=None,
        help="Store URL: postgresql://user@host:port/db or a path ending .duckdb [env CIM_STORE; default ./cim.duckdb]",
    )(f)  # fmt: skip


@warnings.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_store_option
def ingest_command(files: tuple[Path, ...], store_url: str | None) -> None:
    """Ingest CAP 1.2 XML (.xml) or GeoJSON (.json, .geojson) warning FILES, each on its own: one
    refused does not stop the others (exit status 1 if any was)."""
    from cim.store import open_store
    from cim.warnings.ingest import ingest

    refused = 0
    with open_store(store_url) as store:
        for path in files:
            try:
                result = ingest(store, path.read_bytes(), MEDIA_TYPES.get(path.suffix.lower()), who="cli")
            except CIMError as exc:
                refused += 1
                click.echo(f"{path}: refused ({exc.status}): {exc}", err=True)
                continue
            state = "stored" if result.created else "already stored"
            kinds = ", ".join(e.kind for e in result.events)
            click.echo(f"{path}: {result.identifier} {state} as feature {result.fid}" + (f" ({kinds})" if kinds else ""))
    if refused:
        raise SystemExit(1)


@warnings.command("list")
@click.option("--datetime", "when", default=None, help="An instant or interval (as the API's datetime); default: now.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@_store_option
def list_command(when: str | None, limit: int, store_url: str | None) -> None:
    """The warnings in force now (or valid at/over --datetime): fid, severity, expiry, headline."""
    from cim.store import FeatureQuery, open_store
    from cim.warnings.versions import LAYER

    interval = _interval(when) if when else None
    with open_store(store_url) as store:
        page = store.query(FeatureQuery(layer=LAYER, limit=limit, datetime=interval, skip_geometry=True,
                                        sortby=(("valid_from", True),)))  # fmt: skip
    for feature in page.features:
        p = feature["properties"]
        click.echo(f"{feature['id']:>6}  {p['severity'] or '-':<8} {p['colour'] or '-':<6} {p['state']:<9}"
                   f" until {p['valid_until'] or 'open':<32} {p['identifier']}  {p['headline'] or ''}")  # fmt: skip
    if not page.features:
        click.echo("no warnings" + (f" valid at {when}" if when else " in force now"))


def _interval(text: str):
    from datetime import date, datetime

    from cim.errors import BadInput
    from cim.store.sql.temporal import TimeInterval

    def moment(part: str):
        if part in ("", ".."):
            return None
        try:
            return datetime.fromisoformat(part) if "T" in part else date.fromisoformat(part)
        except ValueError:
            raise BadInput(f"--datetime: {part!r} is not an ISO 8601 date or date-time") from None

    if "/" in text:
        start, end = text.split("/", 1)
        return TimeInterval(moment(start), moment(end))
    at = moment(text)
    return TimeInterval(at, at)


def _register_optional() -> None:
    """Add ``follow`` and ``impact`` when their modules are installed."""
    for module, name in (("cim.warnings.follow_command", "follow_command"), ("cim.warnings.impact_command", "impact_command")):
        try:
            command = getattr(__import__(module, fromlist=[name]), name)
        except ImportError:
            continue
        warnings.add_command(command)


_register_optional()
