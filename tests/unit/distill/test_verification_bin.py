"""insightface's verification .bin files: Python 2 pickles, numpy variants, our own writer."""

from __future__ import annotations

import pickle
import struct

import cv2
import numpy as np
import pytest

from cctv_id.distill.verification_bin import load_verification_bin, write_verification_bin
from cctv_id.errors import InputError


def encoded(seed: int, ext: str = ".jpg") -> bytes:
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (112, 112), interpolation=cv2.INTER_LINEAR)
    return cv2.imencode(ext, image)[1].tobytes()


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


# -- Python 2 pickles, written opcode by opcode (Python 3's pickler cannot emit a py2 str) -------


def py2_str(data: bytes) -> bytes:
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(data)) + data  # BINSTRING


def py2_uint8_array(data: bytes) -> bytes:
    """What Python 2's numpy pickled for ``np.frombuffer(data, np.uint8)`` (protocol 2)."""
    dtype = (
        b"cnumpy\ndtype\n" + py2_str(b"u1") + b"K\x00K\x01\x87R"
        + b"(K\x03" + py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )
    return (
        b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00\x85" + py2_str(b"b") + b"\x87R"
        + b"(K\x01" + b"J" + struct.pack("<i", len(data)) + b"\x85" + dtype + b"\x89" + py2_str(data) + b"tb"
    )


def py2_pickle(items: list[bytes], issame: list[bool]) -> bytes:
    """``pickle.dumps((bins, issame_list), protocol=2)`` as Python 2 wrote it."""
    bools = b"".join(b"\x88" if s else b"\x89" for s in issame)
    return b"\x80\x02" + b"](" + b"".join(items) + b"e" + b"](" + bools + b"e" + b"\x86."


@pytest.fixture(scope="module")
def pairs() -> tuple[list[bytes], list[bool]]:
    return [encoded(i, ".png" if i == 3 else ".jpg") for i in range(6)], [True, False, True]


def check(path, blobs, issame):
    images, same = load_verification_bin(path)
    assert same.dtype == bool and same.tolist() == issame
    assert len(images) == len(blobs)
    for image, blob in zip(images, blobs):
        assert image.dtype == np.uint8 and image.shape == (112, 112, 3)
        np.testing.assert_array_equal(image, decode(blob))


def test_python2_pickle_of_byte_strings(tmp_path, pairs):
    blobs, issame = pairs
    path = tmp_path / "lfw.bin"
    path.write_bytes(py2_pickle([py2_str(b) for b in blobs], issame))
    assert [type(b) for b in pickle.loads(path.read_bytes(), encoding="bytes")[0]] == [bytes] * 6
    check(path, blobs, issame)


def test_python2_pickle_of_numpy_arrays(tmp_path, pairs):
    blobs, issame = pairs
    path = tmp_path / "agedb_30.bin"
    path.write_bytes(py2_pickle([py2_uint8_array(b) for b in blobs], issame))
    check(path, blobs, issame)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_python3_pickle_of_numpy_arrays(tmp_path, pairs, protocol):
    blobs, issame = pairs
    path = tmp_path / "cfp_fp.bin"
    bins = [np.frombuffer(b, np.uint8).copy() for b in blobs]
    path.write_bytes(pickle.dumps((bins, np.asarray(issame)), protocol=protocol))
    check(path, blobs, issame)


def test_write_then_load(tmp_path, pairs):
    blobs, issame = pairs
    write_verification_bin(tmp_path / "mine.bin", blobs, issame)
    check(tmp_path / "mine.bin", blobs, issame)
    loaded = pickle.loads((tmp_path / "mine.bin").read_bytes(), encoding="bytes")
    assert loaded == (blobs, issame)  # insightface's own loader reads it the same way
    with pytest.raises(ValueError):
        write_verification_bin(tmp_path / "odd.bin", blobs[:5], issame)


def test_bad_files_are_input_errors(tmp_path, pairs):
    blobs, issame = pairs
    with pytest.raises(InputError, match="verification file not found: .*nope.bin"):
        load_verification_bin(tmp_path / "nope.bin")
    (tmp_path / "odd.bin").write_bytes(pickle.dumps((blobs[:5], issame)))
    with pytest.raises(InputError, match=r"odd\.bin holds 5 images for 3 pairs"):
        load_verification_bin(tmp_path / "odd.bin")
    (tmp_path / "junk.bin").write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(InputError, match=r"junk\.bin is not a verification \.bin"):
        load_verification_bin(tmp_path / "junk.bin")
    (tmp_path / "shape.bin").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputError, match=r"shape\.bin is not a verification \.bin"):
        load_verification_bin(tmp_path / "shape.bin")
    (tmp_path / "broken.bin").write_bytes(pickle.dumps(([b"not an image"] * 2, [True])))
    with pytest.raises(InputError, match=r"broken\.bin: image 0 \(pair 0\) is not a decodable"):
        load_verification_bin(tmp_path / "broken.bin")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickles_that_run_code_are_refused(tmp_path, capsys):
    (tmp_path / "evil.bin").write_bytes(pickle.dumps(([Evil(), Evil()], [True])))
    with pytest.raises(InputError, match="refusing to load builtins.print"):
        load_verification_bin(tmp_path / "evil.bin")
    assert "pwned" not in capsys.readouterr().out
