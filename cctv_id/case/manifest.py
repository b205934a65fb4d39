"""A case's manifest: every file's sha256 and size, written at export, checked later.

``manifest.json`` sits at the top of a case (a folder, or a zip holding the same tree) and
lists every other file of the case with its sha256 and size, beside the export's
provenance (tool version, who, when, the query, the runs' sources and models). Verifying
recomputes every listed file's sha256 and reports files that are missing, changed, or
present but not listed. The manifest does not list itself; its own sha256 is printed at
export and at verification, so an investigator who wrote it down can check the manifest
too.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import InputError

MANIFEST_NAME = "manifest.json"
FORMAT = "cctv-id-case/1"
_CHUNK = 1 << 20


def sha256_stream(fh) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while True:
        block = fh.read(_CHUNK)
        if not block:
            break
        h.update(block)
        size += len(block)
    return h.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def case_files(root: Path) -> list[str]:
    """Every file under ``root`` as a POSIX relative path, sorted (the manifest excluded)."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)


def file_entries(root: Path) -> list[dict]:
    entries = []
    for rel in case_files(root):
        digest, size = sha256_file(root / rel)
        entries.append({"path": rel, "sha256": digest, "size": size})
    return entries


def write_manifest(root: Path, manifest: dict) -> str:
    """Write ``manifest`` plus the entries of every file now under ``root``; returns the
    manifest's own sha256."""
    body = dict(manifest)
    body["format"] = FORMAT
    body["files"] = file_entries(root)
    data = (json.dumps(body, indent=2, sort_keys=True, default=str) + "\n").encode()
    with open(root / MANIFEST_NAME, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()


@dataclass
class VerifyReport:
    path: str
    kind: str  # "folder" | "zip"
    manifest_sha256: str
    tool_version: str | None
    created_at: str | None
    checked: int = 0  # listed files whose sha256 and size match
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # manifest entries that are not usable

    @property
    def intact(self) -> bool:
        return not (self.missing or self.changed or self.unlisted or self.invalid)

    def to_dict(self) -> dict:
        return {**asdict(self), "intact": self.intact}


def _safe_rel(rel) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and rel == p.as_posix()


class _Folder:
    kind = "folder"

    def __init__(self, root: Path):
        self.root = root

    def read_manifest(self) -> bytes | None:
        path = self.root / MANIFEST_NAME
        return path.read_bytes() if path.is_file() else None

    def names(self) -> list[str]:
        return case_files(self.root)

    def digest(self, rel: str) -> tuple[str, int] | None:
        path = self.root / rel
        return sha256_file(path) if path.is_file() else None

    def close(self) -> None:
        pass


class _Zip:
    kind = "zip"

    def __init__(self, path: Path):
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{path}: not a readable zip file ({exc})") from None
        self.members = {i.filename: i for i in self.zf.infolist() if not i.is_dir()}

    def read_manifest(self) -> bytes | None:
        return self.zf.read(MANIFEST_NAME) if MANIFEST_NAME in self.members else None

    def names(self) -> list[str]:
        return sorted(n for n in self.members if n != MANIFEST_NAME)

    def digest(self, rel: str) -> tuple[str, int] | None:
        if rel not in self.members:
            return None
        try:
            with self.zf.open(self.members[rel]) as fh:
                return sha256_stream(fh)
        except (zipfile.BadZipFile, OSError, EOFError):
            # a damaged member (its CRC fails): it cannot match what was exported
            return ("unreadable", -1)

    def close(self) -> None:
        self.zf.close()


def verify_case(path: str | os.PathLike) -> VerifyReport:
    """Recompute every listed file's sha256; a case that is not a folder or zip with a
    readable manifest raises :class:`InputError`."""
    path = Path(path)
    if path.is_dir():
        case = _Folder(path)
    elif path.is_file():
        case = _Zip(path)
    else:
        raise InputError(f"no such case folder or zip: {path}")
    try:
        raw = case.read_manifest()
        if raw is None:
            raise InputError(f"{path}: not a case: it has no {MANIFEST_NAME}")
        try:
            manifest = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InputError(f"{path}: {MANIFEST_NAME} is not valid JSON") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
                or not isinstance(manifest.get("files"), list):
            raise InputError(f"{path}: {MANIFEST_NAME} is not a {FORMAT} manifest")
        report = VerifyReport(path=str(path), kind=case.kind,
                              manifest_sha256=hashlib.sha256(raw).hexdigest(),
                              tool_version=manifest.get("tool_version"),
                              created_at=manifest.get("created_at"))
        listed = set()
        for entry in manifest["files"]:
            rel = entry.get("path") if isinstance(entry, dict) else None
            if not _safe_rel(rel) or rel == MANIFEST_NAME or rel in listed \
                    or not isinstance(entry.get("sha256"), str) \
                    or not isinstance(entry.get("size"), int):
                report.invalid.append(str(rel if rel is not None else entry))
                continue
            listed.add(rel)
            got = case.digest(rel)
            if got is None:
                report.missing.append(rel)
            elif got != (entry["sha256"].lower(), entry["size"]):
                report.changed.append(rel)
            else:
                report.checked += 1
        report.unlisted = [n for n in case.names() if n not in listed]
        return report
    finally:
        case.close()
