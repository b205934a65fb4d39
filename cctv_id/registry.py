"""Name -> "module:callable" tables for pluggable backends, resolved lazily.

Adding a backend means adding one line here (or calling ``register``); importing the
backend's module (and its heavy dependencies) happens only when it is first built.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .errors import ConfigError

DETECTORS: dict[str, str] = {
    "retinaface": "cctv_id.detect.backends.retinaface:RetinaFaceDetector",
    "insightface": "cctv_id.detect.backends.insightface_pack:InsightFaceDetector",
}

RECOGNIZERS: dict[str, str] = {
    "dlib": "cctv_id.recognize.dlib_resnet:DlibResNetEncoder",
    "dlib-torch": "cctv_id.recognize.dlib_torch:DlibTorchEncoder",
    "insightface": "cctv_id.recognize.insightface_pack:InsightFaceEncoder",
    "student": "cctv_id.recognize.student:StudentEncoder",
}

KINDS: dict[str, dict[str, str]] = {"detector": DETECTORS, "recognizer": RECOGNIZERS}


def register(kind: str, name: str, target: str) -> None:
    """Register ``target`` ("package.module:Callable") under ``name`` for ``kind``."""
    KINDS[kind][name] = target


def resolve(kind: str, name: str) -> Callable[..., Any]:
    """The callable registered under ``name``; a ConfigError naming the choices if none."""
    table = KINDS[kind]
    if name not in table:
        raise ConfigError(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(table))}")
    module_name, _, attr = table[name].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def names(kind: str) -> list[str]:
    return sorted(KINDS[kind])
