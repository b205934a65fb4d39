"""Who is asking, and what they may do: credentials, roles and login sessions.

Owns the three ways a request proves who it is — the session cookie
(:data:`SESSION_COOKIE`, set by a login), ``Authorization: Bearer <API token>`` and HTTP
Basic ``user:password`` — and the role ladder (:data:`ROLES`: viewer reads; reviewer also
confirms / rejects hits and names tracks; admin also enrols, removes, purges and reads the
audit log). Everything stored lives in :mod:`cctv_id.store.users` (scrypt password hashes,
token sha256s). FastAPI dependencies: :func:`current_user` (401 without valid
credentials), :func:`optional_user` (None instead, for pages that redirect to the login
form) and :func:`require_role` (403 below the role).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, HTTPException, Request

from ..errors import CctvIdError
from ..store.models import USER_ROLES

ROLES = USER_ROLES  # ("viewer", "reviewer", "admin"), lowest first
SESSION_COOKIE = "cctv_id_session"
SESSION_TTL = timedelta(hours=12)


class AuthError(CctvIdError):
    """Wrong username or password (one message for both, so names cannot be probed)."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def _user(d: dict | None) -> User | None:
    return None if d is None else User(id=int(d["id"]), username=d["username"], role=d["role"])


def login(repo, username: str, password: str) -> str:
    """A new session token (valid :data:`SESSION_TTL`) for the user when the password is
    right; else :class:`AuthError`. Audited ("login", with the outcome) either way."""
    username = (username or "").strip()[:255]
    user = repo.check_password(username, password or "") if username else None
    if username:
        repo.record_audit(username, "login", {"via": "password"},
                          {"ok": user is not None})
    if user is None:
        raise AuthError("wrong username or password")
    repo.purge_expired_tokens()  # sessions that ran out go on the next login
    return repo.create_token(user["username"], kind="session", ttl=SESSION_TTL)


def logout(repo, token: str) -> None:
    """End the session (unknown tokens are fine)."""
    if token:
        repo.revoke_token(token)


def _repo(request: Request):
    return request.app.state.ctx.repo()


def authenticate(request: Request) -> User | None:
    """The user behind the request's credentials, or None (none given or not valid)."""
    repo = _repo(request)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return _user(repo.user_for_token(value))
    if scheme == "basic" and value:
        try:
            username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if not sep or not username or len(username) > 255 or len(password) > 1024:
            return None
        return _user(repo.check_password(username, password))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return _user(repo.user_for_token(cookie, kind="session"))
    return None


def current_user(request: Request) -> User:
    """Dependency: the authenticated user; 401 without valid credentials."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    user = authenticate(request)
    if user is None:
        raise HTTPException(401, "not logged in: log in, or send a bearer token or basic credentials",
                            headers={"WWW-Authenticate": 'Bearer realm="cctv-id"'})
    request.state.user = user
    return user


def optional_user(request: Request) -> User | None:
    """Dependency: the authenticated user or None (pages redirect to /login)."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    user = authenticate(request)
    if user is not None:
        request.state.user = user
    return user


def require_role(role: str):
    """Dependency factory: the user when their role is at least ``role``; else 403."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")

    def dependency(user: User = Depends(current_user)) -> User:
        if not user.has_role(role):
            raise HTTPException(403, f"{user.username} is a {user.role}; this needs the {role} role")
        return user

    dependency.__name__ = f"require_{role}"
    return dependency
