"""``cim warnings follow URL``: follow a CAP Atom/RSS feed into the store's warnings layer.

Registered by the ``cim warnings`` group (cim/warnings/...); one line per document:
``<identifier>: created (feature N)``, ``unchanged``, or ``refused: <why>``."""

from __future__ import annotations

import re
import threading

import click

from cim.errors import CIMError

# the same option as cim.cli.store_option, declared here so that cim/cli.py may import this module
store_option = click.option(
    "--store",
    "store_url",
    envvar="CIM_STORE",
    default=None,
    help="Store URL: postgresql://user@host:port/db or a path ending .duckdb [env CIM_STORE; default ./cim.duckdb]",
)

_IDENTIFIER = re.compile(rb"<(?:\w+:)?identifier>\s*([^<\s]{1,200})\s*</", re.IGNORECASE)


def _identifier_of(document: bytes) -> str:
    """The identifier a (possibly refused) document names, for the report line."""
    match = _IDENTIFIER.search(document[:65536])
    return match.group(1).decode("utf-8", "replace") if match else "(no identifier)"


@click.command("follow")
@click.argument("url")
@click.option(
    "--interval",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Seconds between polls of the feed.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the feed or a document.",
)
@click.option("--once", is_flag=True, help="Poll once, ingest what is new, and exit.")
@store_option
def follow_command(url: str, interval: float, timeout: float, once: bool, store_url: str | None) -> None:
    """Follow the CAP feed at URL (Atom or RSS 2.0): poll it with conditional GETs and ingest each
    new entry's CAP document into the warnings layer. Stops with Ctrl-C (or after one poll with
    --once). A document that is refused is reported and skipped; with --once, the exit status is 1
    when the feed could not be read or a document was refused."""
    from cim.store import open_store
    from cim.warnings.feed import FeedFollower, follow
    from cim.warnings.ingest import ingest

    follower = FeedFollower(url, timeout=timeout)  # a bad URL fails here, before the loop
    refused = 0

    def handle(document: bytes) -> None:
        nonlocal refused
        try:
            result = ingest(store, document, "application/cap+xml", who=f"feed:{url}")
        except CIMError as exc:
            if exc.status >= 500:
                click.echo(f"{_identifier_of(document)}: not stored yet ({exc}); will retry", err=True)
                raise
            refused += 1
            click.echo(f"{_identifier_of(document)}: refused: {exc}")
            return
        identifier = getattr(result, "identifier", "") or _identifier_of(document)
        state = f"created (feature {result.fid})" if result.created else f"unchanged (feature {result.fid})"
        click.echo(f"{identifier}: {state}")

    stop = threading.Event()
    try:
        with open_store(store_url) as store:
            follow(url, handle, interval, stop, timeout=timeout, once=once, follower=follower)
    except KeyboardInterrupt:
        stop.set()
    finally:
        follower.close()
    if once and refused:
        raise SystemExit(1)
