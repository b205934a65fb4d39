"""Reader (and byte-exact writer) of dlib's binary DNN serialisation, as plain numpy arrays.

Owns the file format only; what the layers *mean* as a PyTorch network is
``cctv_id.recognize.models.dlib_resnet_torch``. Written from dlib's documented format and by
reading the bytes of ``dlib_face_recognition_resnet_model_v1.dat``:

- integers: one control byte (low 4 bits: number of value bytes that follow, bit 7: negative),
  then the magnitude little-endian (zero is ``01 00``);
- floats (scalars): two such integers, mantissa and exponent, value = mantissa * 2**exponent
  (exponent 32000/32001/32002: +inf/-inf/nan). dlib writes ``frexp``'s mantissa scaled to 24
  (float) or 53 (double) bits and then drops up to 8 all-zero low bytes;
- strings: length, then the bytes; booleans: one ASCII ``'0'``/``'1'``;
- tensors: version 2, (num_samples, k, nr, nc), then raw little-endian float32 values;
  ``alias_tensor`` (a view into ``params``): version 1 and its four dimensions.

A network ``add_loss_layer<LOSS, L_top<...<L_bottom<INPUT>>>>`` is written as: version 1, the
loss record, then every layer's version number from the top down (``add_layer`` 2, the one
on the input 3, ``tag``/``skip`` 1 — these two carry nothing else and are indistinguishable in
the file), then the input record, then from the bottom up each ``add_layer``'s record and its
state (3 booleans, 3 tensors: x_grad, cached_output, params_grad; the bottom one also its
sample expansion factor). ``DlibNet.layers`` is therefore in network order, input side first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

# Each record: its fields in file order as (name, type); types: int, f32, f64, tensor, alias.
_POOL = [("nr", "int"), ("nc", "int"), ("stride_y", "int"), ("stride_x", "int"),
         ("padding_y", "int"), ("padding_x", "int")]
_MULTIPLIERS = [("learning_rate_multiplier", "f64"), ("weight_decay_multiplier", "f64"),
                ("bias_learning_rate_multiplier", "f64"), ("bias_weight_decay_multiplier", "f64")]
LAYER_RECORDS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "con_4": ("con", [("params", "tensor"), ("num_filters", "int"), ("nr", "int"), ("nc", "int"),
                      ("stride_y", "int"), ("stride_x", "int"), ("padding_y", "int"),
                      ("padding_x", "int"), ("filters", "alias"), ("biases", "alias"),
                      *_MULTIPLIERS]),
    "affine_": ("affine", [("params", "tensor"), ("gamma", "alias"), ("beta", "alias"), ("mode", "int")]),
    "relu_": ("relu", []),
    "add_prev_": ("add_prev", []),
    "max_pool_2": ("max_pool", _POOL),
    "avg_pool_2": ("avg_pool", _POOL),
    "fc_2": ("fc", [("num_outputs", "int"), ("num_inputs", "int"), ("params", "tensor"),
                    ("weights", "alias"), ("biases", "alias"), ("bias_mode", "int"), *_MULTIPLIERS]),
}
INPUT_RECORDS: dict[str, list[tuple[str, str]]] = {
    "input_rgb_image_sized": [("avg_red", "f32"), ("avg_green", "f32"), ("avg_blue", "f32"),
                              ("nr", "int"), ("nc", "int")],
    "input_rgb_image": [("avg_red", "f32"), ("avg_green", "f32"), ("avg_blue", "f32")],
}
LOSS_RECORDS: dict[str, list[tuple[str, str]]] = {
    "loss_metric_2": [("margin", "f32"), ("dist_thresh", "f32")],
}
MARKER = "tag_or_skip"  # dlib's tag<N> and skip<N> layers: a bare version number in the file
CONV_MODE, FC_MODE = 0, 1  # affine_ modes
FC_HAS_BIAS, FC_NO_BIAS = 0, 1
_INF, _NINF, _NAN = 32000, 32001, 32002


@dataclass
class DlibLayer:
    """One layer in network order. ``fields``: the record's content, by dlib's field names
    (tensors as float32 arrays of dlib shape (n, k, nr, nc), aliases as 4-tuples);
    ``arrays``: the learned values reshaped (read-only views) — con: ``weight`` (O, I, kh, kw)
    and ``bias`` (O,); affine: ``gamma``, ``beta`` (C,); fc: ``weight`` (out, in) and, when
    present, ``bias`` (out,)."""

    kind: str
    record: str = ""
    version: int = 2
    fields: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    flags: str = ""  # this_layer_setup_called, gradient_input_is_stale, output disabled
    state: list[np.ndarray] = field(default_factory=list)  # x_grad, cached_output, params_grad

    def __repr__(self) -> str:
        scalars = {k: v for k, v in self.fields.items() if not isinstance(v, (np.ndarray, tuple))}
        shapes = {k: tuple(v.shape) for k, v in self.arrays.items()}
        return f"DlibLayer({self.kind}, {scalars}, {shapes})"


@dataclass
class DlibNet:
    """A parsed ``add_loss_layer`` network: loss, input and layers (input side first)."""

    loss_record: str
    loss: dict[str, Any]
    input_record: str
    input: dict[str, Any]
    layers: list[DlibLayer]
    sample_expansion_factor: int = 1

    @property
    def input_means(self) -> tuple[float, float, float]:
        """dlib's per-channel pixel means (R, G, B); the net sees (pixel - mean) / 256."""
        return (self.input["avg_red"], self.input["avg_green"], self.input["avg_blue"])

    @property
    def input_size(self) -> tuple[int, int] | None:
        return (self.input["nr"], self.input["nc"]) if "nr" in self.input else None

    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.pos = 0
        self.source = source

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.source}: not a readable dlib model file ({what} at byte {self.pos})")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(
                f"{self.source}: truncated dlib model file (needs {n} bytes at byte {self.pos}, "
                f"file has {len(self.data)})"
            )
        out = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            self.pos -= 1
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent == _INF:
            return math.inf
        if exponent == _NINF:
            return -math.inf
        if exponent == _NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def string(self, limit: int = 256) -> str:
        n = self.int()
        if not 0 <= n <= limit:
            raise self.fail(f"implausible string length {n}")
        raw = bytes(self.take(n))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("non-text record name") from None

    def flag(self) -> str:
        c = bytes(self.take(1)).decode("latin-1")
        if c not in "01":
            self.pos -= 1
            raise self.fail(f"bad boolean {c!r}")
        return c

    def dims(self) -> tuple[int, int, int, int]:
        dims = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"negative tensor dimension {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise self.fail(f"unsupported tensor serialisation version {version}")
        dims = self.dims()
        count = math.prod(dims)
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(dims)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise self.fail(f"unsupported alias_tensor version {version}")
        return self.dims()

    def fields(self, schema: list[tuple[str, str]]) -> dict[str, Any]:
        read = {"int": self.int, "f32": self.float, "f64": self.float,
                "tensor": self.tensor, "alias": self.alias}
        return {name: read[kind]() for name, kind in schema}


def _views(kind: str, f: dict[str, Any], fail) -> dict[str, np.ndarray]:
    """The learned values of a record, reshaped; ModelError (via ``fail``) if sizes disagree."""
    if kind == "con":
        params = f["params"].reshape(-1)
        shape = f["filters"]
        n_w = math.prod(shape)
        n_b = math.prod(f["biases"])
        if shape[0] != f["num_filters"] or shape[2:] != (f["nr"], f["nc"]) or params.size != n_w + n_b:
            raise fail(f"inconsistent con_ record (filters {shape}, {params.size} params)")
        out = {"weight": params[:n_w].reshape(shape)}
        if n_b:
            out["bias"] = params[n_w:]
        return out
    if kind == "affine":
        params = f["params"].reshape(-1)
        n = math.prod(f["gamma"])
        if math.prod(f["beta"]) != n or params.size != 2 * n:
            raise fail(f"inconsistent affine_ record ({params.size} params for {n} channels)")
        return {"gamma": params[:n], "beta": params[n:]}
    if kind == "fc":
        n_in, n_out = f["num_inputs"], f["num_outputs"]
        params = f["params"].reshape(-1)
        has_bias = f["bias_mode"] == FC_HAS_BIAS
        if params.size != (n_in + int(has_bias)) * n_out:
            raise fail(f"inconsistent fc_ record ({params.size} params for {n_in}x{n_out})")
        mat = params.reshape(n_in + int(has_bias), n_out)  # dlib: output = x @ W (+ bias row)
        out = {"weight": mat[:n_in].T}
        if has_bias:
            out["bias"] = mat[n_in]
        return out
    return {}


def parse_net(data: bytes, source: str = "<bytes>") -> DlibNet:
    """The network serialised in ``data``; ModelError (one line) if it is truncated or garbled."""
    r = _Reader(data, source)
    if r.int() != 1:
        raise r.fail("not an add_loss_layer (version is not 1)")
    loss_record = r.string()
    if loss_record not in LOSS_RECORDS:
        raise r.fail(f"unsupported loss layer {loss_record!r}")
    loss = r.fields(LOSS_RECORDS[loss_record])
    versions: list[int] = []  # top of the network first
    while True:
        v = r.int()
        if v not in (1, 2, 3):
            raise r.fail(f"unexpected layer version {v}")
        versions.append(v)
        if v == 3:
            break
        if len(versions) > 100_000:
            raise r.fail("no input layer")
    input_record = r.string()
    if input_record not in INPUT_RECORDS:
        raise r.fail(f"unsupported input layer {input_record!r}")
    inp = r.fields(INPUT_RECORDS[input_record])
    layers: list[DlibLayer] = []
    expansion = 1
    for version in reversed(versions):
        if version == 1:
            layers.append(DlibLayer(kind=MARKER, version=1))
            continue
        record = r.string()
        if record not in LAYER_RECORDS:
            raise r.fail(f"unsupported layer record {record!r}")
        kind, schema = LAYER_RECORDS[record]
        f = r.fields(schema)
        flags = "".join(r.flag() for _ in range(3))
        state = [r.tensor() for _ in range(3)]
        if version == 3:  # the add_layer on the input also holds the sample expansion factor
            expansion = r.int()
        layers.append(DlibLayer(kind, record, version, f, _views(kind, f, r.fail), flags, state))
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected trailing bytes")
    return DlibNet(loss_record, loss, input_record, inp, layers, expansion)


def read_net(path: str | Path) -> DlibNet:
    """Parse a dlib ``.dat`` network file (ModelError if missing, truncated or garbled)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read dlib model file {path}: {exc.strerror or exc}") from None
    return parse_net(data, str(path))


# ------------------------------------------------------------------------- writing


def encode_int(value: int) -> bytes:
    mag = abs(int(value))
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    if len(body) > 8:
        raise ValueError(f"integer {value} does not fit dlib's 8-byte encoding")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def encode_float(value: float, digits: int) -> bytes:
    """dlib's float_details encoding (``digits``: 24 for float, 53 for double)."""
    if math.isnan(value):
        return encode_int(0) + encode_int(_NAN)
    if math.isinf(value):
        return encode_int(0) + encode_int(_INF if value > 0 else _NINF)
    frac, exp = math.frexp(value)
    mantissa = int(math.ldexp(frac, digits))
    exponent = exp - digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return encode_int(mantissa) + encode_int(exponent)


def _encode_str(s: str) -> bytes:
    raw = s.encode("ascii")
    return encode_int(len(raw)) + raw


def _encode_fields(values: dict[str, Any], schema: list[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, kind in schema:
        v = values[name]
        if kind == "int":
            out += encode_int(v)
        elif kind in ("f32", "f64"):
            out += encode_float(v, 24 if kind == "f32" else 53)
        elif kind == "alias":
            out += encode_int(1) + b"".join(encode_int(d) for d in v)
        else:
            out += _encode_tensor(v)
    return bytes(out)


def _encode_tensor(a: np.ndarray) -> bytes:
    a = np.asarray(a, dtype="<f4")
    dims = tuple(a.shape) if a.ndim == 4 else (a.size, 1, 1, 1)
    return encode_int(2) + b"".join(encode_int(d) for d in dims) + a.tobytes()


def serialize_net(net: DlibNet) -> bytes:
    """``net`` in dlib's format (the inverse of ``parse_net``: byte-identical on a parsed file)."""
    out = bytearray(encode_int(1) + _encode_str(net.loss_record))
    out += _encode_fields(net.loss, LOSS_RECORDS[net.loss_record])
    for layer in reversed(net.layers):
        out += encode_int(layer.version)
    out += _encode_str(net.input_record) + _encode_fields(net.input, INPUT_RECORDS[net.input_record])
    for layer in net.layers:
        if layer.kind == MARKER:
            continue
        out += _encode_str(layer.record) + _encode_fields(layer.fields, LAYER_RECORDS[layer.record][1])
        out += layer.flags.encode("ascii") + b"".join(_encode_tensor(t) for t in layer.state)
        if layer.version == 3:
            out += encode_int(net.sample_expansion_factor)
    return bytes(out)
