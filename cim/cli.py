"""The ``cim`` command line.

Core commands live here; the packages above ``cim`` (``layers``, ``tiles``, ``ogcapi``) contribute
theirs through the ``cim.commands`` entry point, so the core never imports them. Errors the user
can act on print as one line (``error: ...``) and exit 1 — never a traceback.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points
from typing import Any

import click

from cim.errors import CIMError
from cim.store import open_store, resolve_url

store_option = click.option(
    "--store",
    "store_url",
    envvar="CIM_STORE",
    default=None,
    help="Store URL: postgresql://user@host:port/db or a path ending .duckdb [env CIM_STORE; default ./cim.duckdb]",
)


class PluginGroup(click.Group):
    """A group whose commands also come from the ``cim.commands`` entry points, loaded on use."""

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group="cim.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._plugins():
            command = self._plugins()[name].load()
        return command


@click.group(cls=PluginGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(verbose: bool) -> None:
    """cim-basemap: build a city's CIM base map and serve it over OGC APIs."""
    # our own progress at INFO; libraries (pygeoapi, pyrosm...) only when they warn, unless --verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for ours in ("cim", "layers", "tiles", "ogcapi"):
        logging.getLogger(ours).setLevel(logging.DEBUG if verbose else logging.INFO)


@cli.group(invoke_without_command=True)
@store_option
@click.pass_context
def releases(ctx: click.Context, store_url: str | None) -> None:
    """List the releases of a store (the current one is marked *)."""
    ctx.obj = store_url
    if ctx.invoked_subcommand is not None:
        return
    with open_store(store_url) as store:
        rows = store.releases()
        if not rows:
            click.echo(f"{resolve_url(store_url)}: no releases yet")
        for r in rows:
            mark = "*" if r.current else " "
            click.echo(f"{mark} {r.number:4d}  {r.created:%Y-%m-%d %H:%M:%S}  {', '.join(r.layers)}")


@releases.command()
@click.argument("number", type=int)
@click.pass_obj
def rollback(store_url: str | None, number: int) -> None:
    """Make release NUMBER current again."""
    with open_store(store_url) as store:
        info = store.set_current(number)
    click.echo(f"release {info.number} is current")


def run_command(name: str, **params: Any) -> Any:
    """Invoke another ``cim`` command (core or plug-in) by name, e.g. ``demo`` invoking ``serve``."""
    ctx = click.get_current_context()
    command = cli.get_command(ctx, name)
    if command is None:
        raise CIMError(f"command {name!r} is not installed")
    return ctx.invoke(command, **params)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="cim", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CIMError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
