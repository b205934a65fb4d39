"""Read ``weights/MANIFEST.yaml``: model provenance and calibrated thresholds per face-size band."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..config import WEIGHTS_DIR
from ..errors import ConfigError, ModelError

DEFAULT_MANIFEST = WEIGHTS_DIR / "MANIFEST.yaml"


@dataclass(frozen=True)
class Band:
    """A face-size band with its threshold: min_px <= face_px < max_px (max_px inf: open)."""

    name: str
    min_px: float
    max_px: float
    threshold: float
    tar: float | None = None
    fmr: float | None = None

    def contains(self, face_px: float) -> bool:
        return self.min_px <= face_px < self.max_px


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed model manifest {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f"model manifest {path} must hold a 'models' mapping")
    return data


def load_manifest(path: str | Path | None = None) -> dict:
    """The parsed manifest (cached until the file changes). Do not mutate the result."""
    p = Path(path) if path is not None else DEFAULT_MANIFEST
    if not p.is_file():
        raise ModelError(f"model manifest not found: {p}")
    return _load_cached(str(p.resolve()), p.stat().st_mtime)


def model_entry(model_name: str, path: str | Path | None = None) -> dict:
    models = load_manifest(path)["models"]
    if model_name not in models:
        raise ModelError(
            f"model '{model_name}' is not in the manifest; known: {', '.join(sorted(models))}"
        )
    return models[model_name]


def thresholds_for(model_name: str, fmr: float = 1e-3, path: str | Path | None = None) -> list[Band]:
    """The calibrated bands of ``model_name`` at target ``fmr``, smallest faces first.

    Raises ModelError when the model is unknown or has no thresholds calibrated at ``fmr``.
    """
    rows = model_entry(model_name, path).get("thresholds") or []
    bands = [
        Band(
            name=str(r["band"]),
            min_px=float(r["min_px"]),
            max_px=math.inf if r.get("max_px") is None else float(r["max_px"]),
            threshold=float(r["threshold"]),
            tar=None if r.get("tar") is None else float(r["tar"]),
            fmr=float(r["fmr"]),
        )
        for r in rows
        if math.isclose(float(r["fmr"]), fmr, rel_tol=1e-6)
    ]
    if not bands:
        have = sorted({float(r["fmr"]) for r in rows})
        raise ModelError(
            f"no thresholds for '{model_name}' at FMR {fmr:g} in the manifest"
            + (f"; calibrated FMRs: {', '.join(f'{x:g}' for x in have)}" if have else "")
        )
    return sorted(bands, key=lambda b: b.min_px)


def band_for(face_px: float, bands: list[Band]) -> Band:
    """The band holding ``face_px``; sizes below the first band fall into it."""
    if not bands:
        raise ValueError("no bands given")
    ordered = sorted(bands, key=lambda b: b.min_px)
    for band in ordered:
        if band.contains(face_px):
            return band
    if face_px < ordered[0].min_px:
        return ordered[0]
    return ordered[-1]


def _package_dir(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(f"package '{package}' is not installed")
    return Path(spec.origin).parent


def resolve_model_file(entry: dict) -> Path | None:
    """The file a manifest entry's ``file`` names, or None if it names none.

    ``file`` forms: a path (relative to ``weights/`` or absolute), or
    ``package:<import name>/<path inside the package>``. Bytes embedded in a Python module
    (``package:retinaface/weights.py#WEIGHTS``) are not a model file: ModelError says so;
    check those with ``entry_sha256_ok``. ModelError if the package is not installed.
    """
    spec = entry.get("file")
    if not spec:
        return None
    spec = str(spec)
    if spec.startswith("package:"):
        rest = spec[len("package:") :]
        if "#" in rest:
            raise ModelError(
                f"{spec}: the model bytes are embedded in a Python module, not a file "
                "(use entry_sha256_ok to verify them)"
            )
        package, _, inner = rest.partition("/")
        return _package_dir(package) / inner
    path = Path(spec).expanduser()
    return path if path.is_absolute() else WEIGHTS_DIR / path


def entry_sha256_ok(entry: dict) -> bool | None:
    """Whether the installed bytes of a manifest entry match its ``sha256``; None if absent."""
    import hashlib
    import importlib

    spec = str(entry.get("file") or "")
    expected = entry.get("sha256")
    if spec.startswith("package:") and "#" in spec:
        module_path, _, attr = spec[len("package:") :].partition("#")
        module_name = module_path.removesuffix(".py").replace("/", ".")
        try:
            data = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            return None
        return hashlib.sha256(bytes(data)).hexdigest() == expected
    try:
        path = resolve_model_file(entry)
    except ModelError:
        return None
    if path is None or not path.is_file():
        return None
    from .base import file_sha256

    return file_sha256(path) == expected
