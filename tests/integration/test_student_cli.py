"""``cctv-id train`` and ``cctv-id export-onnx`` end to end, with their bad inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli_run import one_error_line
from cli_run import run_cli as cli

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return dict(os.environ, CCTV_ID_CACHE=str(tmp_path_factory.mktemp("train-cache")), OMP_NUM_THREADS="1")





def tiny_recipe(path: Path, shared_data: Path, **loss) -> Path:
    loss_lines = "\n".join(f"  {k}: {v}" for k, v in ({"embedding": 1.0, "attention": 0.1} | loss).items())
    path.write_text(f"""name: tiny-cli
data:
  root: {shared_data / 'faces'}
  sets: [att]
  max_people: 4
  max_images_per_person: 4
  variants_per_image: 2
loss:
{loss_lines}
optim:
  batch_size: 8
  steps: 4
  warmup_steps: 1
train:
  log_every: 1
  checkpoint_every: 2
  val_every: 2
""")
    return path


def test_train_stops_resumes_and_writes_weights(env, shared_data, tmp_path):
    recipe = tiny_recipe(tmp_path / "r.yaml", shared_data)
    out = tmp_path / "run"
    printed = cli(env, "train", "--recipe", str(recipe), "--print-config")
    assert printed.returncode == 0 and json.loads(printed.stdout)["optim"]["steps"] == 4
    first = cli(env, "train", "--recipe", str(recipe), "--out", str(out), "--max-steps", "2", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "stopped tiny-cli at step 2 of 4" in first.stdout and not (out / "student.pt").exists()
    second = cli(env, "train", "--recipe", str(recipe), "--out", str(out), "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "resumed from step 2" in second.stderr and (out / "student.pt").is_file()
    rows = (out / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    # a changed recipe does not silently continue the old run
    changed = tiny_recipe(tmp_path / "r2.yaml", shared_data, attention=0.9)
    proc = cli(env, "train", "--recipe", str(changed), "--out", str(out), "--no-progress")
    assert proc.returncode == 2 and "another recipe" in one_error_line(proc)
    # the trained weights are usable by the evaluation at once
    ev = cli(env, "eval", "att", "--data", str(shared_data / "faces" / "att"), "--size", "16",
             "--recognizer", "student-only", "--weights", str(out / "student.pt"), "--format", "json",
             "--no-progress")
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["n_probes"] > 0


def test_train_bad_inputs(env, shared_data, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noptim:\n  learning_rate: 0.1\n")
    proc = cli(env, "train", "--recipe", str(bad))
    assert proc.returncode == 2 and "unknown key 'optim.learning_rate'" in one_error_line(proc)
    proc = cli(env, "train", "--recipe", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "not found" in one_error_line(proc)
    nodata = tmp_path / "nodata.yaml"
    nodata.write_text(f"name: x\ndata:\n  root: {tmp_path / 'empty'}\n")
    proc = cli(env, "train", "--recipe", str(nodata), "--out", str(tmp_path / "o"))
    assert proc.returncode == 3 and "not found" in one_error_line(proc)


def test_export_onnx_matches_torch(env, tmp_path):
    out = tmp_path / "student.onnx"
    proc = cli(env, "export-onnx", str(out), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert out.is_file() and report["min_cosine"] >= 0.9999 and report["max_abs_diff"] < 1e-3
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    proc = cli(env, "export-onnx", str(tmp_path / "x.onnx"), "--weights", str(junk))
    assert proc.returncode == 4 and "cannot read student weights" in one_error_line(proc)
