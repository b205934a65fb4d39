"""Reading evaluation data: pairs files, folds, identity folders, TinyFace, Yale B, AT&T."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cctv_id.errors import InputError
from cctv_id.evaluate.datasets import (
    parse_folds,
    read_att,
    read_identity_folders,
    read_pairs,
    read_people_file,
    read_tinyface,
    read_yaleb,
    tinyface_identity,
)


def _touch(root: Path, name: str, index: int) -> Path:
    p = root / name / f"{name}_{index:04d}.jpg"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def _pairs_text(folds: int, per_fold: int) -> str:
    lines = [f"{folds}\t{per_fold}"]
    for f in range(folds):
        lines += [f"p{f}a\t{k + 1}\t{k + 2}" for k in range(per_fold)]
        lines += [f"p{f}a\t{k + 1}\tp{f}b\t{k + 1}" for k in range(per_fold)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def lfw(tmp_path):
    folds, per_fold = 3, 2
    for f in range(folds):
        for k in range(1, per_fold + 2):
            _touch(tmp_path, f"p{f}a", k)
            _touch(tmp_path, f"p{f}b", k)
    path = tmp_path / "pairs.txt"
    path.write_text(_pairs_text(folds, per_fold))
    return path


def test_pairs_parse_folds_and_paths(lfw):
    pf = read_pairs(lfw)
    assert (pf.n_folds, pf.per_fold, len(pf.pairs)) == (3, 2, 12)
    first = pf.pairs[0]
    assert first.same and first.fold == 0
    assert first.first == lfw.parent / "p0a" / "p0a_0001.jpg"
    assert first.second == lfw.parent / "p0a" / "p0a_0002.jpg"
    mismatched = pf.pairs[2]
    assert not mismatched.same and mismatched.second == lfw.parent / "p0b" / "p0b_0001.jpg"
    assert [p.fold for p in pf.pairs] == [0] * 4 + [1] * 4 + [2] * 4
    assert [p.same for p in pf.pairs[:4]] == [True, True, False, False]
    assert len(pf.select([1])) == 4 and {p.fold for p in pf.select([0, 2])} == {0, 2}
    assert {p.first_identity for p in pf.select(None, ["p1a", "p1b"])} == {"p1a"}


def test_real_celeba_pairs_file(celeba_dir):
    pf = read_pairs(celeba_dir / "pairs.txt")
    assert (pf.n_folds, pf.per_fold, len(pf.pairs)) == (10, 300, 6000)
    people = [{p.first_identity for p in pf.pairs if p.fold == f} for f in range(10)]
    assert all(not (people[i] & people[j]) for i in range(10) for j in range(i + 1, 10))


@pytest.mark.parametrize("spec,expected", [
    (None, None), ("", None), ("1-3", [0, 1, 2]), ("2", [1]), ("1,4,7-9", [0, 3, 6, 7, 8]), (" 3 - 4 ", [2, 3]),
])
def test_parse_folds(spec, expected):
    assert parse_folds(spec, 10) == expected


@pytest.mark.parametrize("spec", ["0", "11", "3-1", "a", "1-", "1,,2"])
def test_parse_folds_rejects(spec):
    with pytest.raises(InputError, match="fold"):
        parse_folds(spec, 10)


@pytest.mark.parametrize("mutate,message", [
    (lambda t: "", "empty"),
    (lambda t: "ten\t300\n" + t.split("\n", 1)[1], "folds<TAB>pairs_per_fold"),
    (lambda t: t.replace("3\t2", "3\t3", 1), "found 12"),
    (lambda t: t.replace("p0a\t1\t2", "p0a\t1", 1), "3 or 4 fields"),
    (lambda t: t.replace("p0a\t1\t2", "p0a\tx\t2", 1), "integers"),
    (lambda t: t.replace("p0a\t1\t2", "p0a\t1\tp0b\t2", 1), "expects a matched pair"),
])
def test_bad_pairs_files(lfw, mutate, message):
    lfw.write_text(mutate(lfw.read_text()))
    with pytest.raises(InputError, match=message):
        read_pairs(lfw)


def test_pairs_naming_missing_images(lfw):
    (lfw.parent / "p1b" / "p1b_0002.jpg").unlink()
    with pytest.raises(InputError, match=r"do not exist: .*p1b_0002\.jpg"):
        read_pairs(lfw)
    with pytest.raises(InputError, match="pairs file not found"):
        read_pairs(lfw.parent / "absent.txt")


def test_identity_folders(tmp_path):
    for name, n in (("alice", 2), ("bob", 1)):
        for k in range(n):
            (tmp_path / name).mkdir(exist_ok=True)
            (tmp_path / name / f"{k}.png").write_bytes(b"x")
    (tmp_path / "alice" / "notes.txt").write_text("not an image")
    images = read_identity_folders(tmp_path, min_people=2)
    assert [(im.identity, im.path.name) for im in images] == [("alice", "0.png"), ("alice", "1.png"), ("bob", "0.png")]
    assert {im.identity for im in read_identity_folders(tmp_path, ["bob"])} == {"bob"}
    with pytest.raises(InputError, match="1 person"):
        read_identity_folders(tmp_path, ["bob"], min_people=2)
    with pytest.raises(InputError, match="none of the 1 listed people"):
        read_identity_folders(tmp_path, ["carol"])


def test_identity_folder_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_identity_folders(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        read_identity_folders(tmp_path / "empty")
    (tmp_path / "file.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="not a folder"):
        read_identity_folders(tmp_path / "file.jpg")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their permissions")
def test_unreadable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(InputError, match="cannot read"):
            read_identity_folders(locked)
    finally:
        locked.chmod(0o755)


def test_people_file(tmp_path):
    f = tmp_path / "people.txt"
    f.write_text("# held-out people\nalice\n\n  bob  # the second\n")
    assert read_people_file(f) == ["alice", "bob"]
    f.write_text("# nobody\n\n")
    with pytest.raises(InputError, match="lists nobody"):
        read_people_file(f)
    with pytest.raises(InputError, match="not found"):
        read_people_file(tmp_path / "absent.txt")


def _tinyface_from_celeba(celeba_dir: Path, root: Path, people=("7201", "7202", "7203"), n_distractors=3) -> Path:
    """TinyFace's official layout built from real CelebA crops (shrunk to TinyFace's size)."""
    import cv2

    test = root / "Testing_Set"
    for folder in ("Probe", "Gallery_Match", "Gallery_Distractor"):
        (test / folder).mkdir(parents=True)
    for k, person in enumerate(people):
        photos = sorted((celeba_dir / person).glob("*.jpg"))
        for folder, photo, n in (("Gallery_Match", photos[0], 1), ("Probe", photos[1], 2)):
            img = cv2.imread(str(photo))
            small = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(test / folder / f"{k + 1}_{n}.jpg"), small)
    others = sorted(p for p in celeba_dir.iterdir() if p.is_dir() and p.name not in people)
    for k, person in enumerate(others[:n_distractors]):
        shutil.copy(sorted(person.glob("*.jpg"))[0], test / "Gallery_Distractor" / f"{k}.jpg")
    return root


def test_tinyface_layout(celeba_dir, tmp_path):
    root = _tinyface_from_celeba(celeba_dir, tmp_path)
    for where in (root, root / "Testing_Set"):
        layout = read_tinyface(where)
        assert layout.root == root / "Testing_Set"
        assert [p.identity for p in layout.probes] == ["1", "2", "3"]
        assert [p.identity for p in layout.gallery_match] == ["1", "2", "3"]
        assert len(layout.distractors) == 3 and all(d.identity is None for d in layout.distractors)
    assert [p.identity for p in read_tinyface(root, ["2"]).probes] == ["2"]
    assert tinyface_identity(Path("1043_7.jpg")) == "1043"
    assert tinyface_identity(Path("12_3_b.png")) == "12"


def test_tinyface_bad_layouts(celeba_dir, tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_tinyface(tmp_path / "absent")
    with pytest.raises(InputError, match="not TinyFace's test layout"):
        read_tinyface(tmp_path)
    root = _tinyface_from_celeba(celeba_dir, tmp_path / "t")
    for p in (root / "Testing_Set" / "Probe").iterdir():
        p.rename(p.with_name("9" + p.name))  # probes of people without a match
    with pytest.raises(InputError, match="no probe .* has a match"):
        read_tinyface(root)


def test_yaleb_names(tmp_path):
    person = tmp_path / "yaleB05"
    person.mkdir()
    for name in ("A+000E+00", "A+035E+15", "A-085E+20", "A+010E-45", "A+070E+40"):
        (person / f"yaleB05_P00{name}.png").write_bytes(b"")
    (person / "yaleB05_P00_Ambient.png").write_bytes(b"")
    images = {im.path.stem.split("P00")[1]: im for im in read_yaleb(tmp_path)}
    assert set(images) == {"A+000E+00", "A+035E+15", "A-085E+20", "A+010E-45", "A+070E+40"}
    assert images["A+000E+00"].is_reference and not images["A+000E+00"].is_hard_light
    assert images["A-085E+20"].is_hard_light and images["A+010E-45"].is_hard_light
    assert not images["A+070E+40"].is_hard_light and not images["A+035E+15"].is_hard_light
    assert images["A-085E+20"].azimuth == -85 and images["A+010E-45"].elevation == -45


def test_real_yaleb_hard_light_count(shared_data):
    root = shared_data / "faces" / "yaleb"
    images = read_yaleb(root)
    assert len({im.identity for im in images}) == 28
    assert sum(im.is_hard_light for im in images) == 664
    assert sum(im.is_reference for im in images) == 28


def test_att_layout(shared_data, tmp_path):
    persons = read_att(shared_data / "faces" / "att")
    assert len(persons) == 40 and all(len(v) == 10 for v in persons.values())
    assert [p.stem for p in persons["s1"]] == [str(k) for k in range(1, 11)]
    assert set(read_att(shared_data / "faces" / "att", ["s1", "s2"])) == {"s1", "s2"}
    with pytest.raises(InputError, match="1 person"):
        read_att(shared_data / "faces" / "att", ["s1"])
