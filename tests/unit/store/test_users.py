"""Web users in the store (SQLite and PostgreSQL): roles, scrypt hashes, tokens as sha256
only, expiry, revocation, and removing a user ending their tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from cctv_id.errors import InputError, NotFoundError
from cctv_id.store.models import utcnow
from cctv_id.store.users import hash_password, token_digest, verify_password


def test_password_hash_is_salted_and_verifies():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("correct hors", a)
    assert not verify_password("x", None) and not verify_password("x", "garbage")
    assert not verify_password("x", "scrypt$1$2$3$zz$zz")


def test_add_check_list_remove(repo):
    uid = repo.add_user("ann", "admin", "s3cret-pass")
    repo.add_user(" bob ", "viewer")  # no password: tokens only
    assert isinstance(uid, int)
    assert [(u["username"], u["role"], u["has_password"]) for u in repo.list_users()] == [
        ("ann", "admin", True), ("bob", "viewer", False)]
    assert repo.count_users() == 2
    assert repo.check_password("ann", "s3cret-pass")["role"] == "admin"
    assert repo.check_password("ann", "wrong-pass") is None
    assert repo.check_password("nobody", "s3cret-pass") is None
    assert repo.check_password("bob", "") is None
    with pytest.raises(InputError, match="exists already"):
        repo.add_user("ann", "viewer", "another-pass")
    with pytest.raises(InputError, match="unknown role"):
        repo.add_user("cy", "root", "whatever-pass")
    with pytest.raises(InputError, match="too short"):
        repo.add_user("cy", "viewer", "short")
    with pytest.raises(ValueError, match="must not be empty"):
        repo.add_user("  ", "viewer")
    repo.set_password("bob", "now-a-password")
    assert repo.check_password("bob", "now-a-password")["username"] == "bob"
    repo.remove_user("bob")
    assert [u["username"] for u in repo.list_users()] == ["ann"]
    with pytest.raises(NotFoundError):
        repo.remove_user("bob")
    with pytest.raises(NotFoundError):
        repo.get_user("bob")


def test_tokens_stored_as_sha256_expire_and_revoke(repo):
    repo.add_user("ann", "reviewer", "s3cret-pass")
    api = repo.create_token("ann", "api")
    session = repo.create_token("ann", "session", ttl=timedelta(hours=1))
    assert api != session and len(api) >= 40
    assert repo.user_for_token(api)["username"] == "ann"
    assert repo.user_for_token(session, kind="session")["role"] == "reviewer"
    assert repo.user_for_token(api, kind="session") is None  # an API token is no cookie
    assert repo.user_for_token("not-a-token") is None and repo.user_for_token("") is None
    with repo.engine.connect() as conn:
        stored = set(conn.execute(text("SELECT token_sha256 FROM user_tokens")).scalars())
    assert stored == {token_digest(api), token_digest(session)}  # never the token itself
    later = utcnow() + timedelta(hours=2)
    assert repo.user_for_token(session, now=later) is None  # expired
    assert repo.user_for_token(api, now=later)["username"] == "ann"  # API tokens do not
    assert repo.purge_expired_tokens(now=later) == 1
    assert repo.list_users()[0]["tokens"] == 1
    assert repo.revoke_token(api) and not repo.revoke_token(api)
    assert repo.user_for_token(api) is None
    with pytest.raises(NotFoundError):
        repo.create_token("nobody")


def test_removing_a_user_ends_their_tokens(repo):
    repo.add_user("ann", "admin")
    repo.add_user("bob", "viewer")
    t_ann, t_bob = repo.create_token("ann"), repo.create_token("bob")
    assert repo.revoke_tokens("bob", kind="session") == 0
    repo.remove_user("ann")
    assert repo.user_for_token(t_ann) is None
    assert repo.user_for_token(t_bob)["username"] == "bob"
    assert repo.count("user_tokens") == 1
    repo.add_user("ann", "viewer")  # the name can be used again; the old token stays dead
    assert repo.user_for_token(t_ann) is None
