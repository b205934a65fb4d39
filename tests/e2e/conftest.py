"""Fixtures of the end-to-end tests: one private copy of the processed street world with
web users, one real ``cctv-id serve`` subprocess over it, one headless Chromium (Selenium,
Debian's /usr/bin/chromium + /usr/bin/chromedriver) — all per module, so the browser tests
share the cost of starting them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CCTV_ID_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CCTV_ID_CHROMEDRIVER", "/usr/bin/chromedriver"))
USERS = {"ada": ("admin", "ada-password-1"), "rita": ("reviewer", "rita-password-1"),
         "vic": ("viewer", "vic-password-1")}


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"headless Chromium not installed ({', '.join(missing)} missing; "
                    f"apt-get install chromium chromium-driver, as .ci/run does)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    world: object
    log: Path
    passwords: dict


    def request(self, path: str, user: str | None = None, method: str = "GET",
                data: dict | None = None, headers: dict | None = None):
        """(status, headers, body) of one request, redirects not followed; ``user``: HTTP
        Basic credentials of that test user (None: no credentials)."""
        import base64
        from urllib.parse import urlencode

        body = urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers=dict(headers or {}))
        if user:
            cred = base64.b64encode(f"{user}:{self.passwords[user]}".encode()).decode()
            req.add_header("Authorization", "Basic " + cred)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def e2e_world(investigation_template, tmp_path_factory):
    _require_browser()
    import investigation

    world = investigation.copy_world(investigation_template, tmp_path_factory.mktemp("e2e"))
    # the admin through the CLI (as an operator would), the others through the library
    (name, (role, password)), *others = USERS.items()
    proc = subprocess.run([sys.executable, "-m", "cctv_id.cli.main", "user", "add", name,
                           "--role", role, "--password-stdin"], input=password + "\n",
                          capture_output=True, text=True, env=world.env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    from cctv_id.store import Repository

    repo = Repository(world.db_url)
    try:
        for name, (role, password) in others:
            repo.add_user(name, role, password)
    finally:
        repo.close()
    return world


@pytest.fixture(scope="module")
def server(e2e_world, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cctv_id.cli.main", "serve",
                                 "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=e2e_world.env())
    srv = Server(f"http://127.0.0.1:{port}", e2e_world, log,
                 {name: pw for name, (_, pw) in USERS.items()})
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"cctv-id serve exited {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(srv.url + "/login", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cctv-id serve did not answer within 60 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(arg)
    # the driver path given explicitly: Selenium Manager never looks for (or downloads) one
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
