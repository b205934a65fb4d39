"""Conversions between Python values and stored column values.

Owns the on-disk form of embeddings (little-endian float32 blobs plus their dimension) and
the validation of sha256 hex digests and bounding boxes before they are written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cctv_id.errors import StoreError


def _blob(vector: Any, what: str) -> tuple[bytes, int]:
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what}: expected a 1-D embedding, got shape {np.shape(vector)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: embedding has non-finite values")
    return arr.astype("<f4").tobytes(), int(arr.size)


def _unblob(data: bytes | None, dim: int | None) -> np.ndarray | None:
    if data is None:
        return None
    arr = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if dim is not None and arr.size != dim:
        raise StoreError(f"stored embedding has {arr.size} values, expected {dim}")
    return arr


def _sha256_or_none(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = str(value).strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{what} must be 64 hex digits, got {value!r}")
    return value


def _bbox(b) -> tuple[float, float, float, float] | None:
    if b is None:
        return None
    vals = [float(v) for v in b]
    if len(vals) != 4:
        raise ValueError(f"bbox must have 4 values, got {len(vals)}")
    return vals[0], vals[1], vals[2], vals[3]
