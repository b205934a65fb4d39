"""Threads that overlap the stages of a job, with bounded queues (backpressure).

``Prefetcher`` decodes ahead in its own thread (PyAV releases the GIL while decoding), so
decoding overlaps detection. ``SerialWorker`` runs submitted tasks one at a time, in order,
in a background thread: the archive job hands it recognition + storage of finished tracks
(with their checkpoint), so the detector never waits on the recogniser or the database.
A full queue blocks the producer; an error in the worker thread is re-raised in the
producer at its next call, so failures are never lost.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator

_END = object()


class Prefetcher:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead."""

    def __init__(self, items: Iterable, depth: int = 8, name: str = "prefetch"):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                if self._stop.is_set():
                    return
                self._put(("item", item))
            self._put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(("error", exc))

    def _put(self, entry) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator:
        while True:
            kind, value = self._queue.get()
            if kind == "item":
                yield value
            elif kind == "end":
                return
            else:
                raise value

    def close(self) -> None:
        """Stop the producer thread and wait for it (it may be blocked on a full queue)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.1)


class SerialWorker:
    """Run tasks in submission order in one background thread."""

    def __init__(self, depth: int = 4, name: str = "worker"):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._failed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is _END:
                    return
                if not self._failed:  # after a failure, later tasks are skipped
                    task()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producer
                self._failed = True
                self._error = exc
            finally:
                self._queue.task_done()

    @property
    def failed(self) -> bool:
        return self._failed

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, task: Callable[[], None]) -> None:
        self._raise()
        self._queue.put(task)

    def drain(self) -> None:
        """Wait until every submitted task has run; re-raise the first failure."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        self._queue.put(_END)
        self._thread.join()
