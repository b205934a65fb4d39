"""Serialising a tracker's state for checkpoints, and reading it back safely.

The state (live tracks, tracks in the re-link window with their best-K samples and image
patches, trajectories, context frames as JPEG bytes, id counters) is pickled, but read back
with an unpickler that only rebuilds the few types a tracker state can hold — numpy arrays,
datetimes and this package's track records — so a tampered checkpoint in the database
cannot run code. Checkpoints written before trajectories and context frames existed still
load (those fields start empty). A checkpoint may also carry the motion-gated detector's
stream state (plain arrays and numbers); older ones without it resume with a fresh one.
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


def dump_tracker(tracker: FaceTracker, detector_state: dict | None = None) -> bytes:
    """The tracker's state, with the detector's stream state (``GatedDetector.state()``:
    its background model, what it examined, when it last did a full pass) when given, so a
    resumed run gates detection exactly as the uninterrupted run would have."""
    payload = {"format": FORMAT, "state": tracker.state()}
    if detector_state is not None:
        payload["detector"] = detector_state
    return pickle.dumps(payload, protocol=5)


def load_checkpoint(data: bytes, cfg: TrackerConfig, fps: float, camera: str = ""
                    ) -> tuple[FaceTracker, dict | None]:
    """The tracker of a checkpoint and the detector state saved with it (None in older
    checkpoints), from one read of the bytes."""
    payload = _SafeUnpickler(io.BytesIO(data)).load()
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError("unsupported tracker checkpoint format")
    tracker = FaceTracker(cfg, fps, camera=camera)
    tracker.restore(payload["state"])
    return tracker, payload.get("detector")


def load_tracker(data: bytes, cfg: TrackerConfig, fps: float, camera: str = "") -> FaceTracker:
    return load_checkpoint(data, cfg, fps, camera)[0]
