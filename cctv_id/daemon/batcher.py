"""One micro-batcher shared by every camera: face chips from all cameras, one forward pass.

Camera workers call ``BatchedEncoder.embed`` (a drop-in ``FaceEncoder`` stand-in) from their
own threads; the calls queue here, and one thread collects them for up to ``max_wait_ms``
(or until ``max_batch`` faces are waiting), concatenates the chips of each recogniser and
embeds them in one call, then hands every caller its own rows back. N cameras thus cost one
batched pass per tick instead of N small ones. A recogniser error reaches the callers whose
faces were in that batch; the batcher itself keeps running.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ..types import Embeddings, FaceCrops


@dataclass
class _Request:
    encoder: object  # the real FaceEncoder
    chips: np.ndarray
    future: Future


@dataclass
class BatcherStats:
    calls: int = 0  # embed() calls served
    batches: int = 0  # recogniser passes run
    faces: int = 0
    max_batch_seen: int = 0

    @property
    def mean_batch(self) -> float:
        return self.faces / self.batches if self.batches else 0.0


class MicroBatcher:
    def __init__(self, max_batch: int = 32, max_wait_ms: float = 20.0):
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max(0.0, float(max_wait_ms)) / 1000.0
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self.stats = BatcherStats()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._closed = False
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting (for metrics)."""
        return self._queue.qsize()

    def submit(self, encoder, chips: np.ndarray) -> Future:
        if self._closed:
            raise RuntimeError("the micro-batcher is closed")
        fut: Future = Future()
        self._queue.put(_Request(encoder, np.asarray(chips), fut))
        return fut

    def close(self, timeout: float = 5.0) -> None:
        """Serve what is queued, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the batching thread
    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        batch, faces = [first], len(first.chips)
        deadline = time.monotonic() + self.max_wait_s
        while faces < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(0.0, remaining)) if remaining > 0 \
                    else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            faces += len(item.chips)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch, stop = self._collect(first)
            groups: dict[int, list[_Request]] = {}
            for req in batch:
                groups.setdefault(id(req.encoder), []).append(req)
            for reqs in groups.values():
                self._serve(reqs)
        # serve anything that slipped in after the stop marker
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._serve([item])

    def _serve(self, reqs: list[_Request]) -> None:
        encoder = reqs[0].encoder
        chips = np.concatenate([r.chips for r in reqs], axis=0)
        try:
            vectors = encoder.embed_chips(chips).vectors if len(chips) else \
                np.zeros((0, encoder.dim), np.float32)
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of this batch
            for r in reqs:
                r.future.set_exception(exc)
            return
        self.stats.calls += len(reqs)
        self.stats.batches += 1
        self.stats.faces += len(chips)
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(chips))
        start = 0
        for r in reqs:
            n = len(r.chips)
            r.future.set_result(Embeddings(vectors[start:start + n], encoder.name))
            start += n


class BatchedEncoder:
    """A recogniser whose ``embed`` goes through the shared ``MicroBatcher``; everything
    else (name, dim, align_spec, model_sha256, batch_size) is the wrapped recogniser's."""

    def __init__(self, inner, batcher: MicroBatcher):
        self._inner = inner
        self._batcher = batcher

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def embed(self, crops: FaceCrops) -> Embeddings:
        return self.embed_chips(crops.images)

    def embed_chips(self, chips: np.ndarray) -> Embeddings:
        return self._batcher.submit(self._inner, chips).result()


class BatchedRoutedEncoder(BatchedEncoder):
    """A size-routed recogniser (``recognize.routed``) with both of its recognisers batched."""

    def __init__(self, inner, batcher: MicroBatcher):
        super().__init__(inner, batcher)
        self.large = BatchedEncoder(inner.large, batcher)
        self.small = BatchedEncoder(inner.small, batcher)

    def encoder_for(self, face_px: float):
        return self.small if self._inner.encoder_for(face_px) is self._inner.small else self.large

    def embed_chips(self, chips: np.ndarray) -> Embeddings:  # photos: the large recogniser
        return self.large.embed_chips(chips)


def batched(encoder, batcher: MicroBatcher):
    """``encoder`` with its embedding calls going through ``batcher``."""
    if hasattr(encoder, "encoder_for"):
        return BatchedRoutedEncoder(encoder, batcher)
    return BatchedEncoder(encoder, batcher)
