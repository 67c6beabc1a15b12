"""Which dask.distributed cluster a build runs on, if any.

:func:`open_scale` (``cim build --workers N`` / ``--dask-scheduler ADDR``) connects a
:class:`~cim.build.distributed.Scale` and makes it active for the builds run inside it: the pipeline
asks :func:`active_scale` (a context variable) and hands its heavy steps to that scale; with none
active, a build is single-process. ``with use_scale(Scale(client)):`` does the same with a client
of the caller's own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from cim.build.distributed import Scale
from cim.build.partitions import DEFAULT_PARTITION_ROWS
from cim.build.progress import Progress
from cim.errors import BuildError

if TYPE_CHECKING:
    from distributed import Client

#: seconds to wait for an external scheduler
CONNECT_TIMEOUT = 20

_ACTIVE: ContextVar[Scale | None] = ContextVar("cim_build_scale", default=None)


def active_scale() -> Scale | None:
    """The scale the running build uses (see :func:`use_scale`), None for a single-process build."""
    return _ACTIVE.get()


@contextmanager
def use_scale(scale: Scale | None) -> Iterator[Scale | None]:
    """Builds run inside distribute their heavy steps with ``scale`` (None: single-process)."""
    token = _ACTIVE.set(scale)
    try:
        yield scale
    finally:
        _ACTIVE.reset(token)


@contextmanager
def connect(
    workers: int | None = None,
    scheduler: str | None = None,
    rows_per_partition: int = DEFAULT_PARTITION_ROWS,
    progress: Progress | None = None,
) -> Iterator[Scale]:
    """A :class:`Scale` on a new LocalCluster of ``workers`` single-threaded processes (shut down on
    exit), or on the running scheduler at ``scheduler``."""
    if (workers is None) == (scheduler is None):
        raise BuildError("give --workers or --dask-scheduler, not both")
    from distributed import Client, LocalCluster

    with ExitStack() as stack:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise BuildError(f"cannot connect to the dask scheduler {scheduler}: {exc}") from None
        else:
            # the build's own cluster: a worker slow to stop when it closes is killed, which is no news
            # for the user (on a loaded machine it made `cim build` print a nanny warning with its error)
            nanny = logging.getLogger("distributed.nanny")
            if not nanny.isEnabledFor(logging.DEBUG):
                nanny.setLevel(logging.ERROR)
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
                )
            )
            client = Client(cluster, set_as_default=False)
        stack.enter_context(client)
        if scheduler is None:
            stack.callback(_quiet_shutdown, client)  # runs first on exit: before the client and cluster close
        scale = Scale(client, rows_per_partition)
        if progress is not None:
            where = f"LocalCluster of {workers} processes" if scheduler is None else scheduler
            progress.message(f"dask: {where}, {scale.workers} workers, up to {rows_per_partition} features a partition")
        yield scale


def _quiet_worker_logs() -> None:
    """In a worker process of the build's own cluster: log only critical errors from now on."""
    for name in ("distributed.worker", "distributed.core", "distributed.comm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _quiet_shutdown(client: Client) -> None:
    """Before the build's own cluster closes: its workers' heartbeats may still hit the closing
    scheduler, and each such miss is logged with a traceback (a loaded machine made a failing
    `cim build --workers` print one above its one error line). The build's results are in by then."""
    try:
        client.run(_quiet_worker_logs, wait=True)
    except Exception:  # noqa: BLE001 - a worker already gone has nothing left to log
        pass


@contextmanager
def open_scale(
    workers: int | None = None,
    scheduler: str | None = None,
    rows_per_partition: int = DEFAULT_PARTITION_ROWS,
    progress: Progress | None = None,
) -> Iterator[Scale | None]:
    """:func:`connect`, and the scale active (:func:`use_scale`) until exit; None (a single-process
    build) when neither ``workers`` nor ``scheduler`` is given."""
    if workers is None and scheduler is None:
        yield None
        return
    with connect(workers, scheduler, rows_per_partition, progress) as scale, use_scale(scale):
        yield scale
