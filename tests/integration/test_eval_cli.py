"""``cctv-id eval ...`` end to end on small real subsets (JSON output), and bad inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return dict(os.environ, CCTV_ID_CACHE=str(tmp_path_factory.mktemp("eval-cache")), OMP_NUM_THREADS="1")


def cli(env, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "cctv_id.cli.main", "eval", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def run_json(env, *args) -> dict:
    proc = cli(env, *args, "--recognizer", "dlib", "--format", "json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # exactly one JSON object on stdout


def _small_pairs(celeba_dir: Path, out: Path, folds=(0, 1), per_fold=4) -> Path:
    lines = (celeba_dir / "pairs.txt").read_text().splitlines()
    n = int(lines[0].split()[1])
    body = []
    for f in folds:
        block = lines[1 + f * 2 * n : 1 + (f + 1) * 2 * n]
        body += block[:per_fold] + block[n : n + per_fold]
    out.write_text(f"{len(folds)}\t{per_fold}\n" + "\n".join(body) + "\n")
    return out


def _identity_dirs(celeba_dir: Path, root: Path, people=("7201", "7202", "7203", "7204")) -> tuple[Path, Path]:
    gallery, probes = root / "gallery", root / "probes"
    for person in people:
        photos = sorted((celeba_dir / person).glob("*.jpg"))
        (gallery / person).mkdir(parents=True)
        (probes / person).mkdir(parents=True)
        (gallery / person / photos[0].name).symlink_to(photos[0])
        for p in photos[1:3]:
            (probes / person / p.name).symlink_to(p)
    return gallery, probes


def test_verification_json(env, celeba_dir, tmp_path):
    pairs = _small_pairs(celeba_dir, tmp_path / "pairs.txt")
    r = run_json(env, "verification", "--pairs", str(pairs), "--images", str(celeba_dir), "--size", "16")
    assert r["protocol"] == "verification" and r["recognizer"] == "dlib" and r["landmarks"] == "full"
    assert r["size"] == 16 and r["mode"] == "hr-lr" and r["folds"] == [1, 2]
    assert r["n_pairs"] == 16 and r["n_genuine"] == 8
    for key in ("accuracy", "std", "tar_at_far_1e-3"):
        assert 0.0 <= r[key] <= 1.0
    assert r["accuracy"] >= 0.6
    one = run_json(env, "verification", "--pairs", str(pairs), "--images", str(celeba_dir), "--folds", "2",
                   "--mode", "lr-lr", "--size", "24", "--landmarks", "detected")
    assert one["folds"] == [2] and one["n_pairs"] == 8 and one["mode"] == "lr-lr"
    assert one["landmarks"] == "detected" and "n_undetected" in one and "same fold" in one["threshold_from"]
    dl = run_json(env, "verification", "--pairs", str(pairs), "--images", str(celeba_dir), "--size", "16",
                  "--alignment", "dlib-chip", "--score", "euclidean")
    assert (dl["alignment"], dl["score"]) == ("dlib-chip", "euclidean") and dl["accuracy"] >= 0.6
    assert (r["alignment"], r["score"]) == ("template", "cosine")


def test_identification_json_and_people(env, celeba_dir, tmp_path):
    gallery, probes = _identity_dirs(celeba_dir, tmp_path)
    r = run_json(env, "identification", "--gallery", str(gallery), "--probes", str(probes), "--size", "0")
    assert (r["n_probes"], r["n_gallery"], r["n_gallery_identities"]) == (8, 4, 4)
    assert r["rank1"] >= 0.75 and r["rank5"] == 1.0 and r["size"] == 0
    people = tmp_path / "people.txt"
    people.write_text("7201\n7203\n")
    r = run_json(env, "identification", "--gallery", str(gallery), "--probes", str(probes), "--size", "12",
                 "--people", str(people))
    assert (r["n_probes"], r["n_gallery"]) == (4, 2)


def test_yaleb_att_json(env, shared_data, tmp_path):
    people = tmp_path / "people.txt"
    people.write_text("yaleB01\nyaleB02\nyaleB03\n")
    r = run_json(env, "yaleb", "--data", str(shared_data / "faces" / "yaleb"), "--size", "24", "--people", str(people))
    assert r["protocol"] == "yaleb-hard-light" and r["n_people"] == 3 and r["n_gallery"] == 3
    assert 60 <= r["n_probes"] <= 80 and r["rank1"] >= 1 / 3 - 0.1
    people.write_text("s1\ns2\ns3\ns4\n")
    r = run_json(env, "att", "--data", str(shared_data / "faces" / "att"), "--people", str(people))
    assert (r["n_people"], r["n_gallery"], r["n_probes"]) == (4, 4, 36)
    assert r["size"] == 0 and r["rank1"] >= 0.5 and r["n_landmark_fallback"] < 10


def test_tinyface_json(env, celeba_dir, tmp_path):
    import cv2

    test = tmp_path / "tinyface" / "Testing_Set"
    for folder in ("Probe", "Gallery_Match", "Gallery_Distractor"):
        (test / folder).mkdir(parents=True)
    for k, person in enumerate(("7201", "7202", "7203")):
        photos = sorted((celeba_dir / person).glob("*.jpg"))
        for folder, photo, n in (("Gallery_Match", photos[0], 1), ("Probe", photos[1], 2), ("Probe", photos[2], 3)):
            small = cv2.resize(cv2.imread(str(photo)), (64, 64), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(test / folder / f"{k + 1}_{n}.jpg"), small)
    for k, person in enumerate(("7210", "7211")):
        shutil.copy(sorted((celeba_dir / person).glob("*.jpg"))[0], test / "Gallery_Distractor" / f"{k}.jpg")
    r = run_json(env, "tinyface", "--data", str(tmp_path / "tinyface"))
    assert r["protocol"] == "tinyface" and r["n_probes"] == 6 and r["n_gallery"] == 5 and r["n_distractors"] == 2
    assert {"rank1", "rank5", "rank10", "rank20"} <= set(r) and r["rank20"] == 1.0


def _fails(proc, code: int, text: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and text in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_inputs(env, celeba_dir, tmp_path):
    d = ["--recognizer", "dlib", "--no-progress"]
    _fails(cli(env, "identification", "--gallery", str(tmp_path / "absent"), "--probes", str(tmp_path), *d),
           3, "not found")
    gallery, probes = _identity_dirs(celeba_dir, tmp_path / "ok")
    lone = tmp_path / "lone"
    shutil.copytree(gallery / "7201", lone / "7201", symlinks=True)
    _fails(cli(env, "identification", "--gallery", str(lone), "--probes", str(probes), *d), 3, "1 person(s)")
    (tmp_path / "empty").mkdir()
    _fails(cli(env, "identification", "--gallery", str(tmp_path / "empty"), "--probes", str(probes), *d),
           3, "no images")
    _fails(cli(env, "verification", "--pairs", str(tmp_path / "absent.txt"), *d), 3, "pairs file not found")
    _fails(cli(env, "yaleb", "--data", str(tmp_path / "empty"), *d), 3, "no Yale B images")
    (probes / "7202" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    _fails(cli(env, "identification", "--gallery", str(gallery), "--probes", str(probes), *d), 3, "corrupt")
    _fails(cli(env, "identification", "--gallery", str(gallery), "--probes", str(gallery), *d), 3,
           "also in the gallery")
    pairs = _small_pairs(celeba_dir, tmp_path / "pairs.txt")
    _fails(cli(env, "verification", "--pairs", str(pairs), "--images", str(celeba_dir), "--folds", "3", *d),
           3, "outside 1-2")
    _fails(cli(env, "verification", "--pairs", str(pairs), "--images", str(tmp_path), *d), 3, "do not exist")
    _fails(cli(env, "verification", "--pairs", str(pairs), "--images", str(celeba_dir), "--alignment", "dlib-chip",
               "--landmarks", "detected", *d), 3, "landmarks 'full'")
    _fails(cli(env, "verification", "--pairs", str(pairs), "--images", str(celeba_dir), "--recognizer", "student",
               "--weights", str(tmp_path / "absent.pt")), 4, "weights file not found")


def test_eval_help_lists_protocols(env):
    proc = subprocess.run([sys.executable, "-m", "cctv_id.cli.main", "eval", "--help"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0
    for command in ("identification", "verification", "yaleb", "att", "tinyface"):
        assert command in proc.stdout
