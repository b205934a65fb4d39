"""The paper recipe (``kind: askd-paper``) and what it drives in the paper trainer: schema and
one-line errors, ``--print-config``, the shipped recipes, the learning-rate rule of both
``scheduler_step`` orders, the LR faces the student sees, resumable batch order, and that
lambda weighs the logged attention term into the loss."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from click.testing import CliRunner  # noqa: E402

from cctv_id.config import REPO_ROOT  # noqa: E402
from cctv_id.distill.paper_data import EpochBatches, FlippedFaces, make_loader, open_faces  # noqa: E402
from cctv_id.distill.paper_recipe import PaperOptim, PaperRecipe  # noqa: E402
from cctv_id.distill.paper_trainer import lr_at, train_paper  # noqa: E402
from cctv_id.distill.recipe import Recipe, load_recipe  # noqa: E402
from cctv_id.errors import ConfigError  # noqa: E402

RECIPES = REPO_ROOT / "pipelines" / "distill"


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def noise_faces(root: Path, people: int = 4, per_person: int = 4, size: int = 112, seed: int = 0) -> Path:
    """A folder dataset of random-pixel faces: root/<id>/<n>.png."""
    rng = np.random.default_rng(seed)
    for p in range(people):
        (root / f"id{p:02d}").mkdir(parents=True, exist_ok=True)
        for k in range(per_person):
            cv2.imwrite(str(root / f"id{p:02d}" / f"{k}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


def tiny(root: Path, **sections) -> dict:
    data = {
        "kind": "askd-paper", "name": "tiny", "seed": 2,
        "data": {"root": str(root), "val_bins": [], "num_workers": 0},
        "model": {"arch": "iresnet18", "input_size": 32, "dropout": 0.0},
        "lr_image": {"size": 32},
        "optim": {"batch_size": 8, "epochs": 1, "milestones": [1], "lr": 0.01},
        "train": {"device": "cpu", "log_every_steps": 1, "checkpoint_every_steps": 100, "threads": 1},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return data


# ---------------------------------------------------------------- schema
def test_unknown_key_is_one_line_naming_it(tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", {"kind": "askd-paper", "name": "x", "optim": {"learning_rate": 0.1}})
    with pytest.raises(ConfigError) as err:
        load_recipe(bad)
    msg = str(err.value)
    assert "unknown key 'optim.learning_rate'" in msg and "\n" not in msg


def test_kind_dispatch_and_unknown_kind(tmp_path):
    assert isinstance(load_recipe(write_yaml(tmp_path / "a.yaml", {"name": "old"})), Recipe)
    assert isinstance(load_recipe(write_yaml(tmp_path / "b.yaml", {"kind": "askd-paper", "name": "new"})), PaperRecipe)
    with pytest.raises(ConfigError, match="unknown kind 'nope'"):
        load_recipe(write_yaml(tmp_path / "c.yaml", {"kind": "nope", "name": "x"}))


@pytest.mark.parametrize("change, needle", [
    ({"loss": {"attention": 5.0}}, "needs teacher.checkpoint"),
    ({"lr_image": {"size": 200}, "model": {"input_size": 112}}, "larger than model.input_size"),
    ({"teacher": {"checkpoint": "t.pt"}, "model": {"cbam": False}}, "model.cbam"),
    ({"optim": {"milestones": [11, 6]}}, "increasing"),
    ({"train": {"amp": "fp8"}}, "train.amp"),
])
def test_inconsistent_recipes_are_refused_in_one_line(tmp_path, change, needle):
    data = {"kind": "askd-paper", "name": "x", **change}
    with pytest.raises(ConfigError) as err:
        load_recipe(write_yaml(tmp_path / "r.yaml", data))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_print_config_prints_the_resolved_recipe(tmp_path):
    from cctv_id.cli.main import cli

    path = write_yaml(tmp_path / "r.yaml", {"kind": "askd-paper", "name": "x", "lr_image": {"size": 28}})
    res = CliRunner().invoke(cli, ["train", "--recipe", str(path), "--print-config"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output)
    assert printed["kind"] == "askd-paper" and printed["lr_image"] == {"size": 28, "blur": True}
    assert printed["optim"]["milestones"] == [6, 11, 15, 17]
    assert printed["head"] == {"name": "arcface", "s": 32.0, "m": 0.5}
    assert printed == PaperRecipe.model_validate(printed).resolved()


def test_shipped_recipes_are_the_papers():
    teacher = load_recipe(RECIPES / "askd-casia-teacher.yaml")
    assert teacher.teacher.checkpoint is None and teacher.loss.attention == 0 and teacher.lr_image.size == 112
    for size in (14, 28, 56, 24):
        st = load_recipe(RECIPES / f"askd-casia-student-{size}.yaml")
        assert st.lr_image.size == size and st.loss.attention == 5.0 and st.loss.ce == 1.0
        assert st.teacher.checkpoint == "runs/askd-casia-teacher/best.pt"
        assert st.model == teacher.model and st.optim == teacher.optim and st.head == teacher.head
        assert st.data.root == teacher.data.root == "data/faces_webface_112x112"
    o = teacher.optim
    assert (teacher.model.arch, teacher.model.cbam, o.lr, o.momentum, o.nesterov, o.weight_decay, o.batch_size,
            o.epochs, o.milestones) == ("iresnet50", True, 0.1, 0.9, True, 5e-4, 128, 20, [6, 11, 15, 17])
    assert (teacher.head.name, teacher.head.s, teacher.head.m) == ("arcface", 32.0, 0.5)


def test_fingerprint_follows_the_weights_not_the_logging():
    a = PaperRecipe.model_validate({"kind": "askd-paper", "name": "x"})
    assert a.fingerprint() == a.model_copy(update={"description": "other"}).fingerprint()
    logged = PaperRecipe.model_validate({"kind": "askd-paper", "name": "x", "train": {"log_every_steps": 7},
                                         "data": {"num_workers": 1}})
    assert logged.fingerprint() == a.fingerprint()
    for change in ({"loss": {"ce": 0.5}}, {"lr_image": {"size": 56}}, {"optim": {"scheduler_step": "epoch_start"}}):
        changed = PaperRecipe.model_validate({"kind": "askd-paper", "name": "x", **change})
        assert changed.fingerprint() != a.fingerprint()


# ---------------------------------------------------------------- schedule
def test_scheduler_step_orders_differ_by_one_epoch():
    end = PaperOptim(milestones=[6, 11, 15, 17], scheduler_step="epoch_end")
    start = PaperOptim(milestones=[6, 11, 15, 17], scheduler_step="epoch_start")
    spe = 100
    # 0-based epoch 5 is the 6th: the authors' order has decayed already, the standard one not yet
    assert lr_at(end, 5 * spe + 3, spe) == pytest.approx(0.1)
    assert lr_at(start, 5 * spe + 3, spe) == pytest.approx(0.01)
    assert lr_at(end, 6 * spe, spe) == lr_at(start, 6 * spe, spe) == pytest.approx(0.01)
    assert lr_at(end, 10 * spe, spe) == pytest.approx(0.01) and lr_at(start, 10 * spe, spe) == pytest.approx(0.001)
    assert lr_at(end, 19 * spe, spe) == pytest.approx(1e-5) and lr_at(start, 16 * spe, spe) == pytest.approx(1e-5)
    assert lr_at(start, 0, spe) == lr_at(end, 0, spe) == pytest.approx(0.1)
    warm = PaperOptim(warmup_steps=10)
    assert lr_at(warm, 0, spe) == pytest.approx(0.01) and lr_at(warm, 9, spe) == pytest.approx(0.1)


# ---------------------------------------------------------------- data
def _runs_per_row(x: torch.Tensor) -> float:
    """Mean number of constant runs along the rows of ``(B, 3, H, W)``."""
    changes = (x[..., 1:] != x[..., :-1]).any(dim=1).sum(-1) + 1
    return float(changes.float().mean())


def test_lr_image_size_sets_the_pixel_blocks_the_student_sees(tmp_path):
    faces = open_faces(noise_faces(tmp_path / "f", people=2, per_person=4))
    seen = {}
    for size in (14, 28, 112):
        batches = EpochBatches(len(faces), 4, seed=0)
        loader = make_loader(FlippedFaces(faces, 112), batches, size, blur=False, num_workers=0,
                             pin_memory=False, seed=0)
        hr, lr, labels = next(iter(loader))
        seen[size] = _runs_per_row(lr)
        assert hr.shape == lr.shape == (4, 3, 112, 112) and labels.shape == (4,)
    assert seen[14] == pytest.approx(14) and seen[28] == pytest.approx(28) and seen[112] > 100
    # with the blur the LR face still differs from the HR one, and follows the same flip
    batches = EpochBatches(len(faces), 8, seed=0)
    hr, lr, _ = next(iter(make_loader(FlippedFaces(faces, 112), batches, 14, True, 0, False, 0)))
    from cctv_id.distill.faces112 import make_lr

    assert torch.equal(lr, make_lr(hr, 14, True)) and not torch.equal(lr, hr)
    keys = batches.epoch_keys()
    assert any(f for _, f in keys) and not all(f for _, f in keys)
    for (idx, flip), face in zip(keys, hr):
        image = faces[idx][0][:, ::-1] if flip else faces[idx][0]
        from cctv_id.distill.faces112 import to_tensor

        assert torch.equal(face, to_tensor(np.ascontiguousarray(image))[0])


def test_epoch_batches_resume_and_shard():
    full = EpochBatches(50, 4, seed=3)
    full.set_epoch(2)
    batches = list(full)
    assert len(batches) == len(full) == 12
    tail = EpochBatches(50, 4, seed=3)
    tail.set_epoch(2, 5)
    assert list(tail) == batches[5:]
    full.set_epoch(3)
    assert list(full) != batches
    shards = [EpochBatches(50, 4, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for s in shards:
        s.set_epoch(1)
    a, b = ({i for batch in s for i, _ in batch} for s in shards)
    assert not a & b and len(shards[0]) == 6


# ---------------------------------------------------------------- lambda in the trainer
def _rows(out: Path) -> list[dict]:
    with open(out / "log.csv") as fh:
        return list(csv.DictReader(fh))


def test_lambda_weighs_the_logged_attention_term(tmp_path):
    root = noise_faces(tmp_path / "f", people=4, per_person=4)
    quiet = {"progress": False, "log": lambda m: None}
    teacher = PaperRecipe.model_validate(tiny(root))
    train_paper(teacher, tmp_path / "teacher", max_steps=1, **quiet)
    assert (tmp_path / "teacher" / "checkpoint.pt").is_file() and (tmp_path / "teacher" / "recipe.json").is_file()
    t_path = str(tmp_path / "teacher" / "checkpoint.pt")
    rows = {}
    for lam in (0.0, 5.0):
        st = PaperRecipe.model_validate(tiny(root, teacher={"checkpoint": t_path}, loss={"attention": lam},
                                             lr_image={"size": 8}))
        train_paper(st, tmp_path / f"s{lam}", max_steps=2, **quiet)
        rows[lam] = _rows(tmp_path / f"s{lam}")
    first0, first5 = rows[0.0][0], rows[5.0][0]
    # the same initialisation and batch: the same CE and attention at step 1, lambda alone differs
    assert first0["attention"] == first5["attention"] and first0["ce"] == first5["ce"]
    att, ce = float(first5["attention"]), float(first5["ce"])
    assert att > 0
    assert float(first0["loss"]) == pytest.approx(ce, abs=2e-6)
    assert float(first5["loss"]) == pytest.approx(ce + 5.0 * att, abs=1e-5)
    # and it changes what is learnt: step 2 differs
    assert rows[0.0][1]["loss"] != rows[5.0][1]["loss"]


def test_resume_refuses_another_recipe_and_class_count_and_a_misfit_teacher(tmp_path):
    root = noise_faces(tmp_path / "f", people=3, per_person=4)
    quiet = {"progress": False, "log": lambda m: None}
    recipe = PaperRecipe.model_validate(tiny(root))
    train_paper(recipe, tmp_path / "run", max_steps=1, **quiet)
    other = PaperRecipe.model_validate(tiny(root, loss={"ce": 0.5}))
    with pytest.raises(ConfigError, match="another recipe"):
        train_paper(other, tmp_path / "run", **quiet)
    student = PaperRecipe.model_validate(tiny(root, model={"input_size": 48}, lr_image={"size": 16},
                                              teacher={"checkpoint": str(tmp_path / "run" / "checkpoint.pt")}))
    with pytest.raises(ConfigError, match="does not fit model iresnet18 .*48 px.*size mismatch for fc.weight"):
        train_paper(student, tmp_path / "student", **quiet)
    noise_faces(root, people=4, per_person=4, seed=1)  # a fourth identity appears
    with pytest.raises(ConfigError, match="3 classes but .* has 4"):
        train_paper(recipe, tmp_path / "run", **quiet)
