"""Stored enrolment photos: copied under data_dir only when the enrolment commits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from cctv_id.errors import CctvIdError
from cctv_id.store import Repository
from cctv_id.watchlist import enrol


def _item(tmp_path: Path, person: str, content: bytes, emb=None, suffix=".JPG"):
    photo = tmp_path / "photos" / f"{person}-{hashlib.md5(content).hexdigest()[:6]}{suffix}"
    photo.parent.mkdir(parents=True, exist_ok=True)
    photo.write_bytes(content)
    emb = np.ones(8, np.float32) if emb is None else emb
    return enrol.EnrolmentItem(person, photo, hashlib.sha256(content).hexdigest(), 80.0, emb)


@pytest.fixture
def repo(tmp_path):
    with Repository(f"sqlite:///{tmp_path / 'db.sqlite'}") as r:
        yield r


def test_commit_copies_photos_and_replace_deletes_the_old_copies(tmp_path, repo):
    data = tmp_path / "data"
    a, b = _item(tmp_path, "ann", b"photo a"), _item(tmp_path, "ann", b"photo b")
    out = enrol.commit(repo, [a, b, a], "m1", data_dir=data, operator="olga")
    pid = repo.add_person("ann")
    assert out["n_new"] == 2 and out["n_photos_stored"] == 2
    stored = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    assert stored == sorted([f"enrolments/{pid}/{a.photo_sha256}.jpg",
                             f"enrolments/{pid}/{b.photo_sha256}.jpg"])
    assert (data / stored[0]).read_bytes() in (b"photo a", b"photo b")
    assert repo.stored_photos() == set(stored)

    c = _item(tmp_path, "ann", b"photo c", suffix=".png")
    out = enrol.commit(repo, [c, b], "m1", data_dir=data, operator="olga", replace=True)
    assert out["n_replaced"] == 2
    left = sorted(p.name for p in data.rglob("*") if p.is_file())
    assert left == sorted([f"{b.photo_sha256}.jpg", f"{c.photo_sha256}.png"])
    assert [e["outcome"]["n_new"] for e in repo.list_audit(action="enrol")] == [2, 2]


def test_failed_transaction_leaves_no_photo_file(tmp_path, repo):
    data = tmp_path / "data"
    good = _item(tmp_path, "ann", b"good")
    bad = _item(tmp_path, "ann", b"bad", emb=np.zeros((2, 2), np.float32))  # refused by the store
    with pytest.raises(ValueError):
        enrol.commit(repo, [good, bad], "m1", data_dir=data, operator="olga")
    assert [p for p in data.rglob("*") if p.is_file()] == []
    assert repo.count("enrolments") == 0 and repo.count("audit_log") == 0


def test_unwritable_data_dir_is_one_error_and_enrols_nothing(tmp_path, repo):
    data = tmp_path / "data"
    data.mkdir()
    (data / "enrolments").write_text("a file where the folder should be")
    with pytest.raises(CctvIdError, match="cannot store enrolment photo"):
        enrol.commit(repo, [_item(tmp_path, "ann", b"x")], "m1", data_dir=data)
    assert repo.count("enrolments") == 0


def test_fsck_settles_pending_photos_and_finds_missing_and_orphan_ones(tmp_path, repo):
    from cctv_id.fsck import check

    data = tmp_path / "data"
    a, b = _item(tmp_path, "ann", b"photo a"), _item(tmp_path, "bob", b"photo b")
    enrol.commit(repo, [a, b], "m1", data_dir=data, operator="olga")
    stored_a, stored_b = sorted(repo.stored_photos(), key=lambda r: r.endswith(b.photo_sha256 + ".jpg"))
    assert check(repo, data).clean
    # a crash after the commit, before the rename: the pending copy is the committed photo
    (data / stored_a).rename(data / (stored_a + ".pending"))
    # a crash before the commit: nothing names this copy
    stray = data / "enrolments" / "99" / ("c" * 64 + ".jpg.pending")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"never committed")
    orphan = data / "enrolments" / "99" / ("d" * 64 + ".jpg")
    orphan.write_bytes(b"left behind")
    (data / stored_b).unlink()
    report = check(repo, data)
    assert sorted(report.problems) == sorted([
        f"enrolment photo {stored_a} committed but not published",
        f"enrolment photo enrolments/99/{'c' * 64}.jpg left pending by an unfinished transaction",
        f"enrolment photo enrolments/99/{'d' * 64}.jpg is not referenced by the database",
        f"enrolment photo {stored_b} is referenced but missing "
        "(re-enrol the person with --replace to store it again)",
    ])
    repaired = check(repo, data, repair=True)
    assert (data / stored_a).read_bytes() == b"photo a"
    assert not stray.exists() and not orphan.exists()
    assert len(repaired.repaired) == 3
    assert check(repo, data).problems == [repaired.problems[0]] == [
        f"enrolment photo {stored_b} is referenced but missing "
        "(re-enrol the person with --replace to store it again)"]
