"""Access control of the web application on a real (empty) database: every /api route and
evidence file answers 401 without credentials, the session cookie, bearer tokens and HTTP
Basic all work, a viewer gets 403 on reviewer and admin routes, a reviewer on admin ones,
and a removed user's token and session stop working at once. Also ``cctv-id user``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest
from cli_run import one_error_line, run_cli
from fastapi.testclient import TestClient

from cctv_id.cli.context import AppContext
from cctv_id.web.app import create_app
from cctv_id.web.auth import SESSION_COOKIE

PASSWORDS = {"vera": "viewer-pass", "rita": "reviewer-pass", "adam": "admin-pass"}
REVIEWER_ROUTES = {("POST", "/api/hits/{hit_id}/confirm"), ("POST", "/api/hits/{hit_id}/reject"),
                   ("POST", "/api/tracks/{track_id}/name")}
ADMIN_ROUTES = {("POST", "/api/persons"), ("DELETE", "/api/persons/{name}"),
                ("POST", "/api/purge"), ("GET", "/api/audit"),
                ("GET", "/api/persons/{name}/case.zip")}
PUBLIC = {("POST", "/api/login"), ("POST", "/api/logout")}  # log in / out need no credentials


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    ctx = AppContext(db_option=f"sqlite:///{root / 'web.db'}")
    repo = ctx.repo()
    for (name, pw), role in zip(PASSWORDS.items(), ("viewer", "reviewer", "admin")):
        repo.add_user(name, role, pw)
    crops = ctx.data_dir() / "crops" / "run000001"
    crops.mkdir(parents=True)
    (crops / "track000001.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    application = create_app(ctx)
    yield application
    ctx.close()


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def api_routes(app):
    """(method, path template) of every /api route."""
    try:  # FastAPI >= 0.16x keeps included routers lazily; this walks into them
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = app.routes
    out = set()
    for r in routes:
        path = getattr(r, "path", "")
        if path.startswith("/api/"):
            out |= {(m, path) for m in getattr(r, "methods", ()) if m != "HEAD"}
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: "1" if m.group(1).endswith("id") else "x", path)


def test_every_api_route_needs_credentials(app, client):
    routes = api_routes(app)
    assert REVIEWER_ROUTES | ADMIN_ROUTES | PUBLIC <= routes
    assert {("GET", "/api/hits"), ("GET", "/api/tracks"), ("POST", "/api/search"),
            ("GET", "/api/openapi.json")} <= routes
    for method, path in sorted(routes - PUBLIC):
        r = client.request(method, concrete(path))
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json() == {"error": r.json()["error"]} and "log in" in r.json()["error"]
    for path in ("/crops/run000001/track000001.jpg", "/photos/1/x.jpg"):
        assert client.get(path).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert client.get("/api/hits", headers=bad).status_code == 401
    assert client.get("/api/hits", headers={"Authorization": "Basic !!!"}).status_code == 401
    assert client.get("/api/hits", auth=("vera", "wrong-pass")).status_code == 401
    assert client.get("/api/hits", auth=("vera", "x" * 5000)).status_code == 401
    assert client.post("/api/login", json={"username": "v" * 300, "password": "p"}
                       ).status_code == 400
    assert client.get("/api/hits", cookies={SESSION_COOKIE: "forged"}).status_code == 401


def test_roles_are_enforced(app, client):
    for method, path in sorted(REVIEWER_ROUTES | ADMIN_ROUTES):
        r = client.request(method, concrete(path), auth=("vera", PASSWORDS["vera"]))
        assert r.status_code == 403, (method, path, r.text)
        assert "viewer" in r.json()["error"]
    for method, path in sorted(ADMIN_ROUTES):
        r = client.request(method, concrete(path), auth=("rita", PASSWORDS["rita"]))
        assert r.status_code == 403, (method, path, r.text)
    # allowed roles get past the check (to a 404 / 400 about the missing thing itself)
    r = client.post("/api/hits/1/confirm", auth=("rita", PASSWORDS["rita"]))
    assert r.status_code == 404 and "unknown hit" in r.json()["error"]
    r = client.get("/api/audit", auth=("adam", PASSWORDS["adam"]))
    assert r.status_code == 200


def test_cookie_bearer_and_basic(app, client):
    assert client.get("/api/me", auth=("rita", PASSWORDS["rita"])).json() == {
        "username": "rita", "role": "reviewer"}
    r = client.post("/api/login", json={"username": "vera", "password": "bad-password"})
    assert r.status_code == 401 and r.json() == {"error": "wrong username or password"}
    assert SESSION_COOKIE not in client.cookies
    r = client.post("/api/login", json={"username": "vera", "password": PASSWORDS["vera"]})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    assert "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=strict" in r.headers["set-cookie"].lower()
    assert client.get("/api/me").json()["username"] == "vera"  # the cookie
    assert client.get("/crops/run000001/track000001.jpg").status_code == 200
    client.post("/api/logout")
    assert client.get("/api/me").status_code == 401
    repo = app.state.ctx.repo()
    token = repo.create_token("adam")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=headers).json()["role"] == "admin"
    logins = repo.list_audit(action="login")
    assert [(e["operator"], e["outcome"]["ok"]) for e in logins][-2:] == [("vera", False),
                                                                          ("vera", True)]


def test_removed_user_and_revoked_token_stop_working(app, client):
    repo = app.state.ctx.repo()
    repo.add_user("temp", "admin", "temporary-pass")
    token = repo.create_token("temp")
    client.post("/api/login", json={"username": "temp", "password": "temporary-pass"})
    session = client.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/api/me", cookies={SESSION_COOKIE: session}).status_code == 200
    repo.remove_user("temp")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/api/me", cookies={SESSION_COOKIE: session}).status_code == 401
    assert client.get("/api/me", auth=("temp", "temporary-pass")).status_code == 401
    token2 = repo.create_token("adam")
    repo.revoke_token(token2)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token2}"}).status_code == 401


def test_user_cli(tmp_path):
    env = dict(os.environ, CCTV_ID_DB=f"sqlite:///{tmp_path / 'u.db'}")
    env.pop("CCTV_ID_CONFIG", None)
    proc = run_cli(env, "serve")
    assert proc.returncode != 0 and "user add" in one_error_line(proc)
    add = subprocess.run([sys.executable, "-m", "cctv_id.cli.main", "user", "add", "ann",
                          "--role", "admin", "--password-stdin"], input="long-password\n",
                         capture_output=True, text=True, env=env, timeout=120)
    assert add.returncode == 0, add.stderr
    proc = run_cli(env, "user", "add", "ann", "--role", "viewer")
    assert "exists already" in one_error_line(proc)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        proc = run_cli(env, "serve", "--port", str(taken.getsockname()[1]))
    assert proc.returncode != 0
    assert one_error_line(proc).endswith("Address already in use")
    token = run_cli(env, "user", "token", "ann").stdout.strip()
    assert len(token) >= 40
    listing = run_cli(env, "user", "list", "--format", "json").stdout
    assert '"tokens": 1' in listing and token not in listing
    assert run_cli(env, "user", "remove", "ann").returncode == 0
    assert "unknown user" in one_error_line(run_cli(env, "user", "token", "ann"))
