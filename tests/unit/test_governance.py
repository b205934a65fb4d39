"""Retention durations, file deletion confined to data_dir, stale watchlist caches."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cctv_id.errors import InputError
from cctv_id.governance import delete_files, delete_stale_watchlist_caches, parse_duration


@pytest.mark.parametrize("text, expected", [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
    ("2w", timedelta(weeks=2)), (" 45S ", timedelta(seconds=45)), ("1.5d", timedelta(hours=36)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "30x", "-5d", "0h", "3 weeks", "1e3d", None])
def test_bad_durations(text):
    with pytest.raises(InputError, match="invalid"):
        parse_duration(text, "--hits-older-than")


def test_delete_files_stays_inside_data_dir(tmp_path):
    data = tmp_path / "data"
    (data / "crops" / "run1").mkdir(parents=True)
    inside = data / "crops" / "run1" / "t1.jpg"
    inside.write_bytes(b"x")
    outside = tmp_path / "keep.txt"
    outside.write_bytes(b"y")
    assert delete_files(data, ["crops/run1/t1.jpg", "../keep.txt", "crops/missing.jpg"]) == 1
    assert not inside.exists() and not (data / "crops" / "run1").exists()  # emptied folder too
    assert outside.exists()


def test_only_the_current_watchlist_generation_is_kept(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    names = ["watchlist-m1-gen3.faiss", "watchlist-m1-gen4.faiss", "watchlist-m2-gen13.faiss",
             "tracks-m1.faiss"]
    for n in names:
        (index / n).write_bytes(b"")
    assert delete_stale_watchlist_caches(tmp_path, 4) == 2
    assert sorted(p.name for p in index.iterdir()) == ["tracks-m1.faiss", "watchlist-m1-gen4.faiss"]
    assert delete_stale_watchlist_caches(tmp_path / "none", 1) == 0
