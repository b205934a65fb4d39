"""Evidence files under ``data_dir``: the best-shot crop of each stored track.

Crops are written to a temporary name and renamed into place, so a reader never sees a
half-written JPEG. Paths stored in the database are relative to ``data_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from ..errors import CctvIdError
from ..types import Track


class EvidenceWriter:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    def crop_relpath(self, run_id: int, track_id: int) -> str:
        return f"crops/run{run_id:06d}/track{track_id:06d}.jpg"

    def save_best_shot(self, run_id: int, track: Track) -> str | None:
        if not track.best:
            return None
        rel = self.crop_relpath(run_id, track.track_id)
        path = self.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", track.best[0].patch, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            return None
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(buf.tobytes())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CctvIdError(f"cannot write evidence crop {path}: {exc.strerror or exc}") from exc
        return rel
