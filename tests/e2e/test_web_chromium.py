"""The web UI end to end in a real headless Chromium over ``cctv-id serve`` on the processed
street world: log in (and a wrong password refused), filter hits by person, a person's
timeline, a thumbnail that really loads, search by photo ranking the right track first,
provenance of a run, a reviewer's decision, and a viewer refused admin and review actions."""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter

import pytest

from cctv_id.store import Repository


def _by(kind):
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _wait(driver, cond, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(cond)


def css(driver, selector):
    return driver.find_elements(_by("CSS_SELECTOR"), selector)


def log_in(driver, server, user, password=None, next_path="/hits"):

    driver.get(server.url + "/logout")
    driver.get(server.url + next_path)
    assert "/login" in driver.current_url  # redirected: no session
    driver.find_element(_by("ID"), "username-input").send_keys(user)
    driver.find_element(_by("ID"), "password-input").send_keys(password or server.passwords[user])
    driver.find_element(_by("ID"), "login-button").click()
    _wait(driver, lambda d: "/login" not in d.current_url or css(d, "#login-error"))


def truth_name(truth, track: dict) -> str | None:
    """Who the track really is: the ground-truth face under most of its trajectory points."""
    votes = Counter()
    for frame, x1, y1, x2, y2 in track["trajectory"] or []:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        votes.update(f.name for f in truth.faces_at(int(frame))
                     if f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3])
    return votes.most_common(1)[0][0] if votes else None


@pytest.fixture(scope="module")
def repo(e2e_world):
    r = Repository(e2e_world.db_url)
    yield r
    r.close()


def test_pages_over_http_redirect_refuse_and_page(server, repo):
    """Without a browser: what the pages answer to no credentials, hostile input and pages."""
    status, headers, _ = server.request("/unknown?camera=street")
    assert status == 303 and headers["location"] == "/login?next=%2Funknown%3Fcamera%3Dstreet"
    status, _, body = server.request("/api/hits")
    assert status == 401 and json.loads(body)["error"]
    # a login never sends the browser to another site
    status, headers, _ = server.request("/login", method="POST", data={
        "username": "vic", "password": server.passwords["vic"], "next": "//evil.example/x"})
    assert status == 303 and headers["location"] == "/hits"
    # a form posted from another site is refused even for an admin
    status, _, body = server.request("/persons/7201/remove", "ada", "POST", {"purge_hits": "1"},
                                     {"Origin": "http://evil.example"})
    assert status == 403 and "another site" in body
    assert "7201" in [p["name"] for p in repo.list_persons()]
    # bad filters: one clear message, 400, never a stack trace
    for query, words in [("min_score=abc", "must be a number"), ("since=yesterday", "since"),
                         ("person=nobody", "unknown person 'nobody'"), ("camera=x", "camera")]:
        status, _, body = server.request(f"/hits?{query}", "vic")
        assert status == 400 and words in html.unescape(body) and "Traceback" not in body, query
    assert server.request("/runs/abc", "vic")[0] == 404
    assert server.request("/persons/nobody", "vic")[0] == 404
    # pages of 4 over the unknown tracks: counts, links and the last, short page
    n = repo.count_tracks(unknown=True)
    assert n > 8
    status, _, body = server.request("/unknown?per_page=4", "vic")
    assert status == 200 and f"1–4 of {n}" in body and body.count('class="track-row"') == 4
    last = -(-n // 4)
    assert f'href="?per_page=4&amp;page={last}"' in body
    status, _, body = server.request(f"/unknown?per_page=4&page={last + 5}", "vic")  # clamped
    assert f"{4 * (last - 1) + 1}–{n} of {n}" in body
    ids = [t["track_id"] for t in repo.query_tracks(unknown=True)][4 * (last - 1):]
    assert [int(x) for x in re.findall(r'class="track-row" data-track-id="(\d+)"', body)] == ids


def test_login_redirects_refuses_a_wrong_password_and_logs_in(browser, server):
    browser.get(server.url + "/persons")
    assert browser.current_url.endswith("/login?next=%2Fpersons")
    log_in(browser, server, "ada", "not-her-password")
    assert "wrong username or password" in css(browser, "#login-error")[0].text
    assert "/login" in browser.current_url
    log_in(browser, server, "ada", next_path="/persons")
    assert browser.current_url.endswith("/persons")
    assert css(browser, "#username")[0].text == "ada"
    assert [a.text for a in css(browser, "a.nav")][-1] == "Admin"


def test_filter_hits_by_person(browser, server, repo):
    log_in(browser, server, "ada")
    everyone = {r.get_attribute("data-person") for r in css(browser, "tr.hit-row")}
    assert {"7201", "7230"} <= everyone  # both enrolled people were seen
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(_by("ID"), "f-person")).select_by_value("7201")
    browser.find_element(_by("ID"), "apply-filters").click()
    _wait(browser, lambda d: "person=7201" in d.current_url)
    rows = css(browser, "tr.hit-row")
    assert rows and {r.get_attribute("data-person") for r in rows} == {"7201"}
    expected = [h["hit_id"] for h in repo.query_hits(person="7201")]
    assert [int(r.get_attribute("data-hit-id")) for r in rows] == expected[:25]
    n = len(expected)
    assert css(browser, "#count")[0].text == f"1–{min(n, 25)} of {n}"
    # a filter that matches nothing says so
    browser.get(server.url + "/hits?person=7201&min_score=1.5")
    assert "No hits match these filters" in css(browser, "#empty")[0].text


def test_thumbnail_of_a_hit_actually_loads(browser, server):
    log_in(browser, server, "ada")
    img = css(browser, "tr.hit-row .thumb img")[0]
    assert img.get_attribute("src").startswith(server.url + "/crops/")
    _wait(browser, lambda d: d.execute_script("return arguments[0].complete", img))
    assert browser.execute_script("return arguments[0].naturalWidth", img) > 0


def test_person_page_shows_photos_and_the_timeline(browser, server, repo):
    log_in(browser, server, "ada", next_path="/hits?person=7201")
    css(browser, "tr.hit-row td.person a")[0].click()
    _wait(browser, lambda d: d.current_url.endswith("/persons/7201"))
    assert css(browser, "#person-name")[0].text == "7201"
    sightings = css(browser, "#timeline li.sighting")
    expected = repo.timeline("7201")
    assert expected and [int(s.get_attribute("data-hit-id")) for s in sightings] == \
        [h["hit_id"] for h in expected]
    assert {s.get_attribute("data-camera") for s in sightings} == {"street"}
    photos = css(browser, "#enrolment-photos img")
    assert photos and all(p.get_attribute("src").startswith(server.url + "/photos/")
                          for p in photos)
    _wait(browser, lambda d: d.execute_script("return arguments[0].complete", photos[0]))
    assert browser.execute_script("return arguments[0].naturalWidth", photos[0]) > 0
    assert css(browser, "#remove-person") and css(browser, "#enrol-more")  # admin forms
    # the case-file form's target answers a zip to the logged-in admin, audited under her name
    action = css(browser, "#export-case")[0].get_attribute("action")
    got = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0] + '?clips=false', {credentials: 'same-origin'})"
        ".then(r => r.arrayBuffer().then(b => done([r.status, r.headers.get('content-type'),"
        " Array.from(new Uint8Array(b.slice(0, 2)))]))).catch(e => done([0, String(e), []]));",
        action)
    assert got == [200, "application/zip", [0x50, 0x4B]], got  # "PK"
    assert [a["operator"] for a in repo.list_audit(action="export")] == ["ada"]


def test_search_by_photo_ranks_the_right_track_first(browser, server, e2e_world, repo):
    photo = e2e_world.photos("7218")[1]  # not the photo pasted into the clip
    log_in(browser, server, "ada", next_path="/search")
    browser.find_element(_by("ID"), "search-photo").send_keys(str(photo))
    t0 = time.perf_counter()
    browser.find_element(_by("ID"), "search-button").click()
    _wait(browser, lambda d: css(d, "#results") or css(d, "#search-error"), timeout=180)
    print(f"web search (first, loads the models): {time.perf_counter() - t0:.1f} s")
    assert not css(browser, "#search-error")
    rows = css(browser, "tr.result-row")
    ranked = [int(r.get_attribute("data-track-id")) for r in rows]
    searchable = [t for t in repo.list_tracks() if t["embedding"] is not None]  # not too_small
    assert len(ranked) == len(set(ranked)) == min(10, len(searchable))
    tracks = {t["track_id"]: t for t in repo.query_tracks()}
    assert truth_name(e2e_world.scenario.truth, tracks[ranked[0]]) == "7218"
    assert rows[0].get_attribute("data-person") == ""  # 7218 was never enrolled: unknown
    assert "unknown" in rows[0].text
    img = rows[0].find_element(_by("CSS_SELECTOR"), ".thumb img")
    _wait(browser, lambda d: d.execute_script("return arguments[0].complete", img))
    assert browser.execute_script("return arguments[0].naturalWidth", img) > 0
    # audited once, under the web user
    assert [a["operator"] for a in repo.list_audit(action="search")].count("ada") == 1


def test_run_page_shows_provenance(browser, server, repo):
    log_in(browser, server, "vic", next_path="/runs")
    css(browser, "#runs a")[0].click()
    run = repo.get_run(int(browser.current_url.rsplit("/", 1)[1]))
    assert css(browser, "#source-sha256")[0].text == run["source_sha256"]
    text = css(browser, "#provenance")[0].text
    assert all(sha in text for sha in run["model_sha256s"].values())
    assert json.loads(css(browser, "#run-config")[0].text) == run["config"]
    assert "completed" in css(browser, "#run-status")[0].text


def test_run_page_follows_a_running_job(browser, server, repo):
    run_id = repo.list_runs()[-1]["id"]
    repo.mark_running(run_id)
    try:
        log_in(browser, server, "vic", next_path=f"/runs/{run_id}")
        assert css(browser, "#run-progress")  # a progress bar while it runs
        repo.update_run_progress(run_id, 4321, 4320)
        _wait(browser, lambda d: css(d, "#run-frames")[0].text == "4321", timeout=10)
        repo.finish_run(run_id, "failed", error="decoder gave up at frame 4320")
        _wait(browser, lambda d: css(d, "#run-error"), timeout=10)  # reloaded when it ended
        assert "decoder gave up" in css(browser, "#run-error")[0].text
        assert not css(browser, "#run-progress")
    finally:
        repo.finish_run(run_id, "completed")


def test_reviewer_confirms_a_hit(browser, server, repo):
    hit = repo.query_hits(person="7230")[0]
    log_in(browser, server, "rita", next_path="/hits?person=7230")
    assert not [a for a in css(browser, "a.nav") if a.text == "Admin"]
    row = css(browser, f'tr.hit-row[data-hit-id="{hit["hit_id"]}"]')[0]
    row.find_element(_by("CSS_SELECTOR"), "button.review-confirm").click()
    # the old page is still there until the form's redirect lands: wait for it to go
    from selenium.webdriver.support import expected_conditions as EC

    _wait(browser, EC.staleness_of(row))
    _wait(browser, lambda d: "person=7230" in d.current_url and css(d, "tr.hit-row"))
    row = css(browser, f'tr.hit-row[data-hit-id="{hit["hit_id"]}"]')[0]
    assert "confirmed" in row.text and "rita" in row.text
    (after,) = [h for h in repo.query_hits(person="7230") if h["hit_id"] == hit["hit_id"]]
    assert after["review_status"] == "confirmed" and after["reviewed_by"] == "rita"


def test_viewer_sees_no_actions_and_is_refused_them(browser, server, repo):
    log_in(browser, server, "vic", next_path="/hits")
    assert css(browser, "tr.hit-row") and not css(browser, "button.review-confirm")
    assert not [a for a in css(browser, "a.nav") if a.text == "Admin"]
    browser.get(server.url + "/persons/7201")
    assert css(browser, "#timeline") and not css(browser, "#remove-person")
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/persons/7201/remove', {method: 'POST', credentials: 'same-origin',"
        " headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'purge_hits=1'})"
        ".then(r => r.text().then(t => done([r.status, t]))).catch(e => done([0, String(e)]));")
    assert status[0] == 403 and "needs the admin role" in status[1]
    review = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/hits/1/reject', {method: 'POST', credentials: 'same-origin'})"
        ".then(r => done(r.status)).catch(e => done(0));")
    assert review == 403
    browser.get(server.url + "/admin")
    assert "needs the admin role" in css(browser, "#error")[0].text
    assert "7201" in [p["name"] for p in repo.list_persons()]  # nothing was removed
    assert not [a for a in repo.list_audit() if a["operator"] == "vic" and a["action"] != "login"]


def test_admin_enrols_from_the_browser_and_finds_the_earlier_sighting(browser, server, e2e_world,
                                                                     repo):
    photo = e2e_world.photos("7218")[0]
    log_in(browser, server, "ada", next_path="/persons")
    form = browser.find_element(_by("ID"), "enrol-new")
    form.find_element(_by("NAME"), "name").send_keys("7218")
    form.find_element(_by("NAME"), "photos").send_keys(str(photo))
    form.find_element(_by("CSS_SELECTOR"), "button[type=submit]").click()
    _wait(browser, lambda d: d.current_url.endswith("/persons/7218") or css(d, "#error"),
          timeout=60)
    assert not css(browser, "#error")
    # retro-matching stored the unknown track as 7218's sighting, in the timeline at once
    sightings = css(browser, "#timeline li.sighting")
    assert sightings and len(css(browser, "#enrolment-photos img")) == 1
    (hit,) = repo.timeline("7218")
    assert hit["origin"] == "retro" and int(sightings[0].get_attribute("data-hit-id")) == \
        hit["hit_id"]
    assert [a["operator"] for a in repo.list_audit(action="enrol")][-1] == "ada"
