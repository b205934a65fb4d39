"""A small processed "investigation world" shared by the investigator-workflow tests.

Built once per test session: a 10 s street composite (CelebA faces pasted into vtest.avi),
two people enrolled (``ENROLLED_NOW``), the clip processed by the real CLI into SQLite.
The others in the clip stay unknown tracks — ``LATER`` is who the tests search for by
photo, enrol afterwards (retro-matching) and so on. Each test gets its own copy
(:func:`copy_world`) so tests never see each other's changes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import street_scenario as S
from cli_run import run_cli

START = datetime(2026, 5, 1, 8, 0, 0, tzinfo=timezone.utc)
SECONDS = 10.0
CAMERA = "street"
ENROLLED_NOW = ["7201", "7230"]  # on the watchlist when the clip was processed
LATER = "7218"  # in the clip (34 -> 26 px, 2 s to 9 s), unknown when processed


@dataclass(frozen=True)
class World:
    root: Path
    scenario: S.Scenario
    celeba_dir: Path
    db_path: Path

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def data_dir(self) -> Path:  # the default: beside the SQLite file
        return self.db_path.with_name(self.db_path.stem + "-data")

    def env(self, **extra: str) -> dict:
        env = dict(os.environ)
        env.pop("CCTV_ID_CONFIG", None)
        env["CCTV_ID_DB"] = self.db_url
        env.update(extra)
        return env

    def cli(self, *args: str, env: dict | None = None, timeout: float = 600):
        return run_cli(env or self.env(), *args, timeout=timeout)

    def ok(self, *args: str, **kw):
        proc = self.cli(*args, **kw)
        assert proc.returncode == 0, f"cctv-id {' '.join(args)} failed ({proc.returncode}):\n" \
                                     f"{proc.stdout}\n{proc.stderr}"
        return proc

    def photos(self, person: str) -> list[Path]:
        return S.person_photos(self.celeba_dir, person)


def build_world(root: Path, celeba_dir: Path, vtest: Path) -> World:
    root.mkdir(parents=True, exist_ok=True)
    scenario = S.build(root / "video", celeba_dir, vtest, seconds=SECONDS)
    world = World(root, scenario, Path(celeba_dir), root / "db" / "hits.db")
    for person in ENROLLED_NOW:
        world.ok("enroll", "--largest", "--name", person,
                 *map(str, scenario.enrol_photos[person]))
    world.ok("process", str(scenario.video), "--camera", CAMERA, "--start-time", START.isoformat(),
             "--no-progress")
    return world


def copy_world(world: World, dest: Path) -> World:
    """An independent copy (database via SQLite's backup API, data folder, video)."""
    db_path = dest / "db" / "hits.db"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(world.db_path)
    dst = sqlite3.connect(db_path)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    copy = replace(world, db_path=db_path)
    if world.data_dir.exists():
        shutil.copytree(world.data_dir, copy.data_dir)
    return copy
