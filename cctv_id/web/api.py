"""The JSON API under ``/api``: the router that gathers every part.

Owns the session routes (``POST /api/login``, ``POST /api/logout``, ``GET /api/me``) and
the API's own description (``GET /api/openapi.json``, ``GET /api/docs``, a plain HTML page
without scripts; both need
credentials like everything else under ``/api``). The queries live in
:mod:`cctv_id.web.api_read`, the review and admin actions in :mod:`cctv_id.web.api_write`.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from .auth import SESSION_COOKIE, SESSION_TTL, User, current_user, login, logout

router = APIRouter()


class LoginBody(BaseModel):
    username: str = Field(..., min_length=1, max_length=255)
    password: str = Field(..., max_length=1024)


class UserOut(BaseModel):
    username: str
    role: str


@router.post("/login", tags=["session"], response_model=UserOut,
             responses={401: {"description": "wrong username or password"}})
def api_login(body: LoginBody, request: Request, response: Response) -> UserOut:
    """Log in with a password: sets the session cookie (HttpOnly, SameSite=Strict, 12 h)."""
    repo = request.app.state.ctx.repo()
    token = login(repo, body.username, body.password)
    user = repo.user_for_token(token, kind="session")
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()),
                        httponly=True, samesite="strict", path="/")
    return UserOut(username=user["username"], role=user["role"])


@router.post("/logout", tags=["session"])
def api_logout(request: Request, response: Response) -> dict:
    """End the session of the cookie (if any) and clear it."""
    logout(request.app.state.ctx.repo(), request.cookies.get(SESSION_COOKIE, ""))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/me", tags=["session"], response_model=UserOut)
def me(user: User = Depends(current_user)) -> UserOut:
    """Who the credentials belong to, and their role."""
    return UserOut(username=user.username, role=user.role)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, user: User = Depends(current_user)) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
def docs(request: Request, user: User = Depends(current_user)) -> HTMLResponse:
    """The OpenAPI document as one plain HTML page (no scripts, no CDN: works offline)."""
    return HTMLResponse(render_docs(request.app.openapi()))


def render_docs(doc: dict) -> str:
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>"
             f"{e(doc['info']['title'])} API</title><link rel='stylesheet' href='/static/style.css'>"
             f"</head><body><main class='docs'><h1>{e(doc['info']['title'])} JSON API "
             f"{e(doc['info'].get('version', ''))}</h1><p>{e(doc['info'].get('description', ''))}"
             f"</p><p><a href='/api/openapi.json'>openapi.json</a></p>"]
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            parts.append(f"<section><h2><code>{e(method.upper())} {e(path)}</code></h2>"
                         f"<p>{e(op.get('summary', ''))}</p>"
                         f"<p>{e(op.get('description', '') or '')}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th>"
                             "<th>description</th></tr>")
                for prm in params:
                    schema = prm.get("schema", {})
                    kind = schema.get("type") or " | ".join(
                        x.get("type", "?") for x in schema.get("anyOf", [])) or "?"
                    parts.append(f"<tr><td><code>{e(prm['name'])}</code></td>"
                                 f"<td>{e(prm.get('in', ''))}</td><td>{e(kind)}</td>"
                                 f"<td>{e(prm.get('description', '') or '')}</td></tr>")
                parts.append("</table>")
            body = op.get("requestBody", {}).get("content", {})
            if body:
                parts.append(f"<p>body: {e(', '.join(body))}</p>")
            parts.append("</section>")
    parts.append("</main></body></html>")
    return "".join(parts)


def _include_parts() -> None:
    from . import api_read, api_write

    router.include_router(api_read.router)
    router.include_router(api_write.router)

_include_parts()
