"""The JSON API over the processed street world (real SQLite database, real models, real
``cctv-id serve`` for raw paths): pages that cover every hit exactly once, one-line errors for
bad parameters, evidence files served only from the data folder, search by photo ranking the
right unknown track first (audited under the web user), person pages, case export as a zip
(audited), review and admin actions, runs whose source URL had credentials, OpenAPI."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile

import investigation as I
import pytest
import street_scenario as S
from fastapi.testclient import TestClient

from cctv_id.cli.context import AppContext
from cctv_id.web.app import create_app

ROLES = {"vera": "viewer", "rita": "reviewer", "adam": "admin"}
PASSWORD = "web-test-password"


@pytest.fixture(scope="module")
def world(investigation_template, tmp_path_factory):
    return I.copy_world(investigation_template, tmp_path_factory.mktemp("webworld"))


@pytest.fixture(scope="module")
def ctx(world):
    os.environ.pop("CCTV_ID_CONFIG", None)
    app_ctx = AppContext(db_option=world.db_url)
    for name, role in ROLES.items():
        app_ctx.repo().add_user(name, role, PASSWORD)
    yield app_ctx
    app_ctx.close()


@pytest.fixture(scope="module")
def api(ctx):
    """A client per user (bearer tokens: cheaper than checking a password per request)."""
    app = create_app(ctx)
    clients = {}
    for name in ROLES:
        c = TestClient(app)
        c.headers["Authorization"] = f"Bearer {ctx.repo().create_token(name)}"
        clients[name] = c
    return clients


def error_of(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    assert body["error"] and "\n" not in body["error"]
    return body["error"]


def test_hits_pages_cover_every_hit_once(api, ctx):
    c = api["vera"]
    everything = ctx.repo().query_hits(exclude_rejected=True)
    assert len(everything) >= 2
    first = c.get("/api/hits").json()
    assert first["total"] == len(everything) and first["limit"] == 50 and first["offset"] == 0
    seen = []
    for offset in range(0, len(everything) + 2, 2):
        body = c.get("/api/hits", params={"limit": 2, "offset": offset}).json()
        assert body["total"] == len(everything) and len(body["items"]) <= 2
        seen += [h["hit_id"] for h in body["items"]]
    assert seen == [h["hit_id"] for h in everything]  # same order, each exactly once
    t0 = time.perf_counter()
    for _ in range(10):
        assert c.get("/api/hits", params={"limit": 50}).status_code == 200
    print(f"GET /api/hits?limit=50 ({len(everything)} hits): "
          f"{(time.perf_counter() - t0) * 100:.1f} ms per request")
    hit = first["items"][0]
    assert hit["crop_url"].startswith("/crops/run") and hit["first_seen_at"].endswith("Z")
    assert not any(str(v).startswith(str(ctx.data_dir())) for v in hit.values())
    img = c.get(hit["crop_url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert img.content[:2] == b"\xff\xd8" and "private" in img.headers["cache-control"]
    # filters: the same rows as the library's query
    only = c.get("/api/hits", params={"person": "7201"}).json()
    assert {h["person"] for h in only["items"]} == {"7201"}
    assert only["total"] == len(ctx.repo().query_hits(person="7201", exclude_rejected=True))
    assert c.get("/api/hits", params={"min_score": 0.99}).json()["total"] == len(
        ctx.repo().query_hits(min_score=0.99, exclude_rejected=True))
    late = c.get("/api/hits", params={"since": "2026-05-01T09:00:00Z"}).json()
    assert late["total"] == 0 and late["items"] == []
    naive = c.get("/api/hits", params={"since": "2026-05-01T08:00:00", "camera": I.CAMERA})
    assert naive.json()["total"] == len(everything)  # a time without offset is UTC


def test_tracks_unknown_and_pages(api, ctx):
    c = api["vera"]
    all_tracks = c.get("/api/tracks", params={"limit": 500}).json()
    unknown = c.get("/api/tracks", params={"unknown": "true", "limit": 500}).json()
    assert all_tracks["total"] == len(ctx.repo().query_tracks())
    assert 0 < unknown["total"] < all_tracks["total"]
    assert all(t["person"] is None for t in unknown["items"])
    assert "trajectory" not in all_tracks["items"][0]
    ids = []
    for offset in range(0, all_tracks["total"], 3):
        ids += [t["track_id"] for t in c.get("/api/tracks", params={"limit": 3, "offset": offset})
                .json()["items"]]
    assert ids == [t["track_id"] for t in all_tracks["items"]]
    run_id = all_tracks["items"][0]["run_id"]
    assert c.get("/api/tracks", params={"run": run_id}).json()["total"] == all_tracks["total"]
    assert "unknown run" in error_of(c.get("/api/tracks", params={"run": 999}), 404)


@pytest.mark.parametrize("params, status, words", [
    ({"limit": 0}, 400, "limit"), ({"limit": 501}, 400, "limit"), ({"limit": "ten"}, 400, "limit"),
    ({"offset": -1}, 400, "offset"), ({"min_score": "high"}, 400, "min_score"),
    ({"min_score": "nan"}, 400, "min_score"), ({"since": "yesterday"}, 400, "ISO 8601"),
    ({"until": "2026-13-01"}, 400, "until"),
    ({"since": "2026-05-02", "until": "2026-05-01"}, 400, "after"),
    ({"person": "nobody"}, 404, "enrolled: 7201, 7230"), ({"camera": "moon"}, 404, "street"),
    ({"include_rejected": "maybe"}, 400, "include_rejected"), ({"person": "a\x00b"}, 400, "person"),
])
def test_bad_parameters_are_one_line_errors(api, params, status, words):
    assert words in error_of(api["vera"].get("/api/hits", params=params), status)


def test_unknown_things_are_404(api):
    c = api["adam"]
    assert "unknown person" in error_of(c.get("/api/persons/nobody"), 404)
    assert "unknown person" in error_of(c.get("/api/persons/nobody/timeline"), 404)
    assert "unknown run" in error_of(c.get("/api/runs/424242"), 404)
    assert "unknown hit" in error_of(c.post("/api/hits/999999/confirm"), 404)
    assert "unknown track" in error_of(c.post("/api/tracks/999999/name", json={"person": "x"}), 404)
    error_of(c.get("/api/runs/abc"), 400)
    error_of(c.get("/api/no-such-route"), 404)


def test_person_page_and_timeline(api, ctx):
    c = api["vera"]
    names = [p["name"] for p in c.get("/api/persons").json()["items"]]
    assert names == ["7201", "7230"]
    p = c.get("/api/persons/7201").json()
    assert p["n_photos"] == len(p["photos"]) >= 1 and p["cameras"] == [I.CAMERA]
    assert p["n_sightings"] == len(ctx.repo().timeline("7201")) >= 1
    photo = c.get(p["photos"][0]["photo_url"])
    assert photo.status_code == 200 and photo.headers["content-type"].startswith("image/")
    tl = c.get("/api/persons/7201/timeline").json()
    assert tl["total"] == p["n_sightings"] and all(h["person"] == "7201" for h in tl["items"])
    starts = [h["first_seen_at"] for h in tl["items"]]
    assert starts == sorted(starts)


def test_search_ranks_the_right_unknown_track_first_and_is_audited(api, ctx, world):
    photo = world.photos(I.LATER)[1]
    assert photo != world.scenario.pasted_photos[I.LATER]
    t0 = time.perf_counter()
    with open(photo, "rb") as fh:
        r = api["vera"].post("/api/search", files={"photo": ("me.jpg", fh, "image/jpeg")},
                             data={"top": "5"})
    seconds = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    body = r.json()
    assert 1 <= len(body["items"]) <= 5 and body["info"]["model"]
    best = body["items"][0]
    tracks = {t["track_id"]: t for t in api["vera"].get("/api/tracks", params={"limit": 500})
              .json()["items"]}
    assert S.person_at_best_shot(world.scenario.truth, tracks[best["track_id"]]) == I.LATER
    assert best["person"] is None and best["crop_url"].startswith("/crops/")
    (entry,) = [e for e in ctx.repo().list_audit(action="search")]
    assert entry["operator"] == "vera"
    t0 = time.perf_counter()
    with open(photo, "rb") as fh:
        again = api["vera"].post("/api/search", files={"photo": ("me.jpg", fh, "image/jpeg")})
    assert again.json()["items"][0]["track_id"] == best["track_id"]
    print(f"search by photo via the API: first {seconds:.2f} s (models loaded), "
          f"then {time.perf_counter() - t0:.2f} s")
    assert len(ctx.repo().list_audit(action="search", operator="vera")) == 2
    with open(photo, "rb") as fh:
        bad = api["vera"].post("/api/search", files={"photo": ("x.jpg", fh)},
                               data={"camera": "moon"})
    assert "unknown camera" in error_of(bad, 404)
    noface = api["vera"].post("/api/search", files={"photo": ("x.jpg", b"not an image")})
    error_of(noface, 400)
    error_of(api["vera"].post("/api/search", data={"top": "3"}), 400)  # no photo


def test_export_case_zip_is_audited(api, ctx):
    assert api["rita"].get("/api/persons/7201/case.zip").status_code == 403
    r = api["adam"].get("/api/persons/7201/case.zip", params={"clips": "false"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert any(n.endswith("manifest.json") for n in names)
    assert any(n.endswith("hits.csv") for n in names)
    exports = ctx.repo().list_audit(action="export")
    assert [(e["operator"], e["params"]["person"], e["outcome"]["status"]) for e in exports] == [
        ("adam", "7201", "ok")]


def test_reviews_as_the_web_user(api, ctx):
    hits = api["rita"].get("/api/hits", params={"person": "7230"}).json()["items"]
    hit_id = hits[0]["hit_id"]
    assert api["vera"].post(f"/api/hits/{hit_id}/confirm").status_code == 403
    r = api["rita"].post(f"/api/hits/{hit_id}/confirm", json={"note": "looks right"})
    assert r.status_code == 200, r.text
    assert r.json()["operator"] == "rita"
    h = api["vera"].get("/api/hits", params={"person": "7230"}).json()["items"][0]
    assert h["review_status"] == "confirmed" and h["reviewed_by"] == "rita"
    unknown = api["rita"].get("/api/tracks", params={"unknown": "true"}).json()["items"]
    error_of(api["rita"].post(f"/api/tracks/{unknown[0]['track_id']}/name", json={}), 400)
    r = api["rita"].post(f"/api/tracks/{unknown[0]['track_id']}/name",
                         json={"person": "7201"})
    assert r.status_code == 200, r.text
    reviews = ctx.repo().list_audit(action="review", operator="rita")
    assert len(reviews) == 2


def test_admin_enrols_from_uploads_and_removes(api, ctx, world):
    photos = world.photos(I.LATER)[1:3]
    files = [("photos", (f"p{i}.jpg", p.read_bytes(), "image/jpeg")) for i, p in enumerate(photos)]
    assert api["rita"].post("/api/persons", data={"name": I.LATER}, files=files).status_code == 403
    error_of(api["adam"].post("/api/persons", data={"name": I.LATER}), 400)  # no photos
    bad = [("photos", ("x.jpg", b"not an image", "image/jpeg"))]
    error_of(api["adam"].post("/api/persons", data={"name": I.LATER}, files=bad), 400)
    r = api["adam"].post("/api/persons", data={"name": I.LATER}, files=files)
    assert r.status_code == 200, r.text
    assert r.json()["n_photos"] == 2 and r.json()["retro_hits"] >= 0
    p = api["vera"].get(f"/api/persons/{I.LATER}").json()
    assert p["n_photos"] == 2
    assert all(api["vera"].get(ph["photo_url"]).status_code == 200 for ph in p["photos"])
    (enrol,) = ctx.repo().list_audit(action="enrol", operator="adam")
    assert enrol["params"]
    r = api["adam"].delete(f"/api/persons/{I.LATER}")
    assert r.status_code == 200, r.text
    left = {q["name"]: q for q in api["vera"].get("/api/persons").json()["items"]}
    assert I.LATER not in left or left[I.LATER]["n_photos"] == 0
    assert [e["operator"] for e in ctx.repo().list_audit(action="remove-person")] == ["adam"]
    assert api["vera"].get(p["photos"][0]["photo_url"]).status_code == 404  # file deleted


def test_admin_purge_and_audit(api):
    c = api["adam"]
    assert "say what to purge" in error_of(c.post("/api/purge", json={}), 400)
    assert "invalid" in error_of(c.post("/api/purge", json={"unknown_older_than": "soon"}), 400)
    dry = c.post("/api/purge", json={"unknown_older_than": "3650d", "dry_run": True})
    assert dry.status_code == 200, dry.text
    done = c.post("/api/purge", json={"unknown_older_than": "3650d"})
    assert done.status_code == 200 and done.json()["n_tracks"] == 0, done.text
    audit = c.get("/api/audit").json()["items"]
    assert audit[0]["action"] == "purge" and audit[0]["operator"] == "adam"
    assert "unknown action" in error_of(c.get("/api/audit", params={"action": "dance"}), 400)


def test_runs_never_show_camera_credentials(api, ctx):
    repo = ctx.repo()
    secret_url = "rtsp://guard:hunter2secret@10.0.0.7:554/stream1"
    src = repo.get_or_create_source(secret_url, "ab" * 32, 0)
    cam = repo.get_or_create_camera("gate")
    run_id = repo.start_run(src, cam, model_sha256s={"detector": "cd" * 32},
                            config={"cameras": [{"name": "gate", "url": secret_url}]},
                            tool_version="test")
    listed = api["vera"].get("/api/runs").json()
    detail = api["vera"].get(f"/api/runs/{run_id}").json()
    assert detail["running"] is True and detail["live"] is True
    assert detail["source_path"] == "rtsp://***:***@10.0.0.7:554/stream1"
    repo.finish_run(run_id, "failed", error=f"cannot open {secret_url}: timeout")
    detail = api["vera"].get(f"/api/runs/{run_id}").json()
    assert detail["running"] is False and detail["status"] == "failed"
    assert "***:***@" in detail["error"]
    for text in (json.dumps(listed), json.dumps(detail),
                 api["vera"].get("/api/tracks", params={"camera": "gate"}).text):
        assert "hunter2secret" not in text and "guard:" not in text
    processed = [r for r in listed["items"] if r["id"] != run_id][0]
    d = api["vera"].get(f"/api/runs/{processed['id']}").json()
    assert len(d["source_sha256"]) == 64 and d["model_sha256s"] and d["config"]
    assert d["status"] == "completed" and d["frames_processed"] > 0


def test_openapi_lists_the_routes(api):
    doc = api["vera"].get("/api/openapi.json").json()
    for path in ("/api/hits", "/api/tracks", "/api/persons", "/api/persons/{name}",
                 "/api/persons/{name}/timeline", "/api/search", "/api/runs", "/api/runs/{run_id}",
                 "/api/hits/{hit_id}/confirm", "/api/tracks/{track_id}/name", "/api/purge",
                 "/api/audit", "/api/persons/{name}/case.zip", "/api/me"):
        assert path in doc["paths"], path
    params = {p["name"] for p in doc["paths"]["/api/hits"]["get"]["parameters"]}
    assert params == {"person", "camera", "since", "until", "min_score", "include_rejected",
                      "limit", "offset"}
    page = api["vera"].get("/api/docs")
    assert page.status_code == 200 and "GET /api/hits" in page.text and "min_score" in page.text
    assert "<script" not in page.text and "cdn" not in page.text.lower()  # works offline


# ---------------------------------------------------------------- the real server

@pytest.fixture(scope="module")
def server(world, ctx):
    env = world.env()
    proc = subprocess.Popen([sys.executable, "-m", "cctv_id.cli.main", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
    yield proc, int(m.group(1))
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def raw_get(port: int, path: str, token: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_served_files_never_leave_the_data_folder(server, ctx, world):
    proc, port = server
    token = ctx.repo().create_token("vera")
    crops = world.data_dir / "crops"
    good = next(p for p in sorted(crops.rglob("*.jpg")))
    rel = good.relative_to(crops).as_posix()
    raw_get(port, f"/crops/{rel}", token)  # the first request warms the server up
    t0 = time.perf_counter()
    status, body = raw_get(port, f"/crops/{rel}", token)
    latency = time.perf_counter() - t0
    assert status == 200 and body[:2] == b"\xff\xd8"
    (crops / "escape.jpg").symlink_to("/etc/passwd")
    (crops / "root").symlink_to("/")
    for path in ("/crops/../../etc/passwd", "/crops/..%2F..%2Fetc%2Fpasswd",
                 "/crops/%2e%2e/%2e%2e/etc/passwd", "/crops/%2Fetc%2Fpasswd", "/crops//etc/passwd",
                 "/crops/escape.jpg", "/crops/root/etc/passwd", f"/crops/{rel}%00.png",
                 "/crops/..\\..\\etc\\passwd", "/photos/../hits.db", "/photos/%2e%2e/hits.db",
                 "/crops/../hits.db"):
        status, body = raw_get(port, path, token)
        assert status == 404, (path, status)
        assert b"root:" not in body and b"SQLite" not in body
    status, _ = raw_get(port, "/api/hits?limit=1", token)
    assert status == 200
    print(f"crop over HTTP: {latency * 1000:.1f} ms")


def test_sigterm_stops_the_server_cleanly(server):
    proc, port = server
    t0 = time.perf_counter()
    status, _ = raw_get(port, "/api/me", "nope")
    assert status == 401
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=20)
    out = proc.stdout.read()
    err = proc.stderr.read()
    assert rc == 0, err
    assert "stopped" in out and "Traceback" not in err
    print(f"SIGTERM to exit: {time.perf_counter() - t0:.2f} s")
