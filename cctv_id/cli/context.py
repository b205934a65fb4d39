"""What every command shares: resolved configuration, database and model objects.

Everything is built lazily, so ``cctv-id --help`` and config validation stay fast and a
command only loads the models it uses. Precedence for the database URL: ``--db``, then
``CCTV_ID_DB``, then ``db:`` in the config file, then a SQLite file in the user's data
folder. ``data_dir`` defaults to a folder beside a SQLite file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import AppConfig, build_config

DEFAULT_HOME = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "cctv-id"


def default_db_url() -> str:
    return f"sqlite:///{DEFAULT_HOME / 'cctv-id.db'}"


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix):] not in ("", ":memory:"):
        return Path(url[len(prefix):])
    return None


@dataclass
class AppContext:
    db_option: str | None = None
    config_file: str | None = None
    debug: bool = False
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    default_preset: str = "archive"  # when neither the command nor the config file names one
    operator_option: str | None = None
    _cfg: AppConfig | None = None
    _repo: Any = None
    _encoder: Any = None

    # ---------------------------------------------------------------- configuration
    def config(self) -> AppConfig:
        if self._cfg is None:
            config_file = self.config_file or os.environ.get("CCTV_ID_CONFIG") or None
            self._cfg = build_config(config_file, preset=self.preset, overrides=self.overrides,
                                     default_preset=self.default_preset)
        return self._cfg

    def reconfigure(self, preset: str | None = None, overrides: dict | None = None) -> AppConfig:
        """Apply a command's preset and flag overrides; returns the validated config."""
        self.preset = preset
        self.overrides = overrides or {}
        self._cfg = None
        return self.config()

    def db_url(self) -> str:
        return self.db_option or os.environ.get("CCTV_ID_DB") or self.config().db or default_db_url()

    def data_dir(self) -> Path:
        cfg = self.config()
        if cfg.data_dir:
            return Path(cfg.data_dir).expanduser()
        path = sqlite_path(self.db_url())
        if path is not None:
            return path.with_name(path.stem + "-data")
        return DEFAULT_HOME / "data"

    @property
    def operator(self) -> str:
        """Who is acting, for the audit log: ``--operator``, else the OS user."""
        if self.operator_option and self.operator_option.strip():
            return self.operator_option.strip()
        from ..store.audit import default_operator

        return default_operator()

    # ---------------------------------------------------------------- components
    def repo(self):
        if self._repo is None:
            from ..store.repository import Repository

            cfg = self.config()
            self._repo = Repository(self.db_url(), retry_seconds=cfg.db_retry_seconds,
                                    busy_timeout_s=cfg.db_busy_timeout_s)
        return self._repo

    def detector(self, camera: str | None = None, **changes):
        from ..config import camera_detector_config
        from ..detect.base import build_detector
        from ..detect.gated import GatedDetector

        dcfg = camera_detector_config(self.config(), camera)
        if changes:
            dcfg = dcfg.model_copy(update=changes)
        # one GatedDetector per camera: detect() is a full pass (photos), detect_frame()
        # gates video frames by motion and live tracks
        return GatedDetector(build_detector(dcfg), dcfg)

    def encoder(self):
        if self._encoder is None:
            from ..recognize.base import build_small_face_encoder

            self._encoder = build_small_face_encoder(self.config().recognizer)
        return self._encoder

    def bands(self, encoder):
        from ..decide import apply_overrides
        from ..recognize.manifest import thresholds_for

        dcfg = self.config().decision
        if hasattr(encoder, "threshold_bands"):  # routed by face size
            bands = encoder.threshold_bands(dcfg.target_fmr)
        else:
            bands = thresholds_for(encoder.name, dcfg.target_fmr)
        return apply_overrides(bands, dcfg.thresholds)

    def close(self) -> None:
        if self._repo is not None:
            close = getattr(self._repo, "close", None)
            if close:
                close()
