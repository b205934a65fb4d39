"""Case manifests: written entries match the files; verification of folders and zips finds
missing, changed, unlisted files and unusable entries; not-a-case inputs are one error."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from cctv_id.case.manifest import MANIFEST_NAME, verify_case, write_manifest
from cctv_id.errors import InputError


def _case(root):
    (root / "crops").mkdir(parents=True)
    (root / "crops" / "hit000001.jpg").write_bytes(b"\xff\xd8 crop bytes")
    (root / "hits.json").write_text("[]\n")
    (root / "clips").mkdir()
    (root / "clips" / "hit000001.mp4").write_bytes(bytes(range(256)) * 50)
    return write_manifest(root, {"tool_version": "9.9", "created_at": "2026-05-01T00:00:00Z"})


def _zip(root, target):
    with zipfile.ZipFile(target, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(root).as_posix())
    return target


def test_manifest_lists_every_file_with_its_sha256_and_size(tmp_path):
    root = tmp_path / "case"
    digest = _case(root)
    raw = (root / MANIFEST_NAME).read_bytes()
    assert digest == hashlib.sha256(raw).hexdigest()
    manifest = json.loads(raw)
    entries = {e["path"]: e for e in manifest["files"]}
    assert sorted(entries) == ["clips/hit000001.mp4", "crops/hit000001.jpg", "hits.json"]
    clip = (root / "clips" / "hit000001.mp4").read_bytes()
    assert entries["clips/hit000001.mp4"] == {"path": "clips/hit000001.mp4", "size": len(clip),
                                              "sha256": hashlib.sha256(clip).hexdigest()}
    report = verify_case(root)
    assert report.intact and report.checked == 3 and report.kind == "folder"
    assert report.manifest_sha256 == digest and report.tool_version == "9.9"


def test_tampered_folder_is_reported_file_by_file(tmp_path):
    root = tmp_path / "case"
    _case(root)
    (root / "hits.json").write_text('[{"hit_id": 1}]\n')  # changed
    (root / "crops" / "hit000001.jpg").unlink()  # missing
    (root / "crops" / "extra.jpg").write_bytes(b"x")  # unlisted
    report = verify_case(root)
    assert not report.intact
    assert (report.changed, report.missing, report.unlisted) == (
        ["hits.json"], ["crops/hit000001.jpg"], ["crops/extra.jpg"])
    assert report.checked == 1


def test_same_size_change_of_one_byte_is_found(tmp_path):
    root = tmp_path / "case"
    _case(root)
    clip = root / "clips" / "hit000001.mp4"
    data = bytearray(clip.read_bytes())
    data[5000] ^= 1
    clip.write_bytes(bytes(data))
    assert verify_case(root).changed == ["clips/hit000001.mp4"]


def test_zip_case_verifies_and_tampering_is_found(tmp_path):
    root = tmp_path / "case"
    _case(root)
    good = _zip(root, tmp_path / "good.zip")
    report = verify_case(good)
    assert report.intact and report.kind == "zip" and report.checked == 3
    (root / "hits.json").write_text("[1]\n")
    (root / "notes.txt").write_text("added later")
    bad = verify_case(_zip(root, tmp_path / "bad.zip"))
    assert bad.changed == ["hits.json"] and bad.unlisted == ["notes.txt"] and not bad.intact


def test_manifest_entries_that_escape_the_case_are_invalid(tmp_path):
    root = tmp_path / "case"
    _case(root)
    (tmp_path / "outside.txt").write_text("secret")
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    manifest["files"].append({"path": "../outside.txt", "sha256": "0" * 64, "size": 6})
    manifest["files"].append({"path": "/etc/hostname", "sha256": "0" * 64, "size": 6})
    (root / MANIFEST_NAME).write_text(json.dumps(manifest))
    report = verify_case(root)
    assert report.invalid == ["../outside.txt", "/etc/hostname"] and not report.intact


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such case"),
    (lambda p: p.mkdir(), "has no manifest.json"),
    (lambda p: (p.mkdir(), (p / MANIFEST_NAME).write_text("{not json")), "not valid JSON"),
    (lambda p: (p.mkdir(), (p / MANIFEST_NAME).write_text('{"files": []}')), "not a cctv-id-case/1"),
    (lambda p: p.write_text("plain text"), "not a readable zip"),
])
def test_not_a_case_is_one_input_error(tmp_path, make, message):
    target = tmp_path / "thing"
    make(target)
    with pytest.raises(InputError, match=message):
        verify_case(target)
