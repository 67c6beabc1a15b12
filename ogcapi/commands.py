"""``cim serve``: the OGC API over a store, with uvicorn."""

from __future__ import annotations

import click

from cim.cli import store_option

#: default of ``--grace``: within the 30 s orchestrators (Kubernetes, systemd) wait before SIGKILL
GRACE_SECONDS = 25.0


@click.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--url", "public_url", default=None, help="Public base URL for links [default: http://HOST:PORT].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="uvicorn worker processes.")
@click.option(
    "--grace", default=GRACE_SECONDS, show_default=True, type=click.FloatRange(min=0),
    help="On SIGTERM: seconds running requests may take to finish before they are cancelled.",
)  # fmt: skip
def serve(store_url: str | None, host: str, port: int, public_url: str | None, workers: int, grace: float) -> None:
    """Serve the store's current release over OGC API - Features.

    SIGTERM (or Ctrl-C) stops it gracefully: no new connections, running requests finish (up to
    --grace seconds), then it exits 0."""
    from ogcapi.app import create_app, settled
    from ogcapi.server import serve_one, serve_workers

    url = public_url or f"http://{host}:{port}"
    app = create_app(store_url, server_url=url)  # fails here, with a clear message, on a bad store
    click.echo(f"serving {app.state.store.url} at {url}  (layers: {', '.join(app.state.store.layer_names())})")
    if workers == 1:
        serve_one(settled(app), host, port, grace)
        return
    serve_workers(store_url, url, host, port, workers, grace)
