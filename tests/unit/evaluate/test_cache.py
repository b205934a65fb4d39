"""The evaluation cache: where it lives, switching it off, failing soft."""

from __future__ import annotations

import logging

from cctv_id.evaluate.cache import DiskCache, cache_dir, default_cache, image_key


def test_location(monkeypatch, tmp_path):
    monkeypatch.setenv("CCTV_ID_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.setenv("CCTV_ID_CACHE", "off")
    assert cache_dir() is None and not default_cache().enabled
    monkeypatch.delenv("CCTV_ID_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "cctv-id"


def test_round_trip_and_keys(tmp_path):
    c = DiskCache(tmp_path / "c")
    c.put_many("embeddings", {"a": b"\x01\x02", "b": b""})
    assert DiskCache(tmp_path / "c").get_many("embeddings", ["a", "b", "z"]) == {"a": b"\x01\x02", "b": b""}
    img = tmp_path / "x.png"
    img.write_bytes(b"1")
    k1 = image_key(img)
    img.write_bytes(b"22")
    assert image_key(img) != k1  # size (and mtime) are part of the key


def test_unwritable_cache_is_a_warning(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    c = DiskCache(blocker / "sub")
    with caplog.at_level(logging.WARNING):
        c.put_many("annotations", {"k": b"v"})
        assert c.get_many("annotations", ["k"]) == {}
    assert not c.enabled and "cache disabled" in caplog.text
