"""Which server process of a host publishes a channel to MQTT: the one holding an exclusive,
non-blocking ``flock`` on ``$CIM_LOCK_DIR`` (default: the temp directory)
``/cim-<channel>-<hash of the store URL>.lock``. The others try again every few seconds and take
over when the leader exits (the kernel frees the lock with its process)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from typing import IO

#: seconds between two attempts of :meth:`Leadership.take_when_free`
RETRY_SECONDS = 2.0


def lock_path(store_url: str, channel: str = "warnings") -> str:
    digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    return os.path.join(os.environ.get("CIM_LOCK_DIR") or tempfile.gettempdir(), f"cim-{channel}-{digest}.lock")


class Leadership:
    """An exclusive, non-blocking ``flock`` on a file named after the channel and the store URL."""

    def __init__(self, store_url: str, channel: str = "warnings") -> None:
        self.path = lock_path(store_url, channel)
        self._file: IO[bytes] | None = None
        self._next_try = 0.0

    @property
    def held(self) -> bool:
        return self._file is not None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = open(self.path, "ab")  # noqa: SIM115 (kept open while the lock is held)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def take_when_free(self, retry_seconds: float = RETRY_SECONDS) -> bool:
        """Try the lock, at most once every ``retry_seconds`` (a watcher calls this every round);
        True only on the call that took it."""
        if self._file is not None:
            return False
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + retry_seconds
        return self.try_acquire()

    def release(self) -> None:
        if self._file is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None


__all__ = ["RETRY_SECONDS", "Leadership", "lock_path"]
