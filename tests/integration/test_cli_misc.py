"""The rest of the CLI end to end: the offline demo, folder enrolment, doctor, help, and the
whole job on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import street_scenario as S


def cli(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "cctv_id.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_help_is_fast_and_lists_commands():
    t0 = time.perf_counter()
    proc = cli("--help")
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0
    for command in ("enroll", "process", "hits", "persons", "doctor", "demo"):
        assert command in proc.stdout
    # heavy libraries are not imported for --help
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; from cctv_id.cli.main import cli; "
         "heavy = [m for m in ('torch','dlib','onnxruntime','faiss','av','insightface') "
         "if m in sys.modules]; print(heavy)"],
        capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
    print(f"--help took {elapsed:.2f} s")


def test_demo_runs_offline_without_shared_data(tmp_path):
    env = dict(os.environ, CCTV_ID_SHARED_DATA=str(tmp_path / "absent"), HOME=str(tmp_path))
    proc = cli("demo", "--out", str(tmp_path / "demo"), "--seconds", "8", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "is not enrolled" in proc.stdout
    db = f"sqlite:///{tmp_path / 'demo' / 'demo.db'}"
    hits = json.loads(cli("--db", db, "hits", "--format", "json").stdout)
    stranger = proc.stdout.split(" is not enrolled")[0].split()[-1]
    assert len(hits) >= 3, proc.stdout
    assert stranger not in {h["person"] for h in hits}
    for h in hits:  # crops of the best shots exist under the data folder
        assert (tmp_path / "demo" / "demo-data" / h["crop_path"]).is_file()


def test_enroll_from_dir_and_persons(tmp_path, celeba_dir):
    people = tmp_path / "people"
    for pid in ("7201", "7218"):
        (people / pid).mkdir(parents=True)
        for photo in S.person_photos(celeba_dir, pid)[1:3]:
            (people / pid / photo.name).symlink_to(photo)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    proc = cli("--db", db, "enroll", "--from-dir", str(people), "--largest")
    assert proc.returncode == 0, proc.stderr
    assert "4 photo(s) of 2 person(s)" in proc.stdout
    persons = json.loads(cli("--db", db, "persons", "--format", "json").stdout)
    assert {(p["name"], p["n_photos"]) for p in persons} == {("7201", 2), ("7218", 2)}
    # enrolling the same photos again adds nothing
    assert cli("--db", db, "enroll", "--from-dir", str(people), "--largest").returncode == 0
    persons = json.loads(cli("--db", db, "persons", "--format", "json").stdout)
    assert sum(p["n_photos"] for p in persons) == 4


def test_doctor_reports_models_and_database(tmp_path):
    db = f"sqlite:///{tmp_path / 'd.db'}"
    proc = cli("--db", db, "doctor", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    names = {m["model"] for m in report["models"]}
    assert {"retinaface-mnet025", "dlib-resnet-v1"} <= names
    assert all(m["present"] and m["sha256_ok"] for m in report["models"])
    assert report["database"]["ok"]


@pytest.mark.postgres
def test_whole_job_on_postgresql(tmp_path, pg_database_url, celeba_dir, vtest_path):
    url, _ = pg_database_url
    db = url.render_as_string(hide_password=False)
    scenario = S.build(tmp_path / "clip", celeba_dir, vtest_path, seconds=6.0)
    proc = cli("--db", db, "enroll", "--largest", "--name", "7201",
               *map(str, scenario.enrol_photos["7201"]))
    assert proc.returncode == 0, proc.stderr
    proc = cli("--db", db, "process", "--no-progress", "--camera", "pg-cam",
               "--start-time", "2026-05-01T08:00:00Z", str(scenario.video))
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(cli("--db", db, "hits", "--format", "json").stdout)
    assert [h["person"] for h in hits] == ["7201"]
    assert hits[0]["camera"] == "pg-cam" and hits[0]["first_seen_at"].startswith("2026-05-01T08:00")
