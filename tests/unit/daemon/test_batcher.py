"""The cross-camera micro-batcher, with the real recogniser (the teacher's torch port)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cctv_id.config import RecognizerConfig
from cctv_id.daemon.batcher import BatchedEncoder, MicroBatcher, batched
from cctv_id.recognize.base import build_encoder, build_small_face_encoder


@pytest.fixture(scope="module")
def encoder():
    return build_encoder(RecognizerConfig(backend="dlib-torch", small_faces=None))


def _chips(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 150, 150, 3), dtype=np.uint8)


def test_concurrent_calls_share_batches_and_get_their_own_rows(encoder):
    batcher = MicroBatcher(max_batch=64, max_wait_ms=200)
    wrapped = BatchedEncoder(encoder, batcher)
    inputs = {k: _chips(3 + k, seed=k) for k in range(4)}  # four "cameras"
    out: dict[int, np.ndarray] = {}
    start = threading.Barrier(4)

    def camera(k):
        start.wait()
        out[k] = wrapped.embed_chips(inputs[k]).vectors

    threads = [threading.Thread(target=camera, args=(k,)) for k in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    batcher.close()
    assert batcher.stats.calls == 4
    assert batcher.stats.batches < 4  # calls from several threads went through one pass
    assert batcher.stats.faces == sum(len(c) for c in inputs.values())
    for k, chips in inputs.items():
        direct = encoder.embed_chips(chips).vectors
        np.testing.assert_allclose(out[k], direct, atol=1e-4)
    assert wrapped.name == encoder.name and wrapped.dim == encoder.dim


def test_max_batch_splits_and_errors_reach_only_their_callers(encoder):
    batcher = MicroBatcher(max_batch=4, max_wait_ms=50)
    wrapped = BatchedEncoder(encoder, batcher)
    futures = [batcher.submit(encoder, _chips(2, seed=k)) for k in range(4)]
    bad = batcher.submit(encoder, np.zeros((1, 10, 10, 3), np.uint8))  # wrong chip size
    assert all(f.result(60).vectors.shape == (2, 128) for f in futures)
    with pytest.raises(ValueError):
        bad.result(60)
    assert batcher.stats.max_batch_seen <= 4 + 2  # a batch stops filling at max_batch
    assert wrapped.embed_chips(_chips(1, seed=9)).vectors.shape == (1, 128)  # still serving
    batcher.close()
    with pytest.raises(RuntimeError):
        batcher.submit(encoder, _chips(1, seed=1))


def test_routed_recogniser_keeps_routing_through_the_batcher():
    routed = build_small_face_encoder(RecognizerConfig(backend="dlib-torch"))
    batcher = MicroBatcher(max_batch=16, max_wait_ms=5)
    wrapped = batched(routed, batcher)
    assert wrapped.encoder_for(8).name == routed.small.name
    assert wrapped.encoder_for(40) is wrapped.large
    assert wrapped.component_sha256s == routed.component_sha256s
    batcher.close()
