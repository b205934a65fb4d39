"""Evidence files over HTTP: best-shot crops and stored enrolment photos.

Owns ``/crops/{path}`` (under ``data_dir/crops``) and ``/photos/{path}`` (under
``data_dir/enrolments``), for authenticated users only. A path is served only when it
names a regular file inside its folder after every symlink is resolved: ``..`` parts,
absolute paths, backslashes, NUL bytes, encoded traversal (``%2e%2e``, ``%2f``; the server
decodes them before this code sees the path) and symlinks pointing out all answer 404, the
same as a missing file, so nothing about the rest of the disk can be learnt.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse

from .auth import User, current_user

router = APIRouter()

CROPS_DIR = "crops"
PHOTOS_DIR = "enrolments"


def _url(prefix: str, folder: str, rel: str | None) -> str | None:
    """``/prefix/...`` for a file stored as ``folder/...`` relative to data_dir."""
    if not rel:
        return None
    rel = rel.replace("\\", "/")
    if rel.startswith(folder + "/"):
        rel = rel[len(folder) + 1:]
    return f"/{prefix}/{rel}"


def crop_url(rel: str | None) -> str | None:
    """The URL of an evidence file stored as ``crops/...`` relative to data_dir."""
    return _url("crops", CROPS_DIR, rel)


def photo_url(rel: str | None) -> str | None:
    """The URL of a stored enrolment photo (``enrolments/...`` relative to data_dir)."""
    return _url("photos", PHOTOS_DIR, rel)


def safe_file(root: Path, rel: str) -> Path | None:
    """``root/rel`` when it is a regular file inside ``root`` (symlinks resolved), else None."""
    if not rel or "\x00" in rel or "\\" in rel or rel.startswith("/"):
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    try:
        base = root.resolve(strict=True)
        target = (base / Path(*parts)).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


def _serve(request: Request, folder: str, path: str) -> FileResponse:
    target = safe_file(request.app.state.ctx.data_dir() / folder, path)
    if target is None:
        raise HTTPException(404, "no such file")
    media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return FileResponse(target, media_type=media,
                        headers={"Cache-Control": "private, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})


@router.get("/crops/{path:path}", include_in_schema=False)
def get_crop(path: str, request: Request, user: User = Depends(current_user)) -> FileResponse:
    return _serve(request, CROPS_DIR, path)


@router.get("/photos/{path:path}", include_in_schema=False)
def get_photo(path: str, request: Request, user: User = Depends(current_user)) -> FileResponse:
    return _serve(request, PHOTOS_DIR, path)
