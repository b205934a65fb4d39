"""MXNet RecordIO files (``train.rec`` + ``train.idx``), read and written without MXNet.

Owns the byte format only; ``faces112`` turns it into a training set.

- A record is ``uint32 magic 0xced7230a``, ``uint32 lrecord`` (upper 3 bits: continuation
  flag ``cflag``, lower 29 bits: length), the payload, then zero padding to a 4-byte boundary.
  ``cflag`` 0 is a whole record; 1/2/3 are the first/middle/last part of a split one. MXNet's
  writer (dmlc-core) splits a record wherever its payload holds the magic number at a
  4-byte-aligned position and DROPS those 4 bytes: the reader puts the magic back between
  the parts. Only the last part is padded (the others end on a 4-byte boundary).
- The ``.idx`` index holds text lines ``key<TAB>byte offset`` of each record's first part.
- An image record's payload is an ``IRHeader`` packed as ``<IfQQ`` (flag, label, id, id2),
  then, when ``flag > 0``, ``flag`` float32 labels (the packed ``label`` field is then 0),
  then the encoded image.

The reader keeps the index in two numpy arrays (no per-record Python objects, so forked
DataLoader workers do not copy it page by page) and opens the ``.rec`` lazily, once per
process: a handle inherited through ``fork`` is never used, and the reader pickles without
its handle (``spawn`` workers).
"""

from __future__ import annotations

import numbers
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from ..errors import InputError

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_HEAD = struct.Struct("<II")
_IR = struct.Struct("<IfQQ")
_LENGTH_BITS = 29
_MAX_LENGTH = (1 << _LENGTH_BITS) - 1


class IRHeader(NamedTuple):
    """The header MXNet packs in front of an image: ``label`` is a tuple when ``flag > 0``."""

    flag: int
    label: float | tuple[float, ...]
    id: int
    id2: int


def image_label(header: IRHeader) -> int:
    """The class id of an image record: its label, or the first of its labels."""
    label = header.label
    return int(label if isinstance(label, numbers.Real) else label[0])


def pack(header: IRHeader, payload: bytes) -> bytes:
    """An ``IRHeader`` and its image as one record payload.

    Like MXNet, the flag is derived from the label: 0 for a number, ``len(label)`` for a
    sequence (``header.flag`` is ignored).
    """
    label = header.label
    if isinstance(label, numbers.Real):
        return _IR.pack(0, float(label), header.id, header.id2) + bytes(payload)
    labels = np.asarray(label, dtype="<f4").ravel()
    if labels.size == 0:
        raise ValueError("an IRHeader label sequence must not be empty")
    return _IR.pack(labels.size, 0.0, header.id, header.id2) + labels.tobytes() + bytes(payload)


def unpack(data: bytes) -> tuple[IRHeader, bytes]:
    """The inverse of ``pack``; ``ValueError`` when ``data`` is too short for its header."""
    if len(data) < _IR.size:
        raise ValueError(f"record of {len(data)} bytes is shorter than its {_IR.size}-byte header")
    flag, label, id_, id2 = _IR.unpack_from(data)
    start = _IR.size
    if flag == 0:
        return IRHeader(0, label, id_, id2), data[start:]
    end = start + 4 * flag
    if len(data) < end:
        raise ValueError(f"record header announces {flag} labels but the record has {len(data)} bytes")
    labels = tuple(struct.unpack_from(f"<{flag}f", data, start))
    return IRHeader(flag, labels, id_, id2), data[end:]


def _read_index(idx_path: Path) -> dict[int, int]:
    offsets: dict[int, int] = {}
    try:
        text = idx_path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise InputError(f"{idx_path} is not a RecordIO index (expected text lines 'key<TAB>offset')") from None
    except OSError as exc:
        raise InputError(f"cannot read {idx_path}: {exc.strerror or exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            key, offset = (int(f) for f in fields)
        except ValueError:
            raise InputError(f"{idx_path} line {number} is not 'key<TAB>offset': {line[:60]!r}") from None
        if offset < 0:
            raise InputError(f"{idx_path} line {number} has a negative offset")
        offsets[key] = offset  # like MXNet, a repeated key keeps its last offset
    if not offsets:
        raise InputError(f"{idx_path} is empty: a RecordIO index needs one 'key<TAB>offset' line per record")
    return offsets


class RecordIOReader:
    """Random access to the records of ``rec_path`` through its index (``<stem>.idx`` by default)."""

    def __init__(self, rec_path: str | os.PathLike, idx_path: str | os.PathLike | None = None):
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path is not None else self.rec_path.with_suffix(".idx")
        if not self.rec_path.is_file():
            raise InputError(f"{self.rec_path} not found")
        if not self.idx_path.is_file():
            raise InputError(f"{self.idx_path} not found: a .rec needs its .idx index")
        offsets = _read_index(self.idx_path)
        self._file_keys = np.fromiter(offsets, dtype=np.int64, count=len(offsets))
        order = np.argsort(self._file_keys, kind="stable")
        self._sorted_keys = self._file_keys[order]
        self._offsets = np.fromiter(offsets.values(), dtype=np.int64, count=len(offsets))[order]
        self._fd: int | None = None
        self._pid: int | None = None
        self._check_first_record()

    # -- the index ---------------------------------------------------------------------------

    @property
    def keys(self) -> list[int]:
        """The record keys in index-file order."""
        return self._file_keys.tolist()

    def __len__(self) -> int:
        return len(self._file_keys)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, numbers.Integral) and self._position(int(key)) is not None

    def _position(self, key: int) -> int | None:
        i = int(np.searchsorted(self._sorted_keys, key))
        return i if i < len(self._sorted_keys) and self._sorted_keys[i] == key else None

    def offset(self, key: int) -> int:
        i = self._position(int(key))
        if i is None:
            raise KeyError(f"{self.idx_path} has no record key {key}")
        return int(self._offsets[i])

    # -- bytes -------------------------------------------------------------------------------

    def _handle(self) -> int:
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            # after fork the inherited descriptor belongs to the parent: open our own
            try:
                self._fd = os.open(self.rec_path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            except OSError as exc:
                raise InputError(f"cannot open {self.rec_path}: {exc.strerror or exc}") from None
            self._pid = pid
        return self._fd

    def _pread(self, size: int, offset: int) -> bytes:
        fd = self._handle()
        data = os.pread(fd, size, offset)
        while 0 < len(data) < size:  # pread may return short reads; only EOF ends the loop
            more = os.pread(fd, size - len(data), offset + len(data))
            if not more:
                break
            data += more
        return data

    def _part(self, offset: int, key: int) -> tuple[int, int]:
        head = self._pread(_HEAD.size, offset)
        if len(head) < _HEAD.size:
            raise InputError(f"{self.rec_path} is truncated: record {key} at byte {offset} is past its end")
        magic, lrecord = _HEAD.unpack(head)
        if magic != MAGIC:
            raise InputError(
                f"{self.rec_path}: no RecordIO record at byte {offset} (key {key}): "
                f"found 0x{magic:08x}, expected magic 0x{MAGIC:08x}"
            )
        return lrecord >> _LENGTH_BITS, lrecord & _MAX_LENGTH

    def read_raw(self, key: int) -> bytes:
        """The payload of record ``key``, its parts joined (with the magic put back between them)."""
        offset = self.offset(key)
        parts: list[bytes] = []
        while True:
            cflag, length = self._part(offset, key)
            expected = (0, 1) if not parts else (2, 3)
            if cflag not in expected:
                where = "starts" if not parts else "continues"
                raise InputError(
                    f"{self.rec_path}: record {key} {where} with continuation flag {cflag} at byte {offset}"
                )
            data = self._pread(length, offset + _HEAD.size)
            if len(data) < length:
                raise InputError(f"{self.rec_path} is truncated inside record {key} (byte {offset})")
            parts.append(data)
            if cflag in (0, 3):
                return parts[0] if len(parts) == 1 else _MAGIC_BYTES.join(parts)
            offset += _HEAD.size + ((length + 3) & ~3)

    def read(self, key: int) -> tuple[IRHeader, bytes]:
        """The header and the image bytes of record ``key``."""
        try:
            return unpack(self.read_raw(key))
        except ValueError as exc:
            raise InputError(f"{self.rec_path}: record {key}: {exc}") from None

    def read_header(self, key: int) -> IRHeader:
        """The header of record ``key`` without reading its image."""
        offset = self.offset(key)
        cflag, length = self._part(offset, key)
        if cflag == 0 and length >= _IR.size:
            flag = _IR.unpack(self._pread(_IR.size, offset + _HEAD.size))[0]
            want = _IR.size + 4 * flag
            if length >= want:
                try:
                    return unpack(self._pread(want, offset + _HEAD.size))[0]
                except ValueError as exc:  # the file changed under us
                    raise InputError(f"{self.rec_path}: record {key}: {exc}") from None
        return self.read(key)[0]

    def read_image(self, key: int) -> tuple[np.ndarray, int]:
        """Record ``key`` decoded: a BGR uint8 image and its class id."""
        header, payload = self.read(key)
        image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR) if payload else None
        if image is None:
            raise InputError(f"{self.rec_path}: record {key} does not hold a decodable image")
        return image, image_label(header)

    def _check_first_record(self) -> None:
        first = int(self._offsets.min())
        with open(self.rec_path, "rb") as f:  # not the lazy handle: nothing open before a fork
            f.seek(first)
            head = f.read(_HEAD.size)
        if len(head) < _HEAD.size or _HEAD.unpack(head)[0] != MAGIC:
            found = f"0x{_HEAD.unpack(head)[0]:08x}" if len(head) == _HEAD.size else "end of file"
            raise InputError(
                f"{self.rec_path} is not a RecordIO file: no record at byte {first} "
                f"(found {found}, expected magic 0x{MAGIC:08x})"
            )

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = self._pid = None

    def __enter__(self) -> RecordIOReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_fd"] = state["_pid"] = None
        return state


def _encode(payload: bytes) -> bytes:
    """One payload as dmlc-core writes it: split at every 4-byte-aligned magic, then padded."""
    if len(payload) > _MAX_LENGTH:
        raise ValueError(f"a RecordIO record holds at most {_MAX_LENGTH} bytes, got {len(payload)}")
    out: list[bytes] = []
    start = 0
    hit = payload.find(_MAGIC_BYTES)
    while hit >= 0:
        if hit % 4 == 0:
            out += [_HEAD.pack(MAGIC, ((1 if start == 0 else 2) << _LENGTH_BITS) | (hit - start)), payload[start:hit]]
            start = hit + 4
            hit = payload.find(_MAGIC_BYTES, start)
        else:
            hit = payload.find(_MAGIC_BYTES, hit + 1)
    rest = len(payload) - start
    out += [_HEAD.pack(MAGIC, ((3 if start else 0) << _LENGTH_BITS) | rest), payload[start:], b"\0" * (-rest % 4)]
    return b"".join(out)


def write_recordio(
    rec_path: str | os.PathLike,
    records: Iterable[tuple[IRHeader, bytes]],
    idx_path: str | os.PathLike | None = None,
) -> int:
    """Write ``records`` under keys 0, 1, 2, ... to ``rec_path`` and its index; returns the count.

    Files appear only once complete (written beside, then renamed).
    """
    rec = Path(rec_path)
    idx = Path(idx_path) if idx_path is not None else rec.with_suffix(".idx")
    rec_tmp, idx_tmp = rec.with_name(rec.name + ".part"), idx.with_name(idx.name + ".part")
    count = 0
    try:
        with open(rec_tmp, "wb") as fr, open(idx_tmp, "w", encoding="ascii", newline="\n") as fi:
            for count, (header, payload) in enumerate(records, 1):
                fi.write(f"{count - 1}\t{fr.tell()}\n")
                fr.write(_encode(pack(header, payload)))
        os.replace(rec_tmp, rec)
        os.replace(idx_tmp, idx)
    finally:
        for tmp in (rec_tmp, idx_tmp):
            tmp.unlink(missing_ok=True)
    return count

