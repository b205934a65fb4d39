"""MXNet RecordIO without MXNet: insightface-style files round-trip exactly, split records join."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from cctv_id.distill.recordio import MAGIC, IRHeader, RecordIOReader, image_label, pack, unpack, write_recordio
from cctv_id.errors import InputError

MAGIC_BYTES = struct.pack("<I", MAGIC)


def synthetic_jpeg(seed: int, size: int = 112) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
    image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def insightface_records(jpegs_by_identity: list[list[bytes]]) -> list[tuple[IRHeader, bytes]]:
    """Record 0 header, the images (labels 0..K-1), then one record per identity."""
    images = [(IRHeader(0, float(label), 0, 0), jpeg) for label, jpegs in enumerate(jpegs_by_identity) for jpeg in jpegs]
    first_id = 1 + len(images)
    identities, start = [], 1
    for jpegs in jpegs_by_identity:
        identities.append((IRHeader(0, (float(start), float(start + len(jpegs))), 0, 0), b""))
        start += len(jpegs)
    header = IRHeader(0, (float(first_id), float(first_id + len(jpegs_by_identity))), 0, 0)
    return [(header, b"")] + [(h._replace(id=i), b) for i, (h, b) in enumerate(images, 1)] + identities


@pytest.fixture(scope="module")
def jpegs() -> list[list[bytes]]:
    return [[synthetic_jpeg(10 * person + k) for k in range(2)] for person in range(3)]


@pytest.fixture()
def rec(tmp_path, jpegs) -> Path:
    path = tmp_path / "train.rec"
    assert write_recordio(path, insightface_records(jpegs)) == 10
    return path


def hand_rolled_split(payload: bytes) -> bytes:
    """dmlc-core's writer, written out longhand: cut at aligned magics, drop them, flag the parts."""
    cuts = [i for i in range(0, len(payload) - 3, 4) if payload[i : i + 4] == MAGIC_BYTES]
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(payload[start:cut])
        start = cut + 4
    pieces.append(payload[start:])
    out = b""
    for n, piece in enumerate(pieces):
        cflag = 0 if len(pieces) == 1 else 1 if n == 0 else 3 if n == len(pieces) - 1 else 2
        out += struct.pack("<II", MAGIC, (cflag << 29) | len(piece)) + piece
        out += b"\0" * (-len(piece) % 4)
    return out


def test_insightface_layout_round_trips_exactly(rec, jpegs):
    reader = RecordIOReader(rec)
    assert reader.idx_path == rec.with_suffix(".idx")
    assert reader.keys == list(range(10)) and len(reader) == 10
    header, payload = reader.read(0)
    assert header == IRHeader(2, (7.0, 10.0), 0, 0) and payload == b""
    flat = [(label, jpeg) for label, group in enumerate(jpegs) for jpeg in group]
    for key, (label, jpeg) in enumerate(flat, 1):
        header, payload = reader.read(key)
        assert header == IRHeader(0, float(label), key, 0)
        assert payload == jpeg
        assert reader.read_header(key) == header
        image, got_label = reader.read_image(key)
        assert got_label == label and image.dtype == np.uint8 and image.shape == (112, 112, 3)
        np.testing.assert_array_equal(image, decode(jpeg))
    assert [reader.read(k)[0].label for k in (7, 8, 9)] == [(1.0, 3.0), (3.0, 5.0), (5.0, 7.0)]


def test_file_layout_is_magic_length_payload_padding(rec):
    data = rec.read_bytes()
    offsets = [int(line.split("\t")[1]) for line in rec.with_suffix(".idx").read_text().splitlines()]
    pos = 0
    for offset in offsets:
        assert pos == offset and pos % 4 == 0
        magic, lrecord = struct.unpack_from("<II", data, pos)
        assert magic == MAGIC and lrecord >> 29 == 0
        length = lrecord & (2**29 - 1)
        pos += 8 + (length + 3) // 4 * 4
    assert pos == len(data)
    header = pack(IRHeader(0, 3.0, 4, 5), b"x")
    assert header[:24] == struct.pack("<IfQQ", 0, 3.0, 4, 5) and len(header) == 25


def test_split_record_is_joined_with_its_magic(tmp_path, jpegs):
    jpeg = jpegs[1][0]
    # JPEG decoders stop at the end-of-image marker: the magic can sit in trailing bytes
    tail = b"\0" * (-(24 + len(jpeg)) % 4) + MAGIC_BYTES + b"mid." + MAGIC_BYTES + b"end"
    payload = pack(IRHeader(0, 1.0, 1, 0), jpeg + tail)
    assert payload.count(MAGIC_BYTES) == 2
    whole = pack(IRHeader(0, 0.0, 0, 0), jpegs[0][0])
    split = hand_rolled_split(payload)
    assert [struct.unpack_from("<II", split, 0)[1] >> 29] == [1]
    rec = tmp_path / "split.rec"
    rec.write_bytes(hand_rolled_split(whole) + split)
    rec.with_suffix(".idx").write_text(f"0\t0\n1\t{len(hand_rolled_split(whole))}\n")
    reader = RecordIOReader(rec)
    assert reader.read_raw(1) == payload
    header, body = reader.read(1)
    assert header == IRHeader(0, 1.0, 1, 0) and body == jpeg + tail
    image, label = reader.read_image(1)
    assert label == 1
    np.testing.assert_array_equal(image, decode(jpeg + tail))
    # our writer splits exactly like that too
    write_recordio(tmp_path / "ours.rec", [(IRHeader(0, 0.0, 0, 0), jpegs[0][0]), (IRHeader(0, 1.0, 1, 0), jpeg + tail)])
    assert (tmp_path / "ours.rec").read_bytes() == rec.read_bytes()
    # a misaligned magic is not a split point
    odd = pack(IRHeader(0, 0.0, 0, 0), b"ab" + MAGIC_BYTES + b"cd")
    assert odd.count(MAGIC_BYTES) == 1 and hand_rolled_split(odd)[8 : 8 + len(odd)] == odd


def test_index_pointing_into_a_split_record_is_refused(tmp_path):
    payload = pack(IRHeader(0, 0.0, 0, 0), b"abcd" + MAGIC_BYTES + b"efgh")
    data = hand_rolled_split(payload)
    second = 8 + 28  # the first part: 24-byte header + "abcd"
    (tmp_path / "s.rec").write_bytes(data)
    (tmp_path / "s.idx").write_text(f"0\t0\n1\t{second}\n")
    reader = RecordIOReader(tmp_path / "s.rec")
    assert reader.read(0)[1] == b"abcd" + MAGIC_BYTES + b"efgh"
    with pytest.raises(InputError, match="record 1 starts with continuation flag 3"):
        reader.read(1)


def test_multi_label_records_and_pack_unpack():
    header, body = unpack(pack(IRHeader(99, (3.0, 1.5, -2.0), 7, 8), b"img"))
    assert header == IRHeader(3, (3.0, 1.5, -2.0), 7, 8) and body == b"img"
    assert image_label(header) == 3 and image_label(IRHeader(0, 4.0, 0, 0)) == 4
    assert unpack(pack(IRHeader(5, 2, 0, 0), b""))[0] == IRHeader(0, 2.0, 0, 0)  # flag follows the label
    with pytest.raises(ValueError):
        unpack(struct.pack("<IfQQ", 4, 0.0, 0, 0) + b"\0" * 8)


def test_rec_without_idx_names_the_index(tmp_path, rec):
    rec.with_suffix(".idx").unlink()
    with pytest.raises(InputError, match=r"train\.idx not found: a \.rec needs its \.idx index"):
        RecordIOReader(rec)
    with pytest.raises(InputError, match="nothing.rec not found"):
        RecordIOReader(tmp_path / "nothing.rec")


def test_explicit_idx_path(tmp_path, rec):
    other = tmp_path / "elsewhere.idx"
    rec.with_suffix(".idx").rename(other)
    assert RecordIOReader(rec, other).read(1)[0].label == 0.0


def test_garbage_files_are_input_errors(tmp_path, rec):
    bad = tmp_path / "garbage.rec"
    bad.write_bytes(os.urandom(4096))
    bad.with_suffix(".idx").write_text("0\t0\n1\t100\n")
    with pytest.raises(InputError, match=r"garbage\.rec is not a RecordIO file: no record at byte 0"):
        RecordIOReader(bad)
    bad.with_suffix(".idx").write_bytes(os.urandom(64) + b"\xff")
    with pytest.raises(InputError, match=r"garbage\.idx"):
        RecordIOReader(bad)
    bad.with_suffix(".idx").write_text("0\t0\nhello world\n")
    with pytest.raises(InputError, match=r"garbage\.idx line 2"):
        RecordIOReader(bad)
    bad.with_suffix(".idx").write_text("")
    with pytest.raises(InputError, match=r"garbage\.idx is empty"):
        RecordIOReader(bad)
    # a valid file whose index points beside a record: the error names the offset
    lines = rec.with_suffix(".idx").read_text().splitlines()
    offset = int(lines[3].split("\t")[1]) + 4
    lines[3] = f"3\t{offset}"
    rec.with_suffix(".idx").write_text("\n".join(lines) + "\n")
    reader = RecordIOReader(rec)
    with pytest.raises(InputError, match=f"no RecordIO record at byte {offset} \\(key 3\\)"):
        reader.read(3)
    # truncated file
    data = rec.read_bytes()
    rec.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        RecordIOReader(rec).read(6)
    with pytest.raises(KeyError):
        reader.read(42)


def test_undecodable_image_is_an_input_error(tmp_path):
    write_recordio(tmp_path / "x.rec", [(IRHeader(0, 0.0, 0, 0), b"not a jpeg")])
    with pytest.raises(InputError, match="record 0 does not hold a decodable image"):
        RecordIOReader(tmp_path / "x.rec").read_image(0)


def test_handle_is_reopened_per_process_and_not_pickled(rec, monkeypatch):
    reader = RecordIOReader(rec)
    assert reader._fd is None  # lazily opened
    reader.read(1)
    first = reader._fd
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._fd is None and clone.read(1) == reader.read(1)
    real = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real + 1)  # as in a forked DataLoader worker
    assert reader.read(2)[0].label == 0.0
    assert reader._fd != first and reader._pid == real + 1
    monkeypatch.undo()
    os.close(first)
    reader.close()


def test_forked_child_reads_with_its_own_handle(rec):
    reader = RecordIOReader(rec)
    reader.read(1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: read everything, report the labels
        try:
            labels = [reader.read_image(k)[1] for k in range(1, 7)]
            os.write(w, bytes(labels) + bytes([reader._pid == os.getpid()]))
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 64)
    os.waitpid(pid, 0)
    assert got == bytes([0, 0, 1, 1, 2, 2, 1])
    assert reader.read_image(6)[1] == 2  # the parent's handle still works


def test_celeba_images_round_trip(tmp_path, celeba_dir):
    paths = sorted(p for d in sorted(celeba_dir.iterdir()) if d.is_dir() for p in sorted(d.glob("*.jpg")))[:20]
    assert len(paths) == 20
    encoded = []
    for path in paths:
        image = cv2.resize(cv2.imread(str(path)), (112, 112), interpolation=cv2.INTER_AREA)
        encoded.append((path.parent.name, cv2.imencode(".jpg", image)[1].tobytes()))
    people = sorted({person for person, _ in encoded})
    records = [(IRHeader(0, float(people.index(person)), i, 0), jpeg) for i, (person, jpeg) in enumerate(encoded)]
    write_recordio(tmp_path / "celeba.rec", records)
    reader = RecordIOReader(tmp_path / "celeba.rec")
    assert len(reader) == 20
    for key, (person, jpeg) in enumerate(encoded):
        image, label = reader.read_image(key)
        assert label == people.index(person)
        np.testing.assert_array_equal(image, decode(jpeg))
