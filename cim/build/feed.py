"""Publishing while the build still checks: the store loads each layer as soon as it is final.

A layer's features are final once its primary source is read, reprojected, normalised and
deduplicated; what follows — reading its verifying sources and cross-checking them — only adds
QA records. So :func:`cim.build.pipeline.build` hands the store a :class:`ReleaseDraft` whose
``layers`` is a :class:`LayerFeed`, and the store (in a second thread, :class:`FeedPublisher`)
COPYs and indexes one layer while the pipeline cross-checks it and prepares the next. The
draft's checksums and QA summary are filled in before the feed ends, which is when the store reads
them (see ``Store.publish``), so the release becomes current only after every check has passed.

Failure either way leaves the current release as it was: a failing check ends the feed with the
error, and the store's loading loop raises :class:`FeedAborted` and so drops its staging schema or
file; a failing store makes the pipeline's next :meth:`LayerFeed.put` raise the store's error.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from cim.store import LayerData, ReleaseDraft, ReleaseInfo, Store

_END = object()


class FeedClosed(RuntimeError):
    """The consumer is gone (the store failed); the producer stops."""


class FeedAborted(RuntimeError):
    """Raised to the consumer (the store's loading loop) when the producer failed; its cause is the
    producer's error, which the producer's own thread goes on raising (untouched by the store)."""


class LayerFeed:
    """A one-pass iterator of layers, filled from another thread; ends with :meth:`close` or
    :meth:`fail` (which makes the consumer raise :class:`FeedAborted` from that error)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._consumer_error: BaseException | None = None
        self._lock = threading.Lock()

    # -- producer side -------------------------------------------------------------------------
    def put(self, layer: LayerData) -> None:
        self._raise_if_consumer_failed()
        self._queue.put(layer)

    def close(self) -> None:
        self._queue.put(_END)

    def fail(self, error: BaseException) -> None:
        self._queue.put(error)

    def _raise_if_consumer_failed(self) -> None:
        with self._lock:
            error = self._consumer_error
        if error is not None:
            raise FeedClosed(f"the store stopped loading: {error}") from error

    # -- consumer side -------------------------------------------------------------------------
    def consumer_failed(self, error: BaseException) -> None:
        with self._lock:
            self._consumer_error = error

    def __iter__(self) -> Iterator[LayerData]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise FeedAborted(f"the build stopped: {item}") from item
            yield item


class FeedPublisher:
    """Runs ``store.publish`` over a :class:`LayerFeed` in a worker thread."""

    def __init__(self, store: Store, draft: ReleaseDraft, keep: int | None) -> None:
        if not isinstance(draft.layers, LayerFeed):
            raise TypeError("FeedPublisher needs a draft whose layers are a LayerFeed")
        self.feed: LayerFeed = draft.layers
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cim-publish")
        self._future: Future[ReleaseInfo] = self._pool.submit(self._publish, store, draft, keep)

    def _publish(self, store: Store, draft: ReleaseDraft, keep: int | None) -> ReleaseInfo:
        try:
            return store.publish(draft, keep=keep)
        except BaseException as exc:
            self.feed.consumer_failed(exc)
            raise

    def finish(self) -> ReleaseInfo:
        """End the feed and wait for the release (re-raising the store's error)."""
        self.feed.close()
        try:
            return self._future.result()
        finally:
            self._pool.shutdown(wait=True)

    def abort(self, error: BaseException) -> None:
        """End the feed with ``error`` and wait until the store has cleaned up; the store's own
        error, if it failed first, is dropped in favour of ``error``."""
        self.feed.fail(error)
        try:
            self._future.result()
        except BaseException:  # noqa: S110 - FeedAborted (or the store's own earlier error): ``error`` is what is reported
            pass
        finally:
            self._pool.shutdown(wait=True)


#: the interpreter's thread switch interval while both threads run (CPython's default: 5 ms)
SWITCH_INTERVAL_S = 0.001


def publishing(store: Store, draft: ReleaseDraft, keep: int | None, work: Callable[[LayerFeed], None]) -> ReleaseInfo:
    """Publish ``draft`` (whose layers are a fresh LayerFeed) while ``work(feed)`` fills the feed.

    Both threads are busy — the checks, and the store's WKB and Arrow encoding — and each often
    lets the GIL go for a C call (GEOS, PROJ, libpq); at CPython's default switch interval it then
    waited up to 5 ms to get it back. With 1 ms the 1,000,000-footprint build took 17.5 s, not 19."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    publisher = FeedPublisher(store, draft, keep)
    try:
        work(publisher.feed)
    except FeedClosed:
        return publisher.finish()  # raises the store's error
    except BaseException as exc:
        publisher.abort(exc)
        raise
    finally:
        sys.setswitchinterval(previous)
    return publisher.finish()
