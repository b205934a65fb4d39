"""The JSON API under ``/api``: the router that gathers every part.

Owns the session routes (``POST /api/login``, ``POST /api/logout``, ``GET /api/me``) and
the API's own description (``GET /api/openapi.json``, ``GET /api/docs``; both need
credentials like everything else under ``/api``). The queries live in
:mod:`cctv_id.web.api_read`, the review and admin actions in :mod:`cctv_id.web.api_write`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from .auth import SESSION_COOKIE, SESSION_TTL, User, current_user, login, logout

router = APIRouter()


class LoginBody(BaseModel):
    username: str
    password: str


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
def docs(user: User = Depends(current_user)) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/api/openapi.json", title="cctv-id API")


def _include_parts() -> None:
    from . import api_read, api_write

    router.include_router(api_read.router)
    router.include_router(api_write.router)

_include_parts()
