"""insightface's verification pair files (``lfw.bin``, ``agedb_30.bin``, ``cfp_fp.bin``, ...).

Owns reading and writing the format: a pickle of ``(bins, issame_list)``, ``bins`` holding the
encoded images (JPEG/PNG) of every pair, its two images consecutive, ``issame_list`` one bool
per pair. The published files were written by Python 2, so their byte strings load with
``encoding="bytes"``; some re-exports hold numpy uint8 arrays instead of byte strings.

Pickles can run code, and these files come from third-party mirrors: they are unpickled
with an allow-list that admits only numpy arrays and scalars besides plain Python data.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

# (module, name) globals that a pickle of byte strings / numpy arrays / bools may reference
_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy", "bool_"),
    ("_codecs", "encode"),  # how protocol <= 2 spells a Python 3 bytes object
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("numpy.core"):  # numpy < 2 (and Python 2) spelling
            module = "numpy._core" + module[len("numpy.core") :]
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _as_bytes(item: object) -> bytes:
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if isinstance(item, np.ndarray):
        return item.astype(np.uint8, copy=False).tobytes()
    if isinstance(item, str):  # a Python 2 str read back with encoding="latin1"
        return item.encode("latin1")
    raise TypeError(f"unexpected {type(item).__name__} among the images")


def _unpickle(data: bytes, path: Path) -> tuple[Sequence, Sequence]:
    failure: Exception | None = None
    for encoding in ("bytes", "latin1"):  # latin1: Python 2 pickles of numpy arrays need it
        try:
            loaded = _Unpickler(io.BytesIO(data), encoding=encoding).load()
            break
        except pickle.UnpicklingError as exc:
            if "refusing" in str(exc):
                raise InputError(f"{path} is not a verification .bin: {exc}") from None
            failure = exc
        except Exception as exc:  # pickle raises nearly anything on malformed input
            failure = exc
    else:
        raise InputError(f"{path} is not a verification .bin (unreadable pickle: {failure})") from None
    if not (isinstance(loaded, (tuple, list)) and len(loaded) == 2):
        raise InputError(f"{path} is not a verification .bin: expected a pickled (bins, issame_list) pair")
    return loaded[0], loaded[1]


def load_verification_bin(path: str | os.PathLike) -> tuple[list[np.ndarray], np.ndarray]:
    """The decoded images (BGR uint8, pair ``k`` = images ``2k`` and ``2k+1``) and ``issame``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"verification file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    bins, issame_list = _unpickle(data, path)
    try:
        issame = np.asarray(issame_list, dtype=bool).ravel()
        encoded = [_as_bytes(b) for b in bins]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path} is not a verification .bin: {exc}") from None
    if len(encoded) != 2 * len(issame):
        raise InputError(f"{path} holds {len(encoded)} images for {len(issame)} pairs (needs exactly 2 per pair)")
    images = []
    for i, blob in enumerate(encoded):
        image = cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_COLOR) if blob else None
        if image is None:
            raise InputError(f"{path}: image {i} (pair {i // 2}) is not a decodable JPEG/PNG")
        images.append(image)
    return images, issame


def write_verification_bin(path: str | os.PathLike, encoded_images: list[bytes], issame: list[bool]) -> None:
    """Write pairs in insightface's layout (pickle protocol 4: compact, Python 3 readers only)."""
    if len(encoded_images) != 2 * len(issame):
        raise ValueError(f"{len(encoded_images)} images for {len(issame)} pairs: need exactly 2 per pair")
    payload = ([bytes(b) for b in encoded_images], [bool(s) for s in issame])
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(payload, f, protocol=4)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
