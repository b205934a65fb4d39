"""The paper recipe end to end through ``cctv-id``, on CPU: a CelebA subset (20 people x 8 faces
at 64 px, folder layout) trains an iResNet-18 + CBAM teacher for 30 steps, then a 16 px A-SKD
student (lambda 5) for 30 steps; losses fall, a run stopped at step 15 and resumed ends bit-
identical to an uninterrupted one, the checkpoints have ``recipe.json`` beside them, ``cctv-id
eval bin`` and ``eval tinyface --checkpoint`` read them; a two-process DDP run (torchrun,
gloo) finishes; bad inputs are one line and a non-zero exit."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cli_run import one_error_line
from cli_run import run_cli as cli

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

SIZE = 64  # px: the faces and the model's input (the paper: 112)
PEOPLE, PER_PERSON = 20, 8  # -> 160 faces, 10 steps per epoch at batch 16


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return dict(os.environ, CCTV_ID_CACHE=str(tmp_path_factory.mktemp("paper-cache")), OMP_NUM_THREADS="1")





def _chip(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    crop = image[h // 2 - 60:h // 2 + 70, w // 2 - 60:w // 2 + 60]  # CelebA's 250 px: the face
    return cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def faces(celeba_dir, tmp_path_factory) -> Path:
    """root/<person>/*.jpg for training, and val.bin (30 genuine + 30 impostor pairs of other people)."""
    from cctv_id.distill.verification_bin import write_verification_bin

    root = tmp_path_factory.mktemp("paper-faces")
    people = [p for p in sorted(celeba_dir.iterdir()) if p.is_dir() and len(list(p.glob("*.jpg"))) >= PER_PERSON]
    if len(people) < PEOPLE + 30:
        pytest.skip(f"CelebA subset too small ({len(people)} people with {PER_PERSON} images)")
    train = root / "train"
    for person in people[:PEOPLE]:
        (train / person.name).mkdir(parents=True)
        for f in sorted(person.glob("*.jpg"))[:PER_PERSON]:
            cv2.imwrite(str(train / person.name / f.name), _chip(f))
    others = people[PEOPLE:PEOPLE + 30]
    encoded, same = [], []
    enc = lambda f: cv2.imencode(".jpg", cv2.resize(_chip(f), (112, 112)))[1].tobytes()  # noqa: E731
    for i, person in enumerate(others):
        a, b = sorted(person.glob("*.jpg"))[:2]
        encoded += [enc(a), enc(b), enc(a), enc(sorted(others[(i + 1) % len(others)].glob("*.jpg"))[0])]
        same += [True, False]
    write_verification_bin(train / "val.bin", encoded, same)
    return train


def recipe(path: Path, faces: Path, name: str, **sections) -> Path:
    data = {
        "kind": "askd-paper", "name": name, "seed": 1,
        "data": {"root": str(faces), "val_bins": ["val.bin"], "num_workers": 0},
        "model": {"arch": "iresnet18", "cbam": True, "input_size": SIZE},
        "lr_image": {"size": SIZE},
        "optim": {"batch_size": 16, "epochs": 3, "milestones": [2], "lr": 0.05},
        "train": {"device": "cpu", "log_every_steps": 1, "checkpoint_every_steps": 100, "val_every_epochs": 1,
                  "threads": 2},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rows(out: Path) -> list[dict]:
    with open(out / "log.csv") as fh:
        return list(csv.DictReader(fh))


def mean_loss(rs: list[dict]) -> float:
    return sum(float(r["loss"]) for r in rs) / len(rs)


def ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def teacher(env, faces, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("paper-teacher")
    out = tmp / "run"
    proc = cli(env, "train", "--recipe", str(recipe(tmp / "t.yaml", faces, "smoke-teacher")), "--out", str(out),
               "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "trained smoke-teacher: 30 steps" in proc.stdout
    return out


def test_teacher_learns_and_keeps_its_best(teacher):
    log = rows(teacher)
    assert [int(r["step"]) for r in log] == list(range(1, 31))
    assert [r["lr"] for r in log[19:21]] == ["0.05", "0.005"]  # milestone 2, stepped at the epoch's end
    first, last = mean_loss(log[:5]), mean_loss(log[-5:])
    assert last < 0.9 * first, (first, last)
    assert all(r["attention"] == "" for r in log)
    best, last_ck = ckpt(teacher / "best.pt"), ckpt(teacher / "checkpoint.pt")
    assert last_ck["step"] == 30 and last_ck["num_classes"] == PEOPLE
    assert json.loads((teacher / "recipe.json").read_text()) == last_ck["recipe"]
    with open(teacher / "val.csv") as fh:
        val = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in val] == [10, 20, 30]
    assert best["validation"]["mean"] == pytest.approx(max(float(r["mean"]) for r in val), abs=1e-5)


def test_student_learns_resumes_bit_exactly_and_evaluates(env, faces, teacher, tmp_path):
    r = recipe(tmp_path / "s.yaml", faces, "smoke-student", lr_image={"size": 16},
               teacher={"checkpoint": str(teacher / "best.pt")}, loss={"attention": 5.0})
    whole, split = tmp_path / "whole", tmp_path / "split"
    proc = cli(env, "train", "--recipe", str(r), "--out", str(whole), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    log = rows(whole)
    first, last = mean_loss(log[:5]), mean_loss(log[-5:])
    assert last < 0.85 * first, (first, last)
    att_first = np.mean([float(x["attention"]) for x in log[:5]])
    att_last = np.mean([float(x["attention"]) for x in log[-5:]])
    assert att_last < 0.5 * att_first, (att_first, att_last)

    stop = cli(env, "train", "--recipe", str(r), "--out", str(split), "--max-steps", "15", "--no-progress")
    assert stop.returncode == 0 and "stopped smoke-student at step 15 of 30" in stop.stdout, stop.stderr
    assert ckpt(split / "checkpoint.pt")["step"] == 15 and (split / "recipe.json").is_file()
    resume = cli(env, "train", "--recipe", str(r), "--out", str(split), "--no-progress")
    assert resume.returncode == 0 and "resumed from step 15" in resume.stderr, resume.stderr
    a, b = ckpt(whole / "checkpoint.pt"), ckpt(split / "checkpoint.pt")
    for section in ("model", "head"):
        assert a[section].keys() == b[section].keys()
        assert all(torch.equal(a[section][k], b[section][k]) for k in a[section]), section
    keep = ("step", "lr", "loss", "ce", "attention")
    assert [{k: x[k] for k in keep} for x in rows(split)] == [{k: x[k] for k in keep} for x in log]

    ev = cli(env, "eval", "bin", "--bin", str(faces / "val.bin"), "--checkpoint", str(whole / "best.pt"),
             "--sizes", "64,16", "--format", "json")
    assert ev.returncode == 0, ev.stderr
    res = json.loads(ev.stdout)
    assert res["trained_lr_size"] == 16 and res["sets"][0]["n_pairs"] == 60
    assert set(res["sets"][0]["sizes"]) == {"64", "16"}
    assert all(0.0 <= v["accuracy"] <= 1.0 and len(v["thresholds"]) == 10 for v in res["sets"][0]["sizes"].values())


def test_tinyface_takes_a_checkpoint(env, celeba_dir, teacher, tmp_path):
    test = tmp_path / "tinyface" / "Testing_Set"
    for folder in ("Probe", "Gallery_Match", "Gallery_Distractor"):
        (test / folder).mkdir(parents=True)
    people = sorted(p for p in celeba_dir.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 3)
    for k, person in enumerate(people[:3]):
        photos = sorted(person.glob("*.jpg"))
        for folder, photo, n in (("Gallery_Match", photos[0], 1), ("Probe", photos[1], 2), ("Probe", photos[2], 3)):
            small = cv2.resize(cv2.imread(str(photo)), (24, 24), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(test / folder / f"{k + 1}_{n}.jpg"), small)
    shutil.copy(sorted(people[5].glob("*.jpg"))[0], test / "Gallery_Distractor" / "0.jpg")
    proc = cli(env, "eval", "tinyface", "--data", str(tmp_path / "tinyface"), "--checkpoint",
               str(teacher / "best.pt"), "--format", "json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["recognizer"] == "iresnet" and r["probe_model"] == "iresnet:smoke-teacher"
    assert (r["n_probes"], r["n_gallery"]) == (6, 4) and r["rank5"] == 1.0


def _torchrun() -> str | None:
    near = Path(sys.executable).with_name("torchrun")
    return str(near) if near.is_file() else shutil.which("torchrun")


def test_ddp_on_cpu_with_torchrun(env, faces, teacher, tmp_path):
    runner = _torchrun()
    if runner is None:
        pytest.skip("torchrun is not installed next to this Python")
    r = recipe(tmp_path / "d.yaml", faces, "smoke-ddp", lr_image={"size": 16},
               teacher={"checkpoint": str(teacher / "best.pt")}, loss={"attention": 5.0},
               data={"val_bins": []}, train={"threads": 1})
    out = tmp_path / "ddp"
    proc = subprocess.run([runner, "--standalone", "--nproc_per_node", "2", "-m", "cctv_id.cli.main", "train",
                           "--recipe", str(r), "--out", str(out), "--max-steps", "3", "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("stopped smoke-ddp at step 3 of 30") == 1  # rank 0 alone reports
    ck = ckpt(out / "checkpoint.pt")
    assert ck["world_size"] == 2 and ck["step"] == 3 and len(ck["rng"]) == 2
    assert [int(x["step"]) for x in rows(out)] == [1, 2, 3]
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".pt") == ["checkpoint.pt"]


def test_bad_inputs_are_one_line(env, faces, tmp_path):
    def run(path: Path, *extra):
        return cli(env, "train", "--recipe", str(path), "--out", str(tmp_path / "o"), "--no-progress", *extra)

    proc = run(recipe(tmp_path / "a.yaml", tmp_path / "nowhere", "x"))
    assert proc.returncode == 3 and "training faces not found" in one_error_line(proc)
    rec_only = tmp_path / "rec"
    rec_only.mkdir()
    (rec_only / "train.rec").write_bytes(b"\0" * 64)
    proc = run(recipe(tmp_path / "b.yaml", rec_only, "x"))
    assert proc.returncode == 3 and "train.idx not found" in one_error_line(proc)
    proc = run(recipe(tmp_path / "c.yaml", faces, "x", model={"arch": "iresnet7"}))
    assert proc.returncode == 2 and "unknown architecture 'iresnet7'" in one_error_line(proc)
    bad = tmp_path / "d.yaml"
    bad.write_text("kind: askd-paper\nname: x\nlr_image:\n  size: 14\n  sharpness: 2\n")
    proc = run(bad)
    assert proc.returncode == 2 and "unknown key 'lr_image.sharpness'" in one_error_line(proc)
    proc = run(recipe(tmp_path / "e.yaml", faces, "x", teacher={"checkpoint": str(tmp_path / "none.pt")},
                      loss={"attention": 5.0}))
    assert proc.returncode == 3 and "teacher checkpoint not found" in one_error_line(proc)
    proc = run(recipe(tmp_path / "f.yaml", faces, "x", data={"val_bins": ["missing.bin"]}))
    assert proc.returncode == 3 and "validation file not found" in one_error_line(proc)

    # a class count that changed under a checkpoint: 4 people, one step, then a fifth appears
    few = tmp_path / "few"
    for person in sorted(p for p in faces.iterdir() if p.is_dir())[:4]:
        shutil.copytree(person, few / person.name)
    small = recipe(tmp_path / "g.yaml", few, "few", model={"input_size": 32}, lr_image={"size": 32},
                   data={"val_bins": []}, optim={"batch_size": 8})
    proc = run(small, "--max-steps", "1")
    assert proc.returncode == 0, proc.stderr
    shutil.copytree(sorted(p for p in faces.iterdir() if p.is_dir())[4], few / "extra")
    proc = run(small)
    assert proc.returncode == 2 and "trained on 4 classes" in one_error_line(proc)
    proc = cli(env, "eval", "bin", "--bin", str(faces / "val.bin"), "--checkpoint", str(tmp_path / "none.pt"))
    assert proc.returncode == 4 and "checkpoint not found" in one_error_line(proc)
