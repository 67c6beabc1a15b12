"""``cim processes``: list, describe and execute the processes (OGC API – Processes) on a store, without a
server (docs/processes.md).

- ``cim processes list``: id, domain, sync/async, role and title of each process;
- ``cim processes describe ID``: its description (JSON, as ``GET /processes/{id}``);
- ``cim processes execute ID --inputs JSON|@file [--output NAME ...] [--async]``: the inputs checked as
  the server checks them (cim/processes/validate.py); the outputs printed as JSON (``{outputId: value}``,
  or the value itself with ``--raw`` and one output). With ``--async`` the execution is a job recorded in
  the store (so a server on the store lists it: ``GET /jobs/{id}``, and may dismiss it): its id goes to
  stderr at once, this command runs it (a job's worker dies with the process that started it) and prints
  its final ``statusInfo``; exit 1 unless it succeeded. Ctrl-C dismisses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cim.errors import BadInput


@click.group("processes")
def processes_group() -> None:
    """CIM+ analyses as OGC API processes: list, describe, execute."""


def _store_option(f):  # the same --store as every command (cim.cli.store_option), without importing cim.cli
    return click.option(
        "--store", "store_url", envvar="CIM_STORE", default=None,
        help="Store URL: postgresql://user@host:port/db or a path ending .duckdb [env CIM_STORE; default ./cim.duckdb]",
    )(f)  # fmt: skip


@processes_group.command("list")
def list_command() -> None:
    """The processes: id, domain, execution, role, title."""
    from cim.processes import processes

    for pid, process in processes().items():
        execution = "sync+async" if process.sync else "async"
        click.echo(f"{pid:22s} {process.domain:16s} {execution:10s} {process.role or '-':8s} {process.title}")


@processes_group.command("describe")
@click.argument("process_id", metavar="ID")
def describe_command(process_id: str) -> None:
    """The description of process ID (inputs and outputs as JSON Schema)."""
    from cim.processes import get_process

    click.echo(json.dumps(get_process(process_id).description_document(), indent=2, ensure_ascii=False))


def _read_inputs(text: str) -> object:
    """``--inputs``: JSON text, or ``@path`` of a JSON file; either the inputs object or a whole execute
    request (with ``inputs``)."""
    from cim.processes.validate import load_body

    if text.startswith("@"):
        path = Path(text[1:])
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"--inputs: cannot read {path}: {exc.strerror}") from None
    else:
        raw = text.encode()
    body = load_body(raw)
    if isinstance(body, dict) and "inputs" in body:
        return body
    return {"inputs": body}


@processes_group.command("execute")
@click.argument("process_id", metavar="ID")
@click.option("--inputs", "inputs_text", default="{}", show_default=True, help="The inputs as JSON, or @file.json.")
@click.option("--output", "outputs", multiple=True, metavar="NAME", help="Only this output (repeatable).")
@click.option("--raw", is_flag=True, help="With one output: print its value alone.")
@click.option("--async", "as_job", is_flag=True, help="Submit a job to the store's job runner instead of running here.")
@_store_option
def execute_command(process_id: str, inputs_text: str, outputs: tuple[str, ...], raw: bool, as_job: bool, store_url: str | None) -> None:
    """Execute process ID on the store's current release and print the results as JSON."""
    from cim.processes import get_process
    from cim.processes.execute import run
    from cim.processes.validate import parse_execute
    from cim.store import open_store

    process = get_process(process_id)
    body = _read_inputs(inputs_text)
    if outputs:
        body = {**body, "outputs": {name: {} for name in outputs}}  # type: ignore[dict-item]
    request = parse_execute(process, body)
    with open_store(store_url) as store:
        if as_job:
            _run_job(store, process, request)
            return
        results = run(store, process, request)
    shown: object = next(iter(results.values())) if raw and len(results) == 1 else results
    click.echo(json.dumps(shown, indent=2, ensure_ascii=False, default=str))


def _run_job(store: object, process: object, request: object) -> None:
    """Submit a job, run it here until it ends, print its final statusInfo (exit 1 unless successful)."""
    import time

    from cim.processes import runner

    job = runner.submit(store, process, request, "cli")  # type: ignore[arg-type]
    click.echo(f"job {job.job_id} accepted", err=True)
    local = runner.runner(store)
    try:
        while not local.idle():
            time.sleep(0.2)
    except KeyboardInterrupt:
        runner.dismiss(store, job.job_id)
        raise
    final = store.jobs().get(job.job_id)  # type: ignore[attr-defined]
    click.echo(json.dumps(final.status_info(), indent=2, ensure_ascii=False))
    if final.status != "successful":
        raise SystemExit(1)
