"""Configuration: pydantic v2 models (unknown keys rejected), presets and merging.

Order of precedence, lowest first: built-in defaults, a pipeline preset
(``pipelines/<name>.yaml``), the deployment file (``config.yaml`` or ``--config``),
then command-line flags. No heavy imports here: validating a config must be fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINES_DIR = REPO_ROOT / "pipelines"
WEIGHTS_DIR = REPO_ROOT / "weights"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MotionConfig(_Strict):
    """Motion gating of the expensive (upscaled) detection on fixed cameras.

    Detection runs only where the picture changed (a running-average background model on a
    small grey copy of the frame) or where a live track is expected, plus a periodic
    refresh of whatever changed since detection last looked there and a rarer complete
    full-frame pass, so that still faces are found too. Set ``enabled: false`` for moving
    (PTZ, handheld) cameras: ``cameras.<name>.detector.motion.enabled``.
    """

    enabled: bool = True
    analysis_width: int = Field(320, ge=16)  # motion is computed on a grey downscale this wide
    threshold: int = Field(18, ge=1, le=255)  # grey-level difference that counts as change
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)  # running-average background update
    min_area_px: float = Field(16.0, ge=0.0)  # smaller changed regions (full-frame px) ignored
    # every ROI grows by at least pad_px per side, track ROIs by at least pad_face_sizes face
    # heights. Against 24 px / 1.0 / margin 1.5 these give the same recall in every band,
    # crops around 12-30 px faces of 96-128 px instead of 160-224 and -20 to -40 % detection
    pad_px: float = Field(16.0, ge=0.0)
    pad_face_sizes: float = Field(0.5, ge=0.0)
    # every refresh_every_s the picture is compared with what detection last examined there;
    # what changed since (a face that arrived too slowly to count as motion, one that stopped
    # where no pass looked) is searched; 0 = on every frame
    refresh_every_s: float = Field(2.0, ge=0.0)
    full_pass_every_s: float = Field(30.0, ge=0.0)  # complete full-frame pass; 0 = every frame
    max_roi_fraction: float = Field(0.6, gt=0.0, le=1.0)  # larger ROI union: full pass instead
    track_margin_face_sizes: float = Field(0.75, ge=0.0)  # track ROIs: + centre search margin
    # a confirmed track whose last sighting was where it was predicted is searched on every
    # Nth detection round only (the tracker carries it between; changes inside its crop wait
    # for its round too); 1 = every track on every round
    track_search_every: int = Field(1, ge=1)
    # crops around live tracks whose faces are at least this tall (detector box px; the
    # native pass alone finds >= 98 % of such faces on the street composite) get the native
    # pass alone; motion no such track explains still gets the full enlargement; 0 = never
    native_track_px: float = Field(40.0, ge=0.0)


class DetectorConfig(_Strict):
    backend: str = "retinaface"
    model_path: str | None = None  # folder of a user-supplied model pack, or an .onnx file
    score_threshold: float = Field(0.5, ge=0.0, le=1.0)
    nms_iou: float = Field(0.4, gt=0.0, le=1.0)
    # Tiny-face strategy: the frame is enlarged by ``upscale`` and cut into overlapping
    # ``tile_size`` tiles (in enlarged pixels); 1.0 / 0 switch either off.
    upscale: float = Field(2.0, ge=1.0, le=4.0)
    tile_size: int = Field(0, ge=0)
    tile_overlap: int = Field(96, ge=0)
    native_pass: bool = True  # also run once at native scale (large faces)
    min_face_px: float = Field(6.0, ge=0.0)
    max_face_px: float | None = None
    threads: int = Field(0, ge=0)  # onnxruntime intra-op threads; 0 = library default
    options: dict[str, Any] = Field(default_factory=dict)  # backend-specific, validated there
    motion: MotionConfig = Field(default_factory=MotionConfig)  # fixed-camera motion gating


class TrackerConfig(_Strict):
    gate_face_sizes: float = Field(1.5, gt=0.0)  # max centre jump per frame, in face heights
    min_gate_px: float = Field(8.0, ge=0.0)
    max_size_ratio: float = Field(1.8, gt=1.0)  # a match may not change face size more than this
    max_missed_s: float = Field(1.0, ge=0.0)  # a track ends after this long without detections
    relink_max_gap_s: float = Field(2.5, ge=0.0)  # broken tracks are re-joined across such gaps
    relink_gate_face_sizes: float = Field(3.0, gt=0.0)  # per second of gap, plus one
    relink_max_size_ratio: float = Field(1.5, gt=1.0)
    best_k: int = Field(3, ge=1, le=32)
    min_detections: int = Field(3, ge=1)  # shorter tracks are not recognised
    patch_context: float = Field(1.0, ge=0.2)  # patch kept per sample: face box grown by this per side


class SmallFacesConfig(_Strict):
    """The recogniser for small faces: tracks whose face size is below ``below_px`` are
    embedded by it (the distilled student by default; it shares the main recogniser's
    embedding space). ``below_px`` must be a face-size band edge (12, 16, 24, 40).

    The default 12 follows the measurements of ``askd-student-v2`` (weights/MANIFEST.yaml):
    it beats the teacher at 12 px on CelebA hr-lr, Yale B hard light and AT&T, and at 16 px on
    Yale B (+21 points) and AT&T, but not on CelebA at 16 px (-1.6), so only the smallest band
    is routed to it by default; ``below_px: 16`` suits dim, hard-lit scenes."""

    enabled: bool = True
    backend: str = "student"
    model_path: str | None = None  # default: the shipped weights in weights/MANIFEST.yaml
    below_px: float = Field(12.0, gt=0.0)
    batch_size: int = Field(64, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class RecognizerConfig(_Strict):
    backend: str = "dlib"
    model_path: str | None = None
    batch_size: int = Field(16, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)
    small_faces: SmallFacesConfig | None = Field(default_factory=SmallFacesConfig)


class DecisionConfig(_Strict):
    target_fmr: float = Field(1e-3, gt=0.0, lt=1.0)  # which calibrated threshold set to use
    thresholds: dict[str, float] | None = None  # band name -> cosine threshold; overrides manifest
    min_identify_px: float = Field(10.0, ge=0.0)  # smaller faces are marked "too_small"
    margin: float = Field(0.0, ge=0.0)  # best person must beat the runner-up by this much


class VideoConfig(_Strict):
    stride: int = Field(1, ge=1)  # decode every frame, hand every Nth to the pipeline
    detect_every: int = Field(1, ge=1)  # detector runs on every Nth handed frame
    progress: bool = True
    max_seconds: float | None = Field(None, gt=0)  # stop after this much video (None: all)
    checkpoint_every_s: float = Field(2.0, gt=0)  # video seconds between resumable checkpoints
    prefetch: bool = True  # decode ahead in a thread while detecting


class StreamConfig(_Strict):
    """How a live camera is read: RTSP transport, timeouts, reconnects and the live buffer."""

    transport: str = Field("tcp", pattern="^(tcp|udp)$")
    open_timeout_s: float = Field(5.0, gt=0.0)  # connect + first answer
    read_timeout_s: float = Field(5.0, gt=0.0)  # one blocking read
    stall_timeout_s: float = Field(5.0, gt=0.0)  # no decoded frame this long -> reconnect
    backoff_initial_s: float = Field(0.5, gt=0.0)  # first reconnect delay
    backoff_max_s: float = Field(30.0, gt=0.0)  # delays double up to this
    backoff_jitter: float = Field(0.3, ge=0.0, le=1.0)  # +- this fraction, random
    buffer_frames: int = Field(4, ge=1)  # live buffer; the oldest frame is dropped when full


class CameraConfig(_Strict):
    url: str
    enabled: bool = True
    detector: dict[str, Any] = Field(default_factory=dict)  # overrides of DetectorConfig
    min_face_px: float | None = None
    max_face_px: float | None = None
    # polygons [[x, y], ...] in frame pixels: faces whose centre lies inside are ignored
    ignore_masks: list[list[tuple[float, float]]] = Field(default_factory=list)
    stream: StreamConfig = Field(default_factory=StreamConfig)

    @field_validator("ignore_masks")
    @classmethod
    def _polygons(cls, v):
        for poly in v:
            if len(poly) < 3:
                raise ValueError("an ignore mask needs at least 3 points")
        return v


class AlertsConfig(_Strict):
    """Webhook alerts: one HTTP POST (JSON) per hit, at most once per (track, person), not
    again for the same person within ``cooldown_s``; kept in a bounded outbox in the
    database until delivered, so a restart neither loses nor repeats them."""

    webhook_url: str | None = None  # None: no alerts
    cooldown_s: float = Field(60.0, ge=0.0)  # per person
    timeout_s: float = Field(5.0, gt=0.0)  # one POST
    max_attempts: int = Field(8, ge=1)  # then the alert is marked failed
    backoff_initial_s: float = Field(1.0, gt=0.0)
    backoff_max_s: float = Field(60.0, gt=0.0)
    outbox_max: int = Field(1000, ge=1)  # pending alerts kept; beyond it the oldest are dropped
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. an Authorization header


class MonitorConfig(_Strict):
    """The live daemon (``cctv-id monitor``)."""

    http_host: str = "127.0.0.1"  # /healthz and /metrics
    http_port: int = Field(9108, ge=0, le=65535)  # 0 = any free port (logged)
    batch_max: int = Field(32, ge=1)  # micro-batcher: faces per recogniser call, all cameras
    batch_wait_ms: float = Field(20.0, ge=0.0)  # ... and how long it waits to fill a batch
    hit_every_s: float = Field(10.0, gt=0.0)  # long tracks are recognised this often while live
    shutdown_timeout_s: float = Field(5.0, gt=0.0)  # SIGTERM: flush within this
    log_format: str = Field("json", pattern="^(json|text)$")  # structured logs on stderr


class AppConfig(_Strict):
    db: str | None = None  # SQLAlchemy URL; default: sqlite in the user data folder
    data_dir: str | None = None  # crops etc.; default: beside a SQLite file
    db_retry_seconds: float = Field(30.0, ge=0.0)  # keep retrying a locked/unreachable database
    db_busy_timeout_s: float = Field(10.0, ge=0.0)  # SQLite's own wait for a lock, per attempt
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    recognizer: RecognizerConfig = Field(default_factory=RecognizerConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    cameras: dict[str, CameraConfig] = Field(default_factory=dict)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    preset: str | None = None  # name of a file in pipelines/ applied under this config

    @field_validator("cameras", mode="before")
    @classmethod
    def _none_is_empty(cls, v):
        return {} if v is None else v


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` applied on ``base``, recursing into nested mappings."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"malformed YAML in {path}{where}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def preset_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = PIPELINES_DIR / f"{name}.yaml"
    if not candidate.is_file():
        choices = sorted(p.stem for p in PIPELINES_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown pipeline preset '{name}'; available: {', '.join(choices)}")
    return candidate


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
        else:
            parts.append(f"{loc}: {err['msg']}")
    return f"invalid configuration in {origin}: " + "; ".join(parts)


def build_config(
    config_file: str | Path | None = None,
    preset: str | None = None,
    overrides: dict | None = None,
    default_preset: str | None = None,
) -> AppConfig:
    """Validated configuration from preset <- file <- overrides (each optional).

    The preset is ``preset`` if given, else the file's ``preset:``, else ``default_preset``.
    """
    file_data: dict = read_yaml(config_file) if config_file else {}
    origin = str(config_file) if config_file else "defaults"
    preset_name = preset or file_data.get("preset") or default_preset
    merged: dict = {}
    if preset_name:
        pdata = read_yaml(preset_path(preset_name))
        try:
            AppConfig.model_validate(pdata)
        except ValidationError as exc:
            raise ConfigError(_format_validation_error(exc, f"preset {preset_name}")) from None
        merged = deep_merge(merged, pdata)
    merged = deep_merge(merged, file_data)
    if overrides:
        merged = deep_merge(merged, overrides)
    if preset_name:
        merged["preset"] = preset_name
    try:
        return AppConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, origin)) from None


def camera_detector_config(cfg: AppConfig, camera: str | None) -> DetectorConfig:
    """The detector settings for ``camera``: the global ones with its overrides applied."""
    if not camera or camera not in cfg.cameras:
        return cfg.detector
    cam = cfg.cameras[camera]
    data = deep_merge(cfg.detector.model_dump(), cam.detector)
    if cam.min_face_px is not None:
        data["min_face_px"] = cam.min_face_px
    if cam.max_face_px is not None:
        data["max_face_px"] = cam.max_face_px
    try:
        return DetectorConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, f"cameras.{camera}.detector")) from None


def public_config(cfg: AppConfig) -> dict:
    """The resolved configuration as stored with a run: credentials in URLs (cameras, the
    webhook, the database) replaced by ``***`` and header values hidden."""
    from .redact import redact_url

    data = cfg.model_dump(mode="json")
    if data.get("db"):
        data["db"] = redact_url(data["db"])
    for cam in data.get("cameras", {}).values():
        cam["url"] = redact_url(cam["url"])
    alerts = data.get("alerts") or {}
    if alerts.get("webhook_url"):
        alerts["webhook_url"] = redact_url(alerts["webhook_url"])
    alerts["headers"] = {k: "***" for k in alerts.get("headers", {})}
    return data
