"""Review and admin JSON API routes: decisions on hits and tracks, the watchlist, retention,
the audit log and case export.

Owns who may do what: a reviewer confirms or rejects hits and names tracks; an admin also
enrols people from uploaded photos, removes them, purges old data, reads the audit log and
exports cases. Each route calls the library function the CLI calls (``confirm_hit``,
``enrol.commit``, ``governance.remove_person`` / ``purge``, ``export_case``) with the web
user as operator, so every change and export is in the audit log under their name.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Body, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from ..errors import InputError, NotFoundError
from ..serialize import jsonable
from ..store.audit import AUDITED_ACTIONS
from .api_read import interval, name_param, save_upload
from .auth import User, require_role

router = APIRouter()
MAX_ENROL_PHOTOS = 20


class ReviewBody(BaseModel):
    note: str | None = Field(None, max_length=2000, description="Why (kept with the decision).")


class NameBody(BaseModel):
    person: str = Field(..., min_length=1, max_length=255, description="Who the track shows.")
    create: bool = Field(False, description="Add the person if not known yet.")
    note: str | None = Field(None, max_length=2000)


class PurgeBody(BaseModel):
    unknown_older_than: str | None = Field(None, description="e.g. 30d: unknown tracks older.")
    hits_older_than: str | None = Field(None, description="e.g. 365d: hits older.")
    dry_run: bool = Field(False, description="Only count what would go.")


def _ctx(request: Request):
    return request.app.state.ctx


def _id(value: int, what: str) -> int:
    if not 1 <= value <= 2**31 - 1:
        raise NotFoundError(f"unknown {what} {value}")
    return value


# ---------------------------------------------------------------- reviewer

@router.post("/hits/{hit_id}/confirm", tags=["review"])
def confirm_hit(hit_id: int, request: Request, body: ReviewBody | None = Body(None),
                user: User = Depends(require_role("reviewer"))) -> dict:
    """A reviewer says this hit is right."""
    note = body.note if body else None
    return jsonable(_ctx(request).repo().confirm_hit(_id(hit_id, "hit"), user.username, note=note))


@router.post("/hits/{hit_id}/reject", tags=["review"])
def reject_hit(hit_id: int, request: Request, body: ReviewBody | None = Body(None),
               user: User = Depends(require_role("reviewer"))) -> dict:
    """A reviewer says this hit is wrong: it leaves timelines and exports."""
    note = body.note if body else None
    return jsonable(_ctx(request).repo().reject_hit(_id(hit_id, "hit"), user.username, note=note))


@router.post("/tracks/{track_id}/name", tags=["review"])
def name_track(track_id: int, body: NameBody, request: Request,
               user: User = Depends(require_role("reviewer"))) -> dict:
    """A reviewer names the person a track shows (a manual hit)."""
    person = name_param(body.person.strip(), "person")
    if not person:
        raise InputError("person name must not be empty")
    return jsonable(_ctx(request).repo().name_track(_id(track_id, "track"), person, user.username,
                                                    note=body.note, create=body.create))


# ---------------------------------------------------------------- admin

@router.post("/persons", tags=["admin"])
def enrol_person(request: Request, name: str = Form(..., min_length=1, max_length=255),
                 photos: list[UploadFile] = File(..., description="Photos with one face each."),
                 replace: bool = Form(False), retro: bool = Form(True),
                 user: User = Depends(require_role("admin"))) -> dict:
    """Enrol a person from photos (as `cctv-id enroll`; audited), then look for them among the
    stored unknown tracks (retro-matching) unless ``retro`` is false."""
    from ..watchlist import enrol

    name = name_param(name.strip(), "person")
    if not name:
        raise InputError("person name must not be empty")
    if not 1 <= len(photos) <= MAX_ENROL_PHOTOS:
        raise InputError(f"send 1 to {MAX_ENROL_PHOTOS} photos, got {len(photos)}")
    ctx, web = _ctx(request), request.app.state.web
    tmp = Path(tempfile.mkdtemp(prefix="cctv-id-enrol-"))
    try:
        paths = [save_upload(p, tmp, i) for i, p in enumerate(photos)]
        detector, encoder = web.detector(), web.encoder()
        with web.infer_lock:
            items = enrol.prepare([(name, p) for p in paths], detector, encoder)
            result = enrol.commit(ctx.repo(), items, encoder.name, data_dir=ctx.data_dir(),
                                  operator=user.username, replace=replace)
            found = []
            if retro:
                from ..watchlist.retro import retro_match

                found = retro_match(ctx.repo(), encoder.name, ctx.bands(encoder),
                                    ctx.config().decision, [name], operator=user.username)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {k: v for k, v in result.items() if k in ("persons", "n_replaced", "n_photos_stored")}
    return jsonable(out | {"person": name, "n_photos": len(items), "retro_hits": len(found)})


@router.delete("/persons/{name}", tags=["admin"])
def remove_person(name: str, request: Request,
                  purge_hits: bool = Query(False, description="Also erase their hits and tracks."),
                  user: User = Depends(require_role("admin"))) -> dict:
    """Take a person off the watchlist (as `cctv-id remove-person`; audited)."""
    from ..governance import remove_person as remove

    name_param(name, "person")
    ctx = _ctx(request)
    out = remove(ctx.repo(), ctx.data_dir(), name, user.username, purge_hits=purge_hits)
    return jsonable({k: v for k, v in out.items() if k not in ("files", "stored_photos")})


@router.post("/purge", tags=["admin"])
def purge(body: PurgeBody, request: Request,
          user: User = Depends(require_role("admin"))) -> dict:
    """Retention (as `cctv-id purge`; audited): delete unknown tracks and/or hits older than
    the given durations, with their evidence files."""
    from ..governance import purge as run_purge

    ctx = _ctx(request)
    out = run_purge(ctx.repo(), ctx.data_dir(), user.username,
                    unknown_older_than=body.unknown_older_than,
                    hits_older_than=body.hits_older_than, dry_run=body.dry_run)
    return jsonable({k: v for k, v in out.items() if k != "files"})


@router.get("/audit", tags=["admin"])
def audit(request: Request, since: str | None = Query(None), until: str | None = Query(None),
          action: str | None = Query(None, description=", ".join(AUDITED_ACTIONS)),
          operator: str | None = Query(None), limit: int = Query(200, ge=1, le=5000),
          user: User = Depends(require_role("admin"))) -> dict:
    """The audit log, newest first (one page of ``limit``)."""
    a, b = interval(since, until)
    if action is not None and action not in AUDITED_ACTIONS:
        raise InputError(f"unknown action {action!r}; one of {', '.join(AUDITED_ACTIONS)}")
    rows = _ctx(request).repo().list_audit(since=a, until=b, action=action,
                                           operator=name_param(operator, "operator"))
    rows = rows[::-1][:limit]
    return {"items": jsonable(rows), "total": len(rows)}


@router.get("/persons/{name}/case.zip", tags=["admin"],
            response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}}})
def export_case(name: str, request: Request, since: str | None = Query(None),
                until: str | None = Query(None), camera: str | None = Query(None),
                clips: bool = Query(True, description="Cut a clip per hit from the source."),
                user: User = Depends(require_role("admin"))):
    """The person's case (as `cctv-id export-case`: hits, crops, context frames, clips,
    manifest with sha256s) as a zip; audited ("export") under the web user."""
    from ..case.export import export_case as export

    name_param(name, "person")
    a, b = interval(since, until)
    ctx = _ctx(request)
    tmp = Path(tempfile.mkdtemp(prefix="cctv-id-case-"))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "case"
    target = tmp / f"case-{safe}.zip"
    try:
        export(ctx.repo(), ctx.data_dir(), target, person=name, operator=user.username,
               since=a, until=b, camera=name_param(camera, "camera"), clips=clips)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(target, media_type="application/zip", filename=target.name,
                        headers={"Cache-Control": "private, no-store"},
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))
