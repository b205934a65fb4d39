"""Configuration: presets, precedence, unknown keys."""

from __future__ import annotations

import pytest

from cctv_id.config import build_config
from cctv_id.errors import ConfigError


def test_preset_precedence(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("preset: fast\ndecision:\n  margin: 0.02\n")
    cfg = build_config(conf, default_preset="archive")
    assert cfg.preset == "fast" and cfg.video.detect_every == 2 and cfg.decision.margin == 0.02
    cfg = build_config(conf, preset="archive", default_preset="archive")
    assert cfg.preset == "archive" and cfg.video.detect_every == 1
    assert build_config(None, default_preset="archive").preset == "archive"
    cfg = build_config(conf, overrides={"video": {"detect_every": 5}})
    assert cfg.video.detect_every == 5


def test_unknown_keys_and_presets_are_rejected(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("tracker:\n  best_kk: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'tracker.best_kk'"):
        build_config(conf)
    with pytest.raises(ConfigError, match="unknown pipeline preset 'nope'"):
        build_config(None, preset="nope")


def test_camera_only_file_is_valid(tmp_path):
    conf = tmp_path / "cams.yaml"
    conf.write_text("cameras:\n  gate:\n    url: rtsp://127.0.0.1/x\n    detector:\n"
                    "      motion:\n        enabled: false\n")
    cfg = build_config(conf)
    from cctv_id.config import camera_detector_config

    assert camera_detector_config(cfg, "gate").motion.enabled is False
    assert camera_detector_config(cfg, "other").motion.enabled is True


def test_live_camera_settings_validate(tmp_path):
    conf = tmp_path / "cams.yaml"
    conf.write_text("cameras:\n  gate:\n    url: rtsp://u:p@127.0.0.1/x\n"
                    "    ignore_masks: [[[0, 0], [10, 0], [10, 10]]]\n"
                    "    stream: {transport: udp, stall_timeout_s: 3}\n")
    cam = build_config(conf).cameras["gate"]
    assert cam.stream.transport == "udp" and cam.stream.stall_timeout_s == 3
    assert cam.stream.buffer_frames >= 1 and cam.ignore_masks[0][2] == (10, 10)
    conf.write_text("cameras:\n  gate:\n    url: rtsp://h/x\n    ignore_masks: [[[0, 0], [1, 1]]]\n")
    with pytest.raises(ConfigError, match="at least 3 points"):
        build_config(conf)
    conf.write_text("cameras:\n  gate:\n    url: rtsp://h/x\n    stream: {transport: http}\n")
    with pytest.raises(ConfigError, match="cameras.gate.stream.transport"):
        build_config(conf)


def test_stored_config_hides_credentials(tmp_path):
    from cctv_id.config import public_config

    conf = tmp_path / "c.yaml"
    conf.write_text("db: postgresql+psycopg://app:dbpw@127.0.0.1/cctv\n"
                    "cameras:\n  gate: {url: 'rtsp://admin:campw@10.0.0.5/s1'}\n"
                    "alerts: {webhook_url: 'https://bot:hookpw@alerts.example/h', "
                    "headers: {Authorization: 'Bearer tok123'}}\n")
    text = str(public_config(build_config(conf)))
    for secret in ("dbpw", "campw", "hookpw", "tok123"):
        assert secret not in text
    assert "10.0.0.5/s1" in text and "alerts.example/h" in text
