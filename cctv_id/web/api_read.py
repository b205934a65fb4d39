"""Read-only JSON API routes: hits, tracks, persons, timelines, runs, search by photo.

Every route calls the same repository and library functions as the CLI (``query_hits``,
``query_tracks``, ``timeline``, ``list_runs``, ``search_by_photo``) and shapes their rows
with :func:`cctv_id.serialize.jsonable`, adding ``crop_url`` / ``context_url`` /
``photo_url`` for the evidence files. Lists are pages: ``{"items", "total", "limit",
"offset"}``. Times go in and out as ISO 8601 UTC (a time without an offset is UTC). Source
URLs and run configurations pass through :func:`cctv_id.redact.redact_url`, so camera
credentials never leave the server.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from ..errors import InputError, NotFoundError
from ..redact import redact_url
from ..serialize import jsonable
from .auth import User, current_user
from .files import crop_url, photo_url

router = APIRouter(dependencies=[Depends(current_user)])

MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# per-track bulk that a list does not need
_TRACK_DROP = ("trajectory", "crop_landmarks", "index_seq")

SINCE = Query(None, description="ISO 8601 time (UTC when no offset): seen at or after it.")
UNTIL = Query(None, description="ISO 8601 time (UTC when no offset): seen at or before it.")
LIMIT = Query(50, ge=1, le=MAX_LIMIT, description="Page size (1-500).")
OFFSET = Query(0, ge=0, le=MAX_OFFSET, description="Items of the order to skip.")


# ---------------------------------------------------------------- parameter helpers

def parse_time(value: str | None, what: str) -> datetime | None:
    """ISO 8601 date or date-time -> aware UTC; a naive value is UTC; bad: InputError."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise InputError(f"invalid {what} {value!r}: use ISO 8601, e.g. 2026-05-01T08:00:00Z") from None


def interval(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    a, b = parse_time(since, "since"), parse_time(until, "until")
    if a is not None and b is not None and a > b:
        raise InputError(f"since {since} is after until {until}")
    return a, b


def name_param(value: str | None, what: str) -> str | None:
    """A person or camera name from the query: None when empty; control characters: 400."""
    if value is None or value == "":
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or len(value) > 255:
        raise InputError(f"invalid {what} name {value[:40]!r}")
    return value


# ---------------------------------------------------------------- shaping rows

def redact(value: Any) -> Any:
    """Every string in ``value`` with URL credentials masked."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def evidence_row(row: dict, drop: tuple[str, ...] = ()) -> dict:
    """A hit or track as JSON with the URLs of its crop and context frame."""
    out = jsonable({k: v for k, v in row.items() if k not in drop})
    out["crop_url"] = crop_url(row.get("crop_path"))
    out["context_url"] = crop_url(row.get("context_path"))
    if out.get("source_path"):
        out["source_path"] = redact_url(out["source_path"])
    return out


def page(items: list[dict], total: int, limit: int, offset: int) -> dict:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _repo(request: Request):
    return request.app.state.ctx.repo()


# ---------------------------------------------------------------- hits and tracks

@router.get("/hits", tags=["hits"])
def hits(request: Request, person: str | None = Query(None, description="Person name."),
         camera: str | None = Query(None, description="Camera name."),
         since: str | None = SINCE, until: str | None = UNTIL,
         min_score: float | None = Query(None, ge=-1.0, le=1.0, allow_inf_nan=False,
                                         description="Lowest score kept."),
         include_rejected: bool = Query(False, description="Also hits a reviewer rejected."),
         limit: int = LIMIT, offset: int = OFFSET) -> dict:
    """Hits (the same query as `cctv-id hits`), oldest first, one page."""
    person, camera = name_param(person, "person"), name_param(camera, "camera")
    a, b = interval(since, until)
    repo = _repo(request)
    filters = dict(person=person, camera=camera, since=a, until=b, min_score=min_score,
                   exclude_rejected=not include_rejected)
    total = repo.count_hits(**filters)
    rows = repo.query_hits(**filters, limit=limit, offset=offset)
    return page([evidence_row(r) for r in rows], total, limit, offset)


@router.get("/tracks", tags=["tracks"])
def tracks(request: Request,
           unknown: bool = Query(False, description="Only tracks nobody was recognised in."),
           camera: str | None = Query(None), since: str | None = SINCE,
           until: str | None = UNTIL,
           person: str | None = Query(None, description="Only tracks with a hit of this person."),
           run: int | None = Query(None, ge=1, le=MAX_OFFSET, description="Only this run's."),
           limit: int = LIMIT, offset: int = OFFSET) -> dict:
    """Stored tracks (the same query as `cctv-id tracks`), in time order, one page."""
    person, camera = name_param(person, "person"), name_param(camera, "camera")
    a, b = interval(since, until)
    repo = _repo(request)
    filters = dict(camera=camera, since=a, until=b, unknown=unknown, person=person, run_id=run)
    total = repo.count_tracks(**filters)
    rows = repo.query_tracks(**filters, limit=limit, offset=offset)
    return page([evidence_row(r, _TRACK_DROP) for r in rows], total, limit, offset)


# ---------------------------------------------------------------- persons

def _person_summary(repo, name: str) -> dict:
    for p in repo.list_persons():
        if p["name"] == name:
            return p
    repo.query_hits(person=name, limit=1)  # NotFoundError naming the known ones
    raise NotFoundError(f"unknown person {name!r}")


@router.get("/persons", tags=["persons"])
def persons(request: Request) -> dict:
    """Everyone on the watchlist: photos, hits and the models of their embeddings."""
    rows = _repo(request).list_persons()
    return {"items": jsonable(rows), "total": len(rows)}


@router.get("/persons/{name}", tags=["persons"])
def person(name: str, request: Request) -> dict:
    """One person: counts, enrolment photos (with ``photo_url``), first and last sighting."""
    repo = _repo(request)
    name_param(name, "person")
    out = jsonable(_person_summary(repo, name))
    photos = []
    for e in repo.person_enrolments(name):
        d = jsonable({k: v for k, v in e.items() if k != "photo_path"})
        d["photo_url"] = photo_url(e.get("stored_photo"))
        photos.append(d)
    seen = repo.timeline(name)
    out.update(photos=photos, n_sightings=len(seen),
               n_confirmed=sum(1 for h in seen if h.get("review_status") == "confirmed"),
               cameras=sorted({h["camera"] for h in seen}),
               first_seen_at=jsonable(seen[0]["first_seen_at"]) if seen else None,
               last_seen_at=jsonable(max((h["last_seen_at"] for h in seen if h["last_seen_at"]),
                                         default=None)))
    return out


@router.get("/persons/{name}/timeline", tags=["persons"])
def timeline(name: str, request: Request, since: str | None = SINCE,
             until: str | None = UNTIL) -> dict:
    """Where and when the person was seen (hits not rejected), in time order across cameras."""
    name_param(name, "person")
    a, b = interval(since, until)
    rows = _repo(request).timeline(name, since=a, until=b)
    return {"person": name, "items": [evidence_row(r) for r in rows], "total": len(rows)}


# ---------------------------------------------------------------- runs

def run_out(run: dict, full: bool) -> dict:
    out = jsonable({k: v for k, v in run.items() if full or k != "config"})
    out = redact(out)
    out["running"] = run.get("status") == "running"
    out["live"] = "://" in str(run.get("source_path") or "")
    return out


@router.get("/runs", tags=["runs"])
def runs(request: Request, camera: str | None = Query(None),
         status: str | None = Query(None, pattern="^(running|completed|failed|interrupted)$"),
         limit: int = LIMIT, offset: int = OFFSET) -> dict:
    """Processing runs, newest first, without their configuration (see /api/runs/{id})."""
    camera = name_param(camera, "camera")
    rows = _repo(request).list_runs(camera=camera, status=status)
    return page([run_out(r, full=False) for r in rows[offset:offset + limit]], len(rows), limit,
                offset)


@router.get("/runs/{run_id}", tags=["runs"])
def run(run_id: int, request: Request) -> dict:
    """A run's provenance (source and sha256, model sha256s, configuration, tool version),
    status, error and progress (frames processed, last frame, heartbeat)."""
    if not 1 <= run_id <= MAX_OFFSET:
        raise NotFoundError(f"unknown run {run_id}")
    return run_out(_repo(request).get_run(run_id), full=True)


# ---------------------------------------------------------------- search by photo

def save_upload(upload: UploadFile, folder: Path, index: int = 0) -> Path:
    """The uploaded photo written to ``folder`` (size-limited; suffix kept if an image's)."""
    suffix = Path(upload.filename or "").suffix.lower()
    target = folder / f"upload{index:03d}{suffix if suffix in PHOTO_SUFFIXES else '.jpg'}"
    written = 0
    with target.open("wb") as fh:
        while chunk := upload.file.read(1 << 20):
            written += len(chunk)
            if written > MAX_UPLOAD_BYTES:
                raise InputError(f"photo {upload.filename!r} is larger than "
                                 f"{MAX_UPLOAD_BYTES // (1 << 20)} MiB")
            fh.write(chunk)
    if written == 0:
        raise InputError(f"photo {upload.filename!r} is empty")
    return target


@router.post("/search", tags=["search"])
def search(request: Request, photo: UploadFile = File(..., description="A photo with one face."),
           top: int = Form(10, ge=1, le=100), since: str | None = Form(None),
           until: str | None = Form(None), camera: str | None = Form(None),
           user: User = Depends(current_user)) -> dict:
    """Stored tracks most like the face in the photo, best first (as `cctv-id search`);
    audited ("search") under the web user."""
    from ..watchlist.search import search_by_photo

    camera = name_param(camera, "camera")
    a, b = interval(since, until)
    web = request.app.state.web
    ctx = request.app.state.ctx
    tmp = Path(tempfile.mkdtemp(prefix="cctv-id-search-"))
    try:
        path = save_upload(photo, tmp)
        detector, encoder = web.detector(), web.encoder()
        with web.infer_lock:
            results, info = search_by_photo(ctx.repo(), detector, encoder, ctx.data_dir(), path,
                                            top=top, since=a, until=b, camera=camera,
                                            operator=user.username)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"items": [evidence_row(r) for r in results], "info": jsonable(info)}
