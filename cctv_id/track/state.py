"""Serialising a tracker's state for checkpoints, and reading it back safely.

The state (live tracks, tracks in the re-link window with their best-K samples and image
patches, trajectories, context frames as JPEG bytes, id counters) is pickled, but read back
with an unpickler that only rebuilds the few types a tracker state can hold — numpy arrays,
datetimes and this package's track records — so a tampered checkpoint in the database
cannot run code. Checkpoints written before trajectories and context frames existed still
load (those fields start empty).
"""

from __future__ import annotations

import io
import pickle

from ..config import TrackerConfig
from .tracker import FaceTracker

FORMAT = 1

_ALLOWED = {
    ("builtins", "tuple"), ("builtins", "list"), ("builtins", "dict"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "slice"), ("builtins", "complex"),
    ("datetime", "datetime"), ("datetime", "timezone"), ("datetime", "timedelta"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("cctv_id.track.tracker", "_LiveTrack"), ("cctv_id.types", "FaceSample"),
    ("cctv_id.types", "ContextFrame"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"checkpoint holds a forbidden type {module}.{name}")


def dump_tracker(tracker: FaceTracker) -> bytes:
    return pickle.dumps({"format": FORMAT, "state": tracker.state()}, protocol=5)


def load_tracker(data: bytes, cfg: TrackerConfig, fps: float, camera: str = "") -> FaceTracker:
    payload = _SafeUnpickler(io.BytesIO(data)).load()
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError("unsupported tracker checkpoint format")
    tracker = FaceTracker(cfg, fps, camera=camera)
    tracker.restore(payload["state"])
    return tracker
