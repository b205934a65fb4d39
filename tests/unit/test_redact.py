"""redact_url: credentials out of URLs, alone or inside any text."""

from __future__ import annotations

import pytest

from cctv_id.redact import redact_url


@pytest.mark.parametrize(
    "url, expected",
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://***:***@10.0.0.5:554/stream1"),
        ("https://bot:t0k%40n@hooks.example.com/a?x=1", "https://***:***@hooks.example.com/a?x=1"),
        # an unencoded "@" in the password: everything up to the authority's last "@"
        ("rtsp://admin:p@ss@cam.local/live", "rtsp://***:***@cam.local/live"),
        ("http://:secret@host/", "http://***:***@host/"),
        ("https://TOKEN123@hooks.example.com/x", "https://***@hooks.example.com/x"),
        ("postgresql+psycopg://u:pw@db:5432/cctv", "postgresql+psycopg://***:***@db:5432/cctv"),
    ],
)
def test_credentials_are_replaced(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://hooks.example.com/path/with@at?q=a@b#frag@x",  # "@" after the authority
        "rtsp://cam.local:554/live",
        "/var/lib/cctv/db.sqlite",
        "user@example.com",
        "",
    ],
)
def test_text_without_credentials_is_unchanged(url):
    assert redact_url(url) == url


def test_text_holding_several_urls():
    text = (
        "camera lobby: cannot open rtsp://admin:hunter2@10.0.0.5/s1 "
        "(retry via 'rtsp://root:toor@10.0.0.6/s2'); alerts to https://hooks.example.com/x"
    )
    out = redact_url(text)
    assert "hunter2" not in out and "toor" not in out and "admin" not in out and "root" not in out
    assert out == (
        "camera lobby: cannot open rtsp://***:***@10.0.0.5/s1 "
        "(retry via 'rtsp://***:***@10.0.0.6/s2'); alerts to https://hooks.example.com/x"
    )


def test_is_idempotent():
    once = redact_url("rtsp://a:b@h/x and http://c:d@e/")
    assert redact_url(once) == once
