"""Web users: accounts, roles, password hashes, login sessions and API tokens.

Owns the password hash format (``scrypt$n$r$p$salt_hex$hash_hex``: hashlib.scrypt with a
random 16-byte salt per user, compared in constant time) and the tokens: a token is 32
random bytes (URL-safe text) handed out once; only its sha256 is stored, so a copy of the
database lets nobody log in. Removing a user deletes their tokens in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cctv_id.errors import InputError, NotFoundError
from cctv_id.store.engine import RepositoryBase
from cctv_id.store.models import TOKEN_KINDS, USER_ROLES, User, UserToken, utcnow

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` (the stored format)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches the stored hash (constant-time compare)."""
    if not stored:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, bytes.fromhex(digest))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _user_dict(u: User) -> dict:
    return {"id": u.id, "username": u.username, "role": u.role, "created_at": u.created_at,
            "has_password": u.password_hash is not None}


class UsersMixin(RepositoryBase):
    """Web users and their tokens (part of :class:`Repository`)."""

    @staticmethod
    def _check_role(role: str) -> str:
        if role not in USER_ROLES:
            raise InputError(f"unknown role {role!r}; one of {', '.join(USER_ROLES)}")
        return role

    def add_user(self, username: str, role: str, password: str | None = None) -> int:
        """A new user; returns its id. Existing username or short password: InputError."""
        username = self._name(username, "user")
        self._check_role(role)
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise InputError(f"password too short (at least {MIN_PASSWORD_LENGTH} characters)")
        hashed = None if password is None else hash_password(password)

        def body(s: Session) -> int:
            if s.execute(select(User.id).where(User.username == username)).first():
                raise InputError(f"user {username!r} exists already")
            u = User(username=username, role=role, password_hash=hashed, created_at=utcnow())
            s.add(u)
            s.flush()
            return int(u.id)

        return self._transact(body, write=True)

    def list_users(self) -> list[dict]:
        """Users by name, with ``tokens`` = their live API token count."""
        def body(s: Session) -> list[dict]:
            counts = dict(s.execute(select(UserToken.user_id, func.count()).where(
                UserToken.kind == "api").group_by(UserToken.user_id)).all())
            return [dict(_user_dict(u), tokens=int(counts.get(u.id, 0)))
                    for u in s.execute(select(User).order_by(User.username)).scalars()]

        return self._transact(body)

    def count_users(self) -> int:
        return self._transact(lambda s: int(s.execute(select(func.count()).select_from(User))
                                            .scalar_one()))

    def get_user(self, username: str) -> dict:
        def body(s: Session) -> dict:
            u = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
            if u is None:
                raise NotFoundError(f"unknown user {username!r}")
            return _user_dict(u)

        return self._transact(body)

    def remove_user(self, username: str) -> None:
        """Delete the user and every token of theirs (one transaction)."""
        def body(s: Session) -> None:
            uid = s.execute(select(User.id).where(User.username == username)).scalar_one_or_none()
            if uid is None:
                raise NotFoundError(f"unknown user {username!r}")
            s.execute(delete(UserToken).where(UserToken.user_id == uid))
            s.execute(delete(User).where(User.id == uid))

        self._transact(body, write=True)

    def set_password(self, username: str, password: str | None) -> None:
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise InputError(f"password too short (at least {MIN_PASSWORD_LENGTH} characters)")
        hashed = None if password is None else hash_password(password)

        def body(s: Session) -> None:
            u = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
            if u is None:
                raise NotFoundError(f"unknown user {username!r}")
            u.password_hash = hashed

        self._transact(body, write=True)

    def check_password(self, username: str, password: str) -> dict | None:
        """The user when ``password`` is theirs, else None (unknown users cost the same)."""
        def body(s: Session):
            return s.execute(select(User).where(User.username == username)).scalar_one_or_none()

        u = self._transact(body)
        if u is None:
            verify_password(password, _DUMMY_HASH)  # same work as a real check
            return None
        return _user_dict(u) if verify_password(password, u.password_hash) else None

    def create_token(self, username: str, kind: str = "api",
                     ttl: timedelta | None = None) -> str:
        """A new token for the user (returned once; only its sha256 is stored)."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token kind {kind!r}; one of {', '.join(TOKEN_KINDS)}")
        token = secrets.token_urlsafe(32)
        now = utcnow()

        def body(s: Session) -> None:
            uid = s.execute(select(User.id).where(User.username == username)).scalar_one_or_none()
            if uid is None:
                raise NotFoundError(f"unknown user {username!r}")
            s.add(UserToken(user_id=uid, token_sha256=token_digest(token), kind=kind,
                            created_at=now, expires_at=None if ttl is None else now + ttl))

        self._transact(body, write=True)
        return token

    def user_for_token(self, token: str, kind: str | None = None,
                       now: datetime | None = None) -> dict | None:
        """The user holding this live (unexpired) token, else None."""
        if not token:
            return None
        now = now or utcnow()
        q = (select(User, UserToken.expires_at).join(UserToken, UserToken.user_id == User.id)
             .where(UserToken.token_sha256 == token_digest(token)))
        if kind is not None:
            q = q.where(UserToken.kind == kind)

        def body(s: Session):
            row = s.execute(q).first()
            if row is None or (row[1] is not None and row[1] <= now):
                return None
            return _user_dict(row[0])

        return self._transact(body)

    def revoke_token(self, token: str) -> bool:
        """Delete the token; whether it existed."""
        digest = token_digest(token or "")
        return bool(self._transact(lambda s: s.execute(delete(UserToken).where(
            UserToken.token_sha256 == digest)).rowcount, write=True))

    def revoke_tokens(self, username: str, kind: str | None = None) -> int:
        """Delete the user's tokens (of one kind, or all); how many."""
        def body(s: Session) -> int:
            uid = s.execute(select(User.id).where(User.username == username)).scalar_one_or_none()
            if uid is None:
                raise NotFoundError(f"unknown user {username!r}")
            q = delete(UserToken).where(UserToken.user_id == uid)
            if kind is not None:
                q = q.where(UserToken.kind == kind)
            return int(s.execute(q).rowcount or 0)

        return self._transact(body, write=True)

    def purge_expired_tokens(self, now: datetime | None = None) -> int:
        now = now or utcnow()
        return int(self._transact(lambda s: s.execute(delete(UserToken).where(
            UserToken.expires_at.is_not(None), UserToken.expires_at <= now)).rowcount or 0,
            write=True))


_DUMMY_HASH = hash_password("not a real password")
