"""The pages' form actions (POST): review decisions, naming an unknown track, search by
photo, enrolment, removing a person, purging — each the same library call the CLI and the
JSON API make, under the logged-in user's name in the audit log.

Owns the checks every action passes first: credentials (none: to the login form), the role
(too low: an HTML 403 page), and a same-origin check (a form posted from another site is
refused; the session cookie is also ``SameSite=Strict``). Uploaded photos are written (by
the API's size-limited writer) to a private temporary folder and deleted afterwards. Registered on
:data:`cctv_id.web.pages.router` when that module is imported.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ..errors import CctvIdError, InputError
from .auth import User, optional_user
from .pages import (_cameras, _repo, error_page, forbidden, parse_when, render, router,
                    safe_next, status_of)

MAX_PHOTOS = 50


def _same_origin(request: Request) -> bool:
    """False for a form posted from another site (Origin or Sec-Fetch-Site tell)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return urlsplit(origin).netloc == request.headers.get("host", "")
    return True


def _refuse(request: Request, user: User | None, role: str):
    """The response refusing this action, or None when ``user`` may do it."""
    if user is None:
        back = safe_next(request.headers.get("referer"), "/hits")
        return RedirectResponse(f"/login?next={back}", status_code=303)
    if not _same_origin(request):
        return error_page(request, user, 403, "form posted from another site: refused")
    if not user.has_role(role):
        return forbidden(request, user, role)
    return None


async def _act(request: Request, user: User, fn, *args, back: str):
    """Run ``fn(*args)`` off the event loop; back to ``back`` (303), or an error page."""
    try:
        await run_in_threadpool(fn, *args)
    except CctvIdError as exc:
        return error_page(request, user, status_of(exc), str(exc))
    return RedirectResponse(back, status_code=303)


def _back(form, request: Request, default: str) -> str:
    return safe_next(str(form.get("next") or request.headers.get("referer") or ""), default)


# ---------------------------------------------------------------- reviews
@router.post("/hits/{hit_id}/{decision}", response_class=HTMLResponse)
async def review_hit(request: Request, hit_id: str, decision: str,
                     user: User | None = Depends(optional_user)):
    if (refused := _refuse(request, user, "reviewer")) is not None:
        return refused
    form = await request.form()
    repo = _repo(request)
    fn = {"confirm": repo.confirm_hit, "reject": repo.reject_hit}.get(decision)
    if fn is None or not hit_id.isdigit():
        return error_page(request, user, 404, f"no such review action: {decision} hit {hit_id}")
    note = str(form.get("note") or "").strip() or None
    return await _act(request, user, lambda: fn(int(hit_id), operator=user.username, note=note),
                      back=_back(form, request, "/hits"))


@router.post("/tracks/{track_id}/name", response_class=HTMLResponse)
async def name_track(request: Request, track_id: str, user: User | None = Depends(optional_user)):
    if (refused := _refuse(request, user, "reviewer")) is not None:
        return refused
    form = await request.form()
    person = str(form.get("person") or "").strip()
    if not track_id.isdigit():
        return error_page(request, user, 404, f"unknown track {track_id}")
    if not person:
        return error_page(request, user, 400, "say who this is: the name must not be empty")
    repo = _repo(request)
    return await _act(request, user,
                      lambda: repo.name_track(int(track_id), person, operator=user.username),
                      back=_back(form, request, "/unknown"))


# ---------------------------------------------------------------- uploads
async def _save_uploads(form, field: str, folder: Path) -> list[tuple[str, Path]]:
    """The uploaded files of ``field`` written under ``folder`` (as the API writes them):
    (original name, path)."""
    from .api_read import save_upload

    uploads = [up for up in form.getlist(field)
               if hasattr(up, "file") and getattr(up, "filename", "")]
    if len(uploads) > MAX_PHOTOS:
        raise InputError(f"at most {MAX_PHOTOS} photos at once")
    return [(up.filename, await run_in_threadpool(save_upload, up, folder, i))
            for i, up in enumerate(uploads)]


# ---------------------------------------------------------------- search by photo
@router.post("/search", response_class=HTMLResponse)
async def search_submit(request: Request, user: User | None = Depends(optional_user)):
    if (refused := _refuse(request, user, "viewer")) is not None:
        return refused
    from ..watchlist.search import search_by_photo

    form = await request.form()
    f = {k: (str(form.get(k) or "").strip() or None) for k in ("top", "camera", "since", "until")}
    repo, web = _repo(request), request.app.state.web
    results, info, error, photo_name = [], None, None, None
    with tempfile.TemporaryDirectory(prefix="cctv-id-search-") as tmp:
        try:
            photos = await _save_uploads(form, "photo", Path(tmp))
            if len(photos) != 1:
                raise InputError("choose one photo to search with")
            photo_name, path = photos[0]
            try:
                top = int(f["top"] or 10)
            except ValueError:
                raise InputError(f"top must be a whole number, got {f['top']!r}") from None
            if not 1 <= top <= 1000:
                raise InputError("top must be between 1 and 1000")
            since, until = parse_when(f["since"], "since"), parse_when(f["until"], "until")
            ctx = request.app.state.ctx
            results, info = await run_in_threadpool(
                lambda: search_by_photo(repo, web.detector(), web.encoder(), ctx.data_dir(), path,
                                        top=top, since=since, until=until, camera=f["camera"],
                                        operator=user.username))
        except CctvIdError as exc:
            error = str(exc)
            if photo_name:  # the photo as uploaded, not its temporary copy
                error = error.replace(str(path), photo_name)
    return render(request, "search.html", user, status=400 if error else 200, f=f,
                  results=results, info=info, error=error, photo_name=photo_name,
                  cameras=_cameras(repo), active="/search", title="Search by photo")


# ---------------------------------------------------------------- watchlist (admin)
def _enrol(request: Request, user: User, pairs: list[tuple[str, Path]], largest: bool) -> dict:
    """Enrol like ``cctv-id enroll`` does: check and embed, store, then retro-match."""
    from ..watchlist import enrol
    from ..watchlist.retro import retro_match

    ctx, web = request.app.state.ctx, request.app.state.web
    encoder = web.encoder()
    items = enrol.prepare(pairs, web.detector(), encoder, largest=largest)
    repo = ctx.repo()
    result = enrol.commit(repo, items, encoder.name, data_dir=ctx.data_dir(),
                          operator=user.username)
    retro_match(repo, encoder.name, ctx.bands(encoder), ctx.config().decision,
                list(result["persons"]), operator=user.username)
    return result


async def _enrol_action(request: Request, user: User, name: str):
    form = await request.form()
    name = (name or str(form.get("name") or "")).strip()
    if not name:
        return error_page(request, user, 400, "the person's name must not be empty")
    with tempfile.TemporaryDirectory(prefix="cctv-id-enrol-") as tmp:
        try:
            photos = await _save_uploads(form, "photos", Path(tmp))
            if not photos:
                raise InputError("choose at least one photo to enrol")
        except CctvIdError as exc:
            return error_page(request, user, status_of(exc), str(exc))
        largest = bool(form.get("largest"))
        response = await _act(request, user, _enrol, request, user,
                              [(name, p) for _, p in photos], largest,
                              back=f"/persons/{_quote(name)}")
        if response.status_code >= 400:  # name the photos as uploaded, not their temporary copies
            for original, path in photos:
                response.body = response.body.replace(str(path).encode(), original.encode())
            response.headers["content-length"] = str(len(response.body))
        return response


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


@router.post("/persons/enrol", response_class=HTMLResponse)
async def enrol_new(request: Request, user: User | None = Depends(optional_user)):
    if (refused := _refuse(request, user, "admin")) is not None:
        return refused
    return await _enrol_action(request, user, "")


@router.post("/persons/{name}/enrol", response_class=HTMLResponse)
async def enrol_more(request: Request, name: str, user: User | None = Depends(optional_user)):
    if (refused := _refuse(request, user, "admin")) is not None:
        return refused
    return await _enrol_action(request, user, name)


@router.post("/persons/{name}/remove", response_class=HTMLResponse)
async def remove_person(request: Request, name: str, user: User | None = Depends(optional_user)):
    if (refused := _refuse(request, user, "admin")) is not None:
        return refused
    from .. import governance

    form = await request.form()
    ctx = request.app.state.ctx
    purge_hits = bool(form.get("purge_hits"))
    return await _act(request, user, governance.remove_person, ctx.repo(), ctx.data_dir(), name,
                      user.username, purge_hits, back="/persons")


@router.post("/admin/purge", response_class=HTMLResponse)
async def purge(request: Request, user: User | None = Depends(optional_user)):
    if (refused := _refuse(request, user, "admin")) is not None:
        return refused
    from .. import governance

    form = await request.form()
    ctx = request.app.state.ctx
    unknown = str(form.get("unknown_older_than") or "").strip() or None
    hits = str(form.get("hits_older_than") or "").strip() or None
    dry_run = bool(form.get("dry_run"))
    try:
        out = await run_in_threadpool(governance.purge, ctx.repo(), ctx.data_dir(), user.username,
                                      unknown, hits, dry_run)
    except CctvIdError as exc:
        return error_page(request, user, status_of(exc), str(exc))
    summary = ", ".join(f"{k.removeprefix('n_').replace('_', ' ')}: {v}" for k, v in out.items()
                        if k.startswith("n_") and isinstance(v, int))
    repo = ctx.repo()
    return render(request, "admin.html", user, users=repo.list_users(),
                  audit=repo.list_audit()[-50:][::-1], active="/admin", title="Administration",
                  flash=("dry run — would delete " if dry_run else "purged — ")
                  + (summary or "nothing"))
