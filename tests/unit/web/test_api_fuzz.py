"""Property test over the query parameters of ``/api/hits`` and ``/api/tracks`` on the
processed street world: whatever strings, numbers and dates arrive in each parameter, the
server never answers 5xx, every error is ``{"error": "<one line>"}``, and every success is
a page whose items respect ``limit`` and whose total does not depend on the page."""

from __future__ import annotations

import os

import investigation as I
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cctv_id.cli.context import AppContext
from cctv_id.web.app import create_app

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
dates = st.datetimes().map(lambda d: d.isoformat())
aware = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats())
value = st.one_of(st.none(), text, numbers.map(str), dates, aware,
                  st.sampled_from(["7201", "7230", I.CAMERA, "true", "false", "1", "0", "",
                                   "2026-05-01T08:00:05Z", "0.5", "NaN", "-inf", "1e309"]))
HITS = ["person", "camera", "since", "until", "min_score", "include_rejected", "limit", "offset"]
TRACKS = ["unknown", "camera", "since", "until", "person", "run", "limit", "offset"]


@pytest.fixture(scope="module")
def client(investigation_template, tmp_path_factory):
    os.environ.pop("CCTV_ID_CONFIG", None)
    world = I.copy_world(investigation_template, tmp_path_factory.mktemp("fuzzworld"))
    ctx = AppContext(db_option=world.db_url)
    ctx.repo().add_user("vera", "viewer")
    c = TestClient(create_app(ctx), raise_server_exceptions=False)
    c.headers["Authorization"] = f"Bearer {ctx.repo().create_token('vera')}"
    yield c
    ctx.close()


def check(client, route: str, params: dict) -> None:
    r = client.get(route, params={k: v for k, v in params.items() if v is not None})
    assert r.status_code < 500, (params, r.status_code, r.text)
    body = r.json()
    if r.status_code >= 400:
        assert r.status_code in (400, 404), (params, r.status_code, body)
        assert set(body) == {"error"} and isinstance(body["error"], str), body
        assert body["error"] and "\n" not in body["error"]
    else:
        assert set(body) == {"items", "total", "limit", "offset"}
        assert len(body["items"]) <= body["limit"] and body["total"] >= 0


SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(st.fixed_dictionaries({k: value for k in HITS}))
def test_hits_parameters_never_5xx(client, params):
    check(client, "/api/hits", params)


@SETTINGS
@given(st.fixed_dictionaries({k: value for k in TRACKS}))
def test_tracks_parameters_never_5xx(client, params):
    check(client, "/api/tracks", params)
