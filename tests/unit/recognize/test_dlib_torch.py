"""dlib's ResNet ported to PyTorch: the .dat parser, the network, and parity with dlib itself
on real aligned CelebA faces (those cases skip when ../shared/data is absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")
torch = pytest.importorskip("torch")

from cctv_id.config import RecognizerConfig  # noqa: E402
from cctv_id.errors import ConfigError, ModelError  # noqa: E402
from cctv_id.recognize import dlib_format as fmt  # noqa: E402
from cctv_id.recognize.base import build_encoder  # noqa: E402
from cctv_id.recognize.dlib_resnet import DLIB_150, DlibResNetEncoder, default_model_path  # noqa: E402
from cctv_id.recognize.dlib_torch import DlibTorchEncoder  # noqa: E402
from cctv_id.recognize.models import dlib_resnet_torch as port  # noqa: E402

EXPECTED_BLOCKS = (
    [(0, 32, 35)] * 3 + [(1, 64, 17)] * 4 + [(2, 128, 8)] * 3 + [(3, 256, 4)] * 3 + [(4, 256, 2)]
)


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("cctv-cache")
        mp.setenv("CCTV_ID_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    return default_model_path().read_bytes()


@pytest.fixture(scope="module")
def net(dat_bytes) -> fmt.DlibNet:
    return fmt.parse_net(dat_bytes, "model.dat")


@pytest.fixture(scope="module")
def teacher(cache):
    return port.load_teacher()


# ------------------------------------------------------------------------------ parser


def test_parser_layers(net):
    kinds = Counter(net.kinds())
    assert len(net.layers) == 130
    assert kinds == {"con": 29, "affine": 29, "relu": 29, "tag_or_skip": 22, "add_prev": 14,
                     "avg_pool": 5, "max_pool": 1, "fc": 1}
    assert net.input_record == "input_rgb_image_sized" and net.input_size == (150, 150)
    np.testing.assert_allclose(net.input_means, (122.782, 117.001, 104.298), atol=1e-4)
    assert net.loss_record == "loss_metric_2"
    first = net.layers[0]
    assert first.kind == "con" and first.arrays["weight"].shape == (32, 3, 7, 7)
    assert (first.fields["stride_y"], first.fields["padding_y"]) == (2, 0)
    fc = net.layers[-1]
    assert fc.kind == "fc" and fc.arrays["weight"].shape == (128, 256) and "bias" not in fc.arrays
    cons = [layer for layer in net.layers if layer.kind == "con"]
    for c in cons:  # dlib's default padding: k//2 at stride 1, 0 when strided
        assert c.fields["padding_y"] == (c.fields["nr"] // 2 if c.fields["stride_y"] == 1 else 0)
    assert sum(c.fields["stride_y"] == 2 for c in cons) == 5
    affines = [layer for layer in net.layers if layer.kind == "affine"]
    assert all(a.fields["mode"] == fmt.CONV_MODE and a.record == "affine_" for a in affines)
    n_params = sum(a.size for layer in net.layers for a in layer.arrays.values())
    assert n_params == 5_614_592 == sum(p.numel() for p in port.DlibResNet().parameters())


def test_parser_round_trip_is_byte_identical(net, dat_bytes):
    assert fmt.serialize_net(net) == dat_bytes


@pytest.mark.parametrize("value", [0, 1, -1, 255, 256, -17, 2**40])
def test_int_encoding(value):
    r = fmt._Reader(fmt.encode_int(value), "x")
    assert r.int() == value and r.pos == len(r.data)


@pytest.mark.parametrize("value,digits", [(0.0, 53), (1.0, 53), (0.04, 24), (122.782, 24), (-3.5, 53)])
def test_float_encoding(value, digits):
    v = float(np.float32(value)) if digits == 24 else value
    r = fmt._Reader(fmt.encode_float(v, digits), "x")
    assert r.float() == v


@pytest.mark.parametrize("cut", [0, 3, 200, 330, 400, 5_000, 1_000_000, -60, -1])
def test_truncated_file_is_model_error(dat_bytes, cut):
    with pytest.raises(ModelError) as err:
        fmt.parse_net(dat_bytes[:cut], "model.dat")
    assert "truncated" in str(err.value) and "\n" not in str(err.value)


def test_garbled_files_are_model_errors(dat_bytes, tmp_path):
    at = dat_bytes.index(b"con_4")
    bad_name = dat_bytes[:at] + b"cxn_4" + dat_bytes[at + 5 :]
    for data in (bad_name, dat_bytes + b"\x00", b"\xff" * 64, b"hello world, not a net"):
        with pytest.raises(ModelError) as err:
            fmt.parse_net(data, "model.dat")
        assert "\n" not in str(err.value)
    path = tmp_path / "short.dat"
    path.write_bytes(dat_bytes[:100_000])
    with pytest.raises(ModelError, match="truncated"):
        fmt.read_net(path)
    with pytest.raises(ModelError):
        fmt.read_net(tmp_path / "missing.dat")


# ------------------------------------------------------------------------------ network


def test_block_info_and_map_shapes(teacher):
    assert teacher.block_info == EXPECTED_BLOCKS
    x = torch.zeros(2, 3, 150, 150)
    with torch.inference_mode():
        desc, maps = teacher.forward_with_maps(x)
        plain = teacher(x)
    assert desc.shape == (2, 128)
    torch.testing.assert_close(desc, plain)
    assert [tuple(m.shape) for m in maps] == [(2, c, s, s) for _, c, s in EXPECTED_BLOCKS]
    assert any((m < 0).any() for m in maps)  # before the relu


def test_teacher_parameters_and_cache(teacher, cache):
    assert not teacher.training and teacher.dat_sha256 and len(teacher.dat_sha256) == 64
    params = dict(teacher.named_parameters())
    assert all(isinstance(p, torch.nn.Parameter) and not p.requires_grad for p in params.values())
    assert params["affine1.weight"].shape == (32,) and params["fc.weight"].shape == (128, 256)
    cached = list((cache / "dlib_resnet_torch").glob(f"{teacher.dat_sha256}-*.pt"))
    assert len(cached) == 1
    again = port.load_teacher()  # from the cache
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    cached[0].write_bytes(b"garbage")  # a broken cache is rebuilt from the .dat
    rebuilt = port.load_teacher()
    assert torch.equal(rebuilt.fc.weight, teacher.fc.weight)
    assert port.load_teacher(default_model_path().parent).dat_sha256 == teacher.dat_sha256


def test_preprocess_is_dlibs_normalisation():
    chips = np.zeros((1, 150, 150, 3), np.uint8)
    chips[0, 0, 0] = (10, 20, 30)  # B, G, R
    x = port.preprocess(chips)
    assert x.shape == (1, 3, 150, 150) and x.dtype == torch.float32 and x.is_contiguous()
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(),
                               (np.float32([30, 20, 10]) - np.float32(port.INPUT_MEANS_RGB)) / 256)


def test_registry_and_identity(cache):
    enc = build_encoder(RecognizerConfig(backend="dlib-torch", batch_size=8, options={"threads": 1}))
    assert isinstance(enc, DlibTorchEncoder)
    assert enc.name == "dlib-resnet-v1" and enc.dim == 128 and enc.align_spec is DLIB_150
    from cctv_id.recognize.base import file_sha256

    assert enc.model_sha256 == file_sha256(default_model_path())
    with pytest.raises(ConfigError):
        DlibTorchEncoder(RecognizerConfig(backend="dlib-torch", options={"num_jitters": 1}))
    with pytest.raises(ModelError):
        DlibTorchEncoder(RecognizerConfig(backend="dlib-torch", model_path="/nonexistent/x.dat"))
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA"):
            DlibTorchEncoder(RecognizerConfig(backend="dlib-torch", options={"device": "cuda"}))
    else:
        assert DlibTorchEncoder().device.type == "cuda"


# ------------------------------------------------------------------------------ parity


def _real_chips(celeba_dir: Path, n: int = 16) -> np.ndarray:
    import cv2

    from cctv_id.align import align_faces
    from cctv_id.recognize.offline_landmarks import detect_landmarks

    chips = []
    for person in sorted(p for p in celeba_dir.iterdir() if p.is_dir()):
        img = cv2.imread(str(sorted(person.glob("*.jpg"))[0]))
        if img is None:
            continue
        _, _, lms = detect_landmarks(img)
        if len(lms):
            chips.append(align_faces(img, lms[:1], DLIB_150)[0])
        if len(chips) == n:
            break
    return np.stack(chips)


def test_parity_with_dlib_on_real_faces(celeba_dir, cache):
    chips = _real_chips(celeba_dir)
    assert len(chips) == 16
    ref = DlibResNetEncoder().embed_chips(chips).vectors
    enc = DlibTorchEncoder(RecognizerConfig(backend="dlib-torch", batch_size=8, options={"device": "cpu"}))
    ours = enc.embed_chips(chips).vectors
    cos = (ref * ours).sum(axis=1)
    assert cos.min() >= 0.9999, cos
    # and the faces are really different people: parity is not a degenerate constant
    off = (ref @ ref.T)[~np.eye(len(ref), dtype=bool)]
    assert off.max() < 0.99
