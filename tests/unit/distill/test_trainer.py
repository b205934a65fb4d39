"""The trainer on a small real subset: losses fall, resumption is bit-exact, the recipe is what runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cctv_id.distill.recipe import Recipe  # noqa: E402
from cctv_id.distill.trainer import train  # noqa: E402
from cctv_id.errors import ConfigError, InputError  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory, shared_data):
    import os

    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("CCTV_ID_CACHE")
    os.environ["CCTV_ID_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("CCTV_ID_CACHE", None)
    else:
        os.environ["CCTV_ID_CACHE"] = old


def small_recipe(shared_data: Path, **changes) -> Recipe:
    data = {
        "name": "tiny",
        "seed": 3,
        "data": {"root": str(shared_data / "faces"), "sets": ["celeba", "att"], "max_people": 6,
                 "max_images_per_person": 6, "variants_per_image": 2, "val_people": 12},
        "loss": {"embedding": 1.0, "contrastive": 0.5, "attention": 0.1},
        "optim": {"batch_size": 16, "steps": 40, "warmup_steps": 2, "lr": 0.003},
        "train": {"checkpoint_every": 10, "val_every": 20, "log_every": 1, "threads": 2},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        data.setdefault(section, {})[field] = value
    return Recipe.model_validate(data)


def read_log(out: Path) -> list[dict]:
    with open(out / "log.csv") as fh:
        return list(csv.DictReader(fh))


def test_losses_fall_and_weights_are_written(cache, shared_data, tmp_path):
    recipe = small_recipe(shared_data)
    result = train(recipe, tmp_path / "run", progress=False, log=lambda m: None)
    rows = read_log(tmp_path / "run")
    assert len(rows) == 40
    first = sum(float(r["loss"]) for r in rows[:5]) / 5
    last = sum(float(r["loss"]) for r in rows[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    assert result.weights and result.weights.is_file()
    saved = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert saved == recipe.resolved()
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert not set(split["celeba"]["train"]) & set(split["celeba"]["test"])
    assert not set(split["att"]["train"]) & set(split["att"]["test"])


def test_resume_is_bit_exact(cache, shared_data, tmp_path):
    recipe = small_recipe(shared_data, optim__steps=12)
    train(recipe, tmp_path / "straight", progress=False, log=lambda m: None)
    part = train(recipe, tmp_path / "resumed", max_steps=5, progress=False, log=lambda m: None)
    assert part.weights is None and part.steps_done == 5
    first_session = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["train_seconds"]
    assert first_session > 0
    done = train(recipe, tmp_path / "resumed", progress=False, log=lambda m: None)
    # the weights file's training time counts both sessions
    assert torch.load(done.weights, weights_only=True)["train_seconds"] > first_session
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_recipe_values_change_what_runs(cache, shared_data, tmp_path):
    without = small_recipe(shared_data, optim__steps=3, loss__attention=0.0)
    train(without, tmp_path / "a", progress=False, log=lambda m: None)
    assert all(float(r["attention"]) == 0.0 for r in read_log(tmp_path / "a"))
    with_att = small_recipe(shared_data, optim__steps=3, loss__attention=0.5)
    train(with_att, tmp_path / "b", progress=False, log=lambda m: None)
    att = [float(r["attention"]) for r in read_log(tmp_path / "b")]
    assert all(a > 0 for a in att)
    loss_b = [float(r["loss"]) for r in read_log(tmp_path / "b")]
    loss_a = [float(r["loss"]) for r in read_log(tmp_path / "a")]
    assert loss_b[0] > loss_a[0]  # lambda * attention is part of the objective
    small = small_recipe(shared_data, optim__steps=2, student__input_size=32)
    result = train(small, tmp_path / "c", progress=False, log=lambda m: None)
    payload = torch.load(result.weights, weights_only=True)
    assert payload["align"]["size"] == 32 and payload["spec"]["input_size"] == 32


def test_incompatible_checkpoint_is_refused(cache, shared_data, tmp_path):
    train(small_recipe(shared_data, optim__steps=2), tmp_path / "run", progress=False, log=lambda m: None)
    other = small_recipe(shared_data, optim__steps=2, loss__attention=0.7)
    with pytest.raises(ConfigError, match="another recipe"):
        train(other, tmp_path / "run", progress=False, log=lambda m: None)
    train(other, tmp_path / "run", restart=True, progress=False, log=lambda m: None)


def test_missing_data_folder(tmp_path):
    recipe = Recipe.model_validate({"name": "x", "data": {"root": str(tmp_path / "nowhere")}})
    with pytest.raises(InputError, match="not found"):
        train(recipe, tmp_path / "run", progress=False, log=lambda m: None)


def test_teacher_architecture_student_starts_as_the_teacher_and_freezes_late_stages():
    from cctv_id.distill.trainer import build_student, freeze_late_stages
    from cctv_id.recognize.models.dlib_resnet_torch import load_teacher

    recipe = Recipe.model_validate({"name": "a", "student": {"arch": "dlib", "init": "teacher", "input_size": 150,
                                                             "freeze_from_stage": 3}})
    teacher = load_teacher()
    model = build_student(recipe, teacher)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), teacher.state_dict().values()))
    freeze_late_stages(model, 3)
    for block, (stage, _, _) in zip(model.blocks, model.block_info):
        assert all(p.requires_grad == (stage < 3) for p in block.parameters())
    assert not any(p.requires_grad for p in model.fc.parameters())
    assert all(p.requires_grad for p in model.conv1.parameters())
    with pytest.raises(ConfigError, match="input_size >= 96"):
        build_student(Recipe.model_validate({"name": "b", "student": {"arch": "dlib", "input_size": 48}}), teacher)


def test_identity_targets_pull_each_face_towards_its_person_centre():
    from cctv_id.distill.trainer import identity_mixed_targets

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(2, 6, 128)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=-1, keepdims=True)
    labels = np.array([0, 0, 0, 1, 1, 2])
    assert identity_mixed_targets(emb, labels, 0.0) is emb
    full = identity_mixed_targets(emb, labels, 1.0)
    assert np.allclose(np.linalg.norm(full, axis=-1), 1.0, atol=1e-5)
    centre0 = emb[:, :3].reshape(-1, 128).sum(0)
    centre0 /= np.linalg.norm(centre0)
    assert np.allclose(full[:, :3], centre0, atol=1e-5)  # weight 1: every view of person 0 -> its centre
    half = identity_mixed_targets(emb, labels, 0.5)
    own = (half * emb).sum(-1)
    to_centre = (half[:, :3] * centre0).sum(-1)
    assert (own > 0.5).all() and (to_centre > (emb[:, :3] * centre0).sum(-1)).all()


def test_export_blends_with_the_teacher_and_the_blend_is_not_part_of_the_fingerprint(tmp_path):
    from cctv_id.distill.trainer import build_student, export_student
    from cctv_id.recognize.models.dlib_resnet_torch import load_teacher

    base = {"name": "a", "student": {"arch": "dlib", "init": "teacher", "input_size": 150}}
    plain = Recipe.model_validate(base)
    blended = Recipe.model_validate({**base, "export": {"teacher_blend": 0.25}})
    assert plain.fingerprint() == blended.fingerprint()  # a finished run re-exports with a new blend
    teacher = load_teacher()
    model = build_student(plain, teacher)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    t_state, s_state = teacher.state_dict(), model.state_dict()
    a = torch.load(export_student(model, plain, "0" * 64, tmp_path / "a.pt"), weights_only=True)["state_dict"]
    b = torch.load(export_student(model, blended, "0" * 64, tmp_path / "b.pt", teacher=teacher),
                   weights_only=True)["state_dict"]
    key = "conv1.weight"
    assert torch.allclose(a[key].float(), s_state[key], atol=1e-3)
    assert torch.allclose(b[key].float(), 0.75 * s_state[key] + 0.25 * t_state[key], atol=1e-3)
    assert not torch.allclose(a[key], b[key])
    with pytest.raises(ConfigError, match="needs the teacher"):
        export_student(model, blended, "0" * 64, tmp_path / "c.pt")


def test_teacher_blend_needs_a_student_that_started_as_the_teacher():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="teacher_blend"):
        Recipe.model_validate({"name": "c", "export": {"teacher_blend": 0.5}})  # compact student
    with pytest.raises(ValidationError):
        Recipe.model_validate({"name": "c", "student": {"arch": "dlib", "init": "teacher"},
                               "export": {"teacher_blend": 1.0}})
