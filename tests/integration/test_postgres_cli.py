"""The CLI on PostgreSQL: two ``process`` runs writing into one database at once lose
nothing, and a database migrated by a newer cctv-id is refused with one line.

Runs in a fresh schema of the session's PostgreSQL test database (tests/conftest.py); the
clip is the investigation world's (tests/helpers/investigation.py), processed serially into
SQLite once already — the baseline the concurrent runs are compared with.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text

import investigation as W
import street_scenario as S
from cli_run import one_error_line, run_cli

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(pg_database_url) -> str:
    url, schema_engine = pg_database_url
    schema = f"cli_{uuid.uuid4().hex[:10]}"
    with schema_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


def _env(world, config_path):
    env = world.env(CCTV_ID_CONFIG=str(config_path))
    env.pop("CCTV_ID_DB")
    return env


def _summary(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"run (\d+): .* (\d+) tracks \((\d+) hits", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_two_processes_writing_at_once_lose_nothing(investigation_template, pg_url, tmp_path,
                                                   vtest_path):
    world = investigation_template
    data_dir = tmp_path / "shared-data"  # one data folder for every process of the deployment
    config = tmp_path / "deploy.yaml"
    config.write_text(json.dumps({"db": pg_url, "data_dir": str(data_dir)}))
    env = _env(world, config)
    for person in W.ENROLLED_NOW:
        proc = run_cli(env, "enroll", "--largest", "--name", person,
                       *map(str, world.scenario.enrol_photos[person]))
        assert proc.returncode == 0, proc.stderr
    # a second clip: the same scene with other noise (another seed: another file)
    clips = {"street-a": world.scenario.video}
    second = S.build(tmp_path / "clip-b", world.celeba_dir, vtest_path, seconds=W.SECONDS, seed=1)
    clips["street-b"] = second.video
    procs = {cam: subprocess.Popen(
        [sys.executable, "-m", "cctv_id.cli.main", "process", str(video), "--camera", cam,
         "--start-time", W.START.isoformat(), "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cam, video in clips.items()}
    out = {cam: p.communicate(timeout=600) for cam, p in procs.items()}
    for cam, p in procs.items():
        assert p.returncode == 0, f"{cam}: {out[cam][1]}"

    from cctv_id.store import Repository

    baseline = Repository(world.db_url)
    repo = Repository(pg_url)
    try:
        runs = {r["camera"]: r for r in repo.list_runs()}
        assert set(runs) == set(clips) and all(r["status"] == "completed" for r in runs.values())
        for cam in clips:
            run_id, n_tracks, n_hits = _summary(out[cam][0])
            assert runs[cam]["id"] == run_id
            assert len(repo.list_tracks(run_id=run_id)) == n_tracks
            assert len([h for h in repo.query_hits(camera=cam)]) == n_hits
        # the world clip gives what it gave processed alone into SQLite
        def signature(r, run_id):
            return sorted((t["track_key"], t["status"], t["first_frame"], t["last_frame"],
                           t["best_person"]) for t in r.list_tracks(run_id=run_id))

        (base_run,) = baseline.list_runs()
        assert signature(repo, runs["street-a"]["id"]) == signature(baseline, base_run["id"])
        assert sorted(h["person"] for h in repo.query_hits(camera="street-a")) == \
            sorted(h["person"] for h in baseline.query_hits())
        # every embedded track has its own search-index number, all below the counter
        tracks = repo.list_tracks()
        seqs = [t["index_seq"] for t in tracks if t["embedding"] is not None]
        assert len(seqs) == len(set(seqs)) and max(seqs) <= repo.track_index_state()[1]
        model = tracks[0]["model"]
        assert len(repo.track_embeddings(model).track_ids) == len(seqs)
    finally:
        repo.close()
        baseline.close()
    fsck = run_cli(env, "fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr  # every crop in the shared folder


def test_database_of_a_newer_cctv_id_is_one_clear_line(pg_url, investigation_template, tmp_path):
    env = investigation_template.env()
    env.pop("CCTV_ID_DB")
    assert run_cli(env, "--db", pg_url, "persons").returncode == 0  # creates the schema
    from sqlalchemy import create_engine

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    proc = run_cli(env, "--db", pg_url, "hits")
    assert proc.returncode == 5
    line = one_error_line(proc)
    assert "0099_future" in line and "upgrade cctv-id" in line
