"""HTML pages of the web application: server-rendered Jinja2 over the same library calls as
the CLI and the JSON API (the repository's queries, search by photo, enrolment, reviews,
governance) — no query layer of their own.

Owns the page routes (reading pages here; the form actions that change data in
:mod:`cctv_id.web.page_actions`), the login form and session cookie, the template
environment (time and URL helpers) and the page-side access policy: a request without
credentials is redirected to ``/login?next=…``, a user whose role is too low gets an HTML
403 page (and never sees the buttons). Forms work without JavaScript; the only script polls
a running job's progress.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..errors import CctvIdError, InputError
from ..serialize import iso
from .auth import SESSION_COOKIE, SESSION_TTL, AuthError, User, login, logout, optional_user
from .files import crop_url, photo_url

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
PAGE_SIZE = 25


# ---------------------------------------------------------------- template helpers
def _when(at: datetime | None, pts_s: float | None = None) -> str:
    """A wall-clock time as ``YYYY-MM-DD HH:MM:SS`` UTC; else the offset into the video."""
    if at is not None:
        return iso(at).replace("T", " ").replace("Z", "")[:19]
    if pts_s is not None:
        return f"{pts_s:.1f} s into the video"
    return "—"


def _dur(row: dict) -> str:
    a, b = row.get("first_seen_s"), row.get("last_seen_s")
    return f"{max(0.0, b - a):.1f} s" if a is not None and b is not None else ""


def _media(rel: str | None) -> str | None:
    """URL of an evidence file or stored photo given relative to data_dir."""
    rel = (rel or "").replace("\\", "/")
    return photo_url(rel) if rel.startswith("enrolments/") else crop_url(rel)


templates.env.globals.update(media=_media, when=_when, dur=_dur)
templates.env.filters["basename"] = lambda p: Path(str(p or "")).name


def render(request: Request, name: str, user: User | None, status: int = 200,
           **context) -> HTMLResponse:
    context.update(user=user, can=lambda role: user is not None and user.has_role(role),
                   here=_here(request))
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(request: Request, user: User | None, status: int, message: str,
               heading: str | None = None) -> HTMLResponse:
    heading = heading or {400: "That did not work", 403: "Not allowed", 404: "Not found"}.get(
        status, "Something went wrong")
    return render(request, "error.html", user, status=status, heading=heading,
                  message=" ".join(str(message).split()), title=heading,
                  back=safe_next(request.headers.get("referer"), ""))


def forbidden(request: Request, user: User, role: str) -> HTMLResponse:
    return error_page(request, user, 403,
                      f"{user.username} is a {user.role}; this needs the {role} role.")


def status_of(exc: CctvIdError) -> int:
    from ..errors import NotFoundError, StoreError

    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, StoreError):
        return 503
    return 400


def _here(request: Request) -> str:
    q = request.url.query
    return request.url.path + (f"?{q}" if q else "")


def safe_next(target: str | None, default: str = "/hits") -> str:
    """A local path to go back to (never another site: no scheme, no ``//``)."""
    if not target:
        return default
    if target.startswith(("http://", "https://")):
        from urllib.parse import urlsplit

        parts = urlsplit(target)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/login?" + urlencode({"next": _here(request)}), status_code=303)


def gate(request: Request, user: User | None, role: str = "viewer") -> Response | None:
    """None when ``user`` may see the page; else the redirect to the login form or a 403."""
    if user is None:
        return to_login(request)
    if not user.has_role(role):
        return forbidden(request, user, role)
    return None


def _repo(request: Request):
    return request.app.state.ctx.repo()


def _cameras(repo) -> list[str]:
    return sorted({r["camera"] for r in repo.list_runs()})


def parse_when(value: str | None, what: str) -> datetime | None:
    """A ``datetime-local`` field (or any ISO 8601 time), naive taken as UTC; blank: None."""
    from ..cli.process import parse_time

    value = (value or "").strip()
    return parse_time(value, what) if value else None


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


class Pager:
    """Page ``page`` of ``total`` rows: the offset, "n–m of N" and links keeping the filters."""

    def __init__(self, request: Request, page: int, total: int, size: int = PAGE_SIZE):
        self.size, self.total = size, total
        self.pages = max(1, math.ceil(total / size))
        self.page = min(max(1, page), self.pages)
        self.offset = (self.page - 1) * size
        self.first = self.offset + 1 if total else 0
        self.last = min(total, self.offset + size)
        self._params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]

    def url(self, n: int) -> str:
        return "?" + urlencode(self._params + [("page", str(n))])

    @property
    def window(self) -> list[int | None]:
        keep = {1, self.pages} | set(range(self.page - 2, self.page + 3))
        out: list[int | None] = []
        for n in range(1, self.pages + 1):
            if n in keep:
                out.append(n)
            elif out and out[-1] is not None:
                out.append(None)
        return out


def _page_number(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


def _page_size(request: Request) -> int:
    """Rows per page: ``per_page`` (1 to 200), else :data:`PAGE_SIZE`."""
    try:
        return min(200, max(1, int(request.query_params.get("per_page", PAGE_SIZE))))
    except ValueError:
        return PAGE_SIZE


# ---------------------------------------------------------------- login
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/hits", user: User | None = Depends(optional_user)):
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", None, next=safe_next(next), title="Sign in")


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request):
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    try:
        token = await run_in_threadpool(login, _repo(request), username, password)
    except AuthError as exc:
        return render(request, "login.html", None, status=401, error=str(exc), next=target,
                      username=username, title="Sign in")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()),
                        httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout_page(request: Request):
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        logout(_repo(request), token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home():
    return RedirectResponse("/hits", status_code=303)


# ---------------------------------------------------------------- hits
@router.get("/hits", response_class=HTMLResponse)
def hits_page(request: Request, user: User | None = Depends(optional_user)):
    if (refused := gate(request, user)) is not None:
        return refused
    repo = _repo(request)
    q = request.query_params
    f = {k: _blank(q.get(k)) for k in ("person", "camera", "since", "until", "min_score")}
    f["hide_rejected"] = bool(_blank(q.get("hide_rejected")))
    persons = [p["name"] for p in repo.list_persons()]
    cameras = _cameras(repo)
    rows, error, p = [], None, Pager(request, 1, 0)
    try:
        min_score = None
        if f["min_score"] is not None:
            try:
                min_score = float(f["min_score"])
            except ValueError:
                raise InputError(f"min score must be a number, got {f['min_score']!r}") from None
            if not math.isfinite(min_score):
                raise InputError("min score must be a finite number")
        filters = dict(person=f["person"], camera=f["camera"],
                       since=parse_when(f["since"], "since"),
                       until=parse_when(f["until"], "until"), min_score=min_score,
                       exclude_rejected=f["hide_rejected"])
        p = Pager(request, _page_number(request), repo.count_hits(**filters), _page_size(request))
        rows = repo.query_hits(**filters, limit=p.size, offset=p.offset)
    except CctvIdError as exc:
        error = str(exc)
    return render(request, "hits.html", user, status=400 if error else 200, rows=rows, p=p, f=f,
                  persons=persons, cameras=cameras, error=error, active="/hits", title="Hits")


# ---------------------------------------------------------------- persons
@router.get("/persons", response_class=HTMLResponse)
def persons_page(request: Request, user: User | None = Depends(optional_user)):
    if (refused := gate(request, user)) is not None:
        return refused
    return render(request, "persons.html", user, persons=_repo(request).list_persons(),
                  active="/persons", title="People")


@router.get("/persons/{name}", response_class=HTMLResponse)
def person_page(request: Request, name: str, user: User | None = Depends(optional_user)):
    if (refused := gate(request, user)) is not None:
        return refused
    repo = _repo(request)
    person = next((p for p in repo.list_persons() if p["name"] == name), None)
    if person is None:
        return error_page(request, user, 404, f"nobody called {name!r} is enrolled")
    timeline = repo.timeline(name)
    cameras = sorted({h["camera"] for h in timeline})
    return render(request, "person.html", user, person=person,
                  photos=repo.person_enrolments(name), timeline=timeline, cameras=cameras,
                  active="/persons", title=name)


# ---------------------------------------------------------------- unknown tracks
@router.get("/unknown", response_class=HTMLResponse)
def unknown_page(request: Request, user: User | None = Depends(optional_user)):
    if (refused := gate(request, user)) is not None:
        return refused
    repo = _repo(request)
    q = request.query_params
    f = {k: _blank(q.get(k)) for k in ("camera", "since", "until")}
    rows, error, p = [], None, Pager(request, 1, 0)
    try:
        filters = dict(camera=f["camera"], since=parse_when(f["since"], "since"),
                       until=parse_when(f["until"], "until"), unknown=True)
        p = Pager(request, _page_number(request), repo.count_tracks(**filters),
                  _page_size(request))
        rows = repo.query_tracks(**filters, limit=p.size, offset=p.offset)
    except CctvIdError as exc:
        error = str(exc)
    return render(request, "unknown.html", user, status=400 if error else 200, rows=rows, p=p,
                  f=f, error=error,
                  cameras=_cameras(repo), persons=[x["name"] for x in repo.list_persons()],
                  active="/unknown", title="Unknown tracks")


# ---------------------------------------------------------------- search by photo
@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, user: User | None = Depends(optional_user)):
    if (refused := gate(request, user)) is not None:
        return refused
    return render(request, "search.html", user, f={}, cameras=_cameras(_repo(request)),
                  active="/search", title="Search by photo")


# ---------------------------------------------------------------- runs
@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, user: User | None = Depends(optional_user)):
    if (refused := gate(request, user)) is not None:
        return refused
    from .api_read import run_out

    runs = [run_out(r, full=False) for r in _repo(request).list_runs()]  # credentials redacted
    return render(request, "runs.html", user, runs=runs, active="/runs", title="Runs")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, user: User | None = Depends(optional_user)):
    if (refused := gate(request, user)) is not None:
        return refused
    from ..errors import NotFoundError
    from .api_read import run_out

    try:
        run = run_out(_repo(request).get_run(int(run_id)), full=True)  # as /api/runs/ID
    except (ValueError, NotFoundError):
        return error_page(request, user, 404, f"unknown run {run_id}")
    config_json = json.dumps(run["config"], indent=2, sort_keys=True, default=str)
    return render(request, "run.html", user, run=run, title=f"Run #{run['id']}",
                  config_json=config_json,
                  total_frames=None, active="/runs")


# ---------------------------------------------------------------- admin
@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, user: User | None = Depends(optional_user)):
    if (refused := gate(request, user, "admin")) is not None:
        return refused
    repo = _repo(request)
    audit = repo.list_audit()[-50:][::-1]
    return render(request, "admin.html", user, users=repo.list_users(), audit=audit,
                  active="/admin", title="Administration")


def register_actions() -> None:
    from . import page_actions  # noqa: F401  (adds the form actions to ``router``)


register_actions()
__all__ = ["router"]
