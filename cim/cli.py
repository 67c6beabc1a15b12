"""The ``cim`` command line.

Core commands live here; the packages above ``cim`` (``layers``, ``tiles``, ``ogcapi``) contribute
theirs through the ``cim.commands`` entry point, so the core never imports them. Errors the user
can act on print as one line (``error: ...``) and exit 1 — never a traceback.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path
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
        conflicts = store.edit_conflicts() if rows else []
        if conflicts:
            click.echo(f"{len(conflicts)} edit(s) not applied to the current release (their feature is not in it):")
        for c in conflicts:
            click.echo(f"  {c.layer}  {c.action}  source={c.source!r} source_id={c.source_id!r}: {c.reason}")


@releases.command()
@click.argument("number", type=int)
@click.pass_obj
def rollback(store_url: str | None, number: int) -> None:
    """Make release NUMBER current again."""
    with open_store(store_url) as store:
        info = store.set_current(number)
    click.echo(f"release {info.number} is current")


@cli.command("build")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@store_option
@click.option("--keep", type=click.IntRange(min=1), default=None, help="Keep at most N releases [default: the config's keep, else all].")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Directory for the QA report (qa.json, qa.md) [default: <config stem>.qa/ beside CONFIG].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Run the heavy steps on a local dask cluster of N worker processes (see docs/build-config.md).",
)
@click.option(
    "--dask-scheduler",
    "scheduler",
    metavar="ADDR",
    default=None,
    help="Run the heavy steps on the dask.distributed scheduler at ADDR, e.g. tcp://10.0.0.5:8786.",
)
@click.option(
    "--partition-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Features per spatial partition of a distributed build; smaller sources stay in-process [default: 25000].",
)
@click.option(
    "--full",
    is_flag=True,
    default=False,
    help="Read and load every layer; without it a layer whose sources and config are unchanged since the current release is carried over.",
)
def build_command(
    config: Path,
    store_url: str | None,
    keep: int | None,
    report_dir: Path | None,
    workers: int | None,
    scheduler: str | None,
    partition_rows: int | None,
    full: bool,
) -> None:
    """Build the base map from the sources named in CONFIG (YAML) and publish it as the next release."""
    from cim.build import build, load_config
    from cim.build.cluster import open_scale
    from cim.build.partitions import DEFAULT_PARTITION_ROWS
    from cim.build.progress import make_progress

    if workers is not None and scheduler is not None:
        raise click.UsageError("give --workers or --dask-scheduler, not both")
    if workers is not None or scheduler is not None:
        import distributed  # noqa: F401  (on import it logs its cluster's every start and stop at INFO)

        verbose = logging.getLogger("cim").isEnabledFor(logging.DEBUG)
        logging.getLogger("distributed").setLevel(logging.DEBUG if verbose else logging.WARNING)
    settings = load_config(config)
    report_dir = report_dir or config.with_name(f"{config.stem}.qa")
    rows = partition_rows or DEFAULT_PARTITION_ROWS
    with (
        open_store(store_url) as store,
        make_progress(sys.stdout.isatty(), emit=click.echo) as progress,
        open_scale(workers, scheduler, rows, progress),
    ):
        result = build(settings, store, progress=progress, keep=keep, report_dir=report_dir, full=full)
    counts = ", ".join(f"{name} {n}" for name, n in result.report.features.items())
    click.echo(f"release {result.release.number} is current: {counts}")
    click.echo(f"QA: {len(result.report.records)} findings; report in {report_dir / 'qa.md'}")


def run_command(name: str, **params: Any) -> Any:
    """Invoke another ``cim`` command (core or plug-in) by name, e.g. ``demo`` invoking ``serve``."""
    ctx = click.get_current_context()
    command = cli.get_command(ctx, name)
    if command is None:
        raise CIMError(f"command {name!r} is not installed")
    return ctx.invoke(command, **params)


def _add_warnings() -> None:
    from cim.warnings.commands import warnings

    cli.add_command(warnings)


def _add_processes() -> None:
    from cim.processes.commands import processes_group

    cli.add_command(processes_group)


_add_warnings()
_add_processes()


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
