"""The paper recipe's faces: both layouts agree, LR faces are made exactly as the authors did."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from cctv_id.distill.faces112 import Faces112, PairCollate, blur_kernel, gaussian_blur, make_lr, to_tensor
from cctv_id.distill.recordio import IRHeader, write_recordio
from cctv_id.errors import InputError


def synthetic_jpeg(seed: int, size: int = 112) -> bytes:
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 256, (14, 14, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", image)[1].tobytes()


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


PEOPLE = {"alice": 2, "bob": 3, "carol": 1}  # sorted names -> labels 0, 1, 2


@pytest.fixture(scope="module")
def content() -> list[tuple[str, bytes]]:
    return [(name, synthetic_jpeg(17 * i + k)) for i, (name, n) in enumerate(sorted(PEOPLE.items())) for k in range(n)]


def write_insightface(root, content, header: bool = True, prop: str | None = "3,112,112") -> None:
    root.mkdir(parents=True, exist_ok=True)
    names = sorted(PEOPLE)
    images = [(IRHeader(0, float(names.index(n)), i, 0), jpeg) for i, (n, jpeg) in enumerate(content, 1)]
    if header:
        first_id = 1 + len(images)
        starts = np.cumsum([1] + [PEOPLE[n] for n in names])
        ids = [(IRHeader(0, (float(a), float(b)), 0, 0), b"") for a, b in zip(starts[:-1], starts[1:])]
        records = [(IRHeader(0, (float(first_id), float(first_id + len(names))), 0, 0), b"")] + images + ids
    else:
        records = images
    write_recordio(root / "train.rec", records)
    if prop is not None:
        (root / "property").write_text(prop)


def write_folder(root, content) -> None:
    for i, (name, jpeg) in enumerate(content):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / f"{i:03d}.jpg").write_bytes(jpeg)


@pytest.fixture()
def both(tmp_path, content):
    write_insightface(tmp_path / "rec", content)
    write_folder(tmp_path / "folder", content)
    return Faces112(tmp_path / "rec"), Faces112(tmp_path / "folder")


def test_both_layouts_give_the_same_faces(both, content):
    rec, folder = both
    assert len(rec) == len(folder) == 6
    assert rec.num_classes == folder.num_classes == 3
    expected = [0, 0, 1, 1, 1, 2]
    for i, (_, jpeg) in enumerate(content):
        (a, la), (b, lb) = rec[i], folder[i]
        assert la == lb == expected[i] and isinstance(la, int)
        assert a.dtype == np.uint8 and a.shape == (112, 112, 3)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, decode(jpeg))
    assert rec[-1][1] == 2
    with pytest.raises(IndexError):
        rec[6]


def test_recordio_without_header_uses_property_or_scans(tmp_path, content):
    write_insightface(tmp_path / "a", content, header=False, prop="7,112,112")
    faces = Faces112(tmp_path / "a")
    assert len(faces) == 6 and faces.num_classes == 7 and faces[5][1] == 2
    write_insightface(tmp_path / "b", content, header=False, prop=None)
    assert Faces112(tmp_path / "b").num_classes == 3
    assert Faces112(tmp_path / "b" / "train.rec").num_classes == 3  # the .rec itself as root


def test_inconsistent_recordio_is_an_input_error(tmp_path, content):
    write_insightface(tmp_path / "a", content, prop="10572,112,112")
    with pytest.raises(InputError, match="property says 10572 classes but train.rec's header has 3"):
        Faces112(tmp_path / "a")
    write_insightface(tmp_path / "b", content, prop="many,112,112")
    with pytest.raises(InputError, match="property should read 'num_classes,height,width'"):
        Faces112(tmp_path / "b")
    write_insightface(tmp_path / "c", content)
    lines = (tmp_path / "c" / "train.idx").read_text().splitlines()
    (tmp_path / "c" / "train.idx").write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    with pytest.raises(InputError, match="train.idx has 5 of the 6 image records"):
        Faces112(tmp_path / "c")
    write_insightface(tmp_path / "d", content, header=False, prop="2,112,112")
    with pytest.raises(InputError, match="record 5 has label 2, outside 0..1"):
        Faces112(tmp_path / "d")[5]
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "train.rec").write_bytes(b"")
    with pytest.raises(InputError, match=r"train\.idx not found: a \.rec needs its \.idx index"):
        Faces112(tmp_path / "e")


def test_folder_layout_edge_cases(tmp_path):
    with pytest.raises(InputError, match="training faces not found"):
        Faces112(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images in .*empty"):
        Faces112(tmp_path / "empty")
    (tmp_path / "empty" / "nobody").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no images in"):
        Faces112(tmp_path / "empty")
    root = tmp_path / "mixed"
    for name in ("a", "b", "c"):
        (root / name).mkdir(parents=True)
    cv2.imwrite(str(root / "a" / "big.PNG"), np.full((150, 130, 3), 200, np.uint8))
    cv2.imwrite(str(root / "c" / "small.jpg"), np.full((64, 64, 3), 50, np.uint8))
    (root / "c" / "broken.jpg").write_bytes(b"nope")
    faces = Faces112(root)
    assert faces.num_classes == 2 and len(faces) == 3  # "b" has no images, so no label
    image, label = faces[0]
    assert image.shape == (112, 112, 3) and label == 0 and int(image.mean()) == 200
    with pytest.raises(InputError, match="cannot read image .*broken.jpg"):
        faces[1]
    assert faces[2][0].shape == (112, 112, 3) and faces[2][1] == 1


def test_to_tensor_keeps_bgr_and_maps_to_minus_one_one():
    image = np.zeros((4, 5, 3), np.uint8)
    image[..., 0] = 255  # blue
    image[0, 0] = (0, 127, 128)
    t = to_tensor(image)
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float32
    assert t[0, 0, 1, 1] == 1.0 and t[0, 2, 1, 1] == -1.0
    assert torch.allclose(t[0, :, 0, 0], torch.tensor([-1.0, -0.5 / 127.5, 0.5 / 127.5]))
    batch = np.stack([image, image[::-1]])
    assert to_tensor(batch).shape == (2, 3, 4, 5)
    ref = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255  # ToTensor, then Normalize(0.5, 0.5)
    assert torch.allclose(to_tensor(batch), (ref - 0.5) / 0.5, atol=1e-6)
    with pytest.raises(ValueError):
        to_tensor(batch.astype(np.float32))


@pytest.fixture(scope="module")
def hr() -> torch.Tensor:
    return torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_make_lr_nearest_blocks(hr):
    lr = make_lr(hr, 14, blur=False)
    assert lr.shape == hr.shape
    expected = hr[..., ::8, ::8].repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)
    assert torch.equal(lr, expected)  # 8x8 blocks of identical pixels, the top-left one of each
    assert torch.equal(make_lr(hr, 14), gaussian_blur(lr))
    assert make_lr(hr, 112) is hr and make_lr(hr, 112, blur=False) is hr
    assert make_lr(hr, 28).shape == hr.shape and make_lr(hr[:1], 20).shape == (1, 3, 112, 112)


def test_blur_kernel_by_hand():
    def g(sigma):
        w = [math.exp(-0.5 * (x / sigma) ** 2) for x in (-2, -1, 0, 1, 2)]
        return [v / sum(w) for v in w]

    kx, ky = g(0.1), g(2.0)
    hand = torch.tensor([[ky[r] * kx[c] for c in range(5)] for r in range(5)])
    assert torch.allclose(blur_kernel(), hand, rtol=1e-6, atol=1e-12)
    assert kx[1] == kx[3] < 1e-20  # sigma 0.1 across: in effect a vertical-only blur
    delta = torch.zeros(1, 3, 11, 11)
    delta[:, :, 5, 5] = 1.0
    out = gaussian_blur(delta)
    assert out.shape == delta.shape
    for ch in range(3):
        assert torch.allclose(out[0, ch, 3:8, 3:8], hand, rtol=1e-6, atol=1e-12)
    assert out.sum() == pytest.approx(3.0, rel=1e-6)
    # reflect padding (edge not repeated): a delta on row 1 reaches rows 0 and 1 through two taps each
    edge = torch.zeros(1, 1, 11, 11)
    edge[0, 0, 1, 5] = 1.0
    out = gaussian_blur(edge)[0, 0, :, 5]
    assert out[0].item() == pytest.approx(ky[1] + ky[3], rel=1e-6)
    assert out[1].item() == pytest.approx(ky[2] + ky[0], rel=1e-6) and out[3].item() == pytest.approx(ky[0], rel=1e-6)


def images(n: int, seed: int = 0) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), i % 3) for i in range(n)]


def flips_of(hr: torch.Tensor, batch) -> list[bool]:
    out = []
    for t, (image, _) in zip(hr, batch):
        plain = to_tensor(image)[0]
        if torch.equal(t, plain):
            out.append(False)
        else:
            assert torch.equal(t, plain.flip(-1))
            out.append(True)
    return out


def test_pair_collate_flips_hr_and_lr_together():
    batch = images(12)
    hr, lr, labels = PairCollate(14, seed=1)(batch)
    assert hr.shape == lr.shape == (12, 3, 112, 112) and labels.dtype == torch.long
    assert labels.tolist() == [label for _, label in batch]
    flips = flips_of(hr, batch)
    assert any(flips) and not all(flips)
    for i, ((image, _), flipped) in enumerate(zip(batch, flips)):
        view = to_tensor(image).flip(-1) if flipped else to_tensor(image)
        assert torch.equal(lr[i : i + 1], make_lr(view, 14))
        if flipped:  # the LR is made from the flipped HR, which is not the flipped LR
            assert not torch.equal(lr[i : i + 1], make_lr(to_tensor(image), 14).flip(-1))
    hr2, lr2, _ = PairCollate(14, seed=1, blur=False)(batch)
    assert torch.equal(hr2, hr) and torch.equal(lr2, make_lr(hr, 14, blur=False))


def test_pair_collate_is_reproducible():
    batches = [images(16, seed) for seed in range(3)]
    a, b, c = PairCollate(28, seed=5), PairCollate(28, seed=5), PairCollate(28, seed=6)
    runs = [[flips_of(collate(batch)[0], batch) for batch in batches] for collate in (a, b, c)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert runs[0][0] != runs[0][1]  # the stream moves on from batch to batch
    hr, lr, _ = PairCollate(112)(batches[0])
    assert lr is hr
    hr, _, _ = PairCollate(112, flip=False)(batches[0])
    assert not any(flips_of(hr, batches[0]))


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def loader_flips(data, seed: int, epochs: int = 1) -> list[list[bool]]:
    loader = torch.utils.data.DataLoader(
        ListDataset(data), batch_size=16, num_workers=2, collate_fn=PairCollate(14, seed=3),
        generator=torch.Generator().manual_seed(seed), multiprocessing_context="fork",
    )
    out = []
    for _ in range(epochs):
        for i, (hr, _, _) in enumerate(loader):
            out.append(flips_of(hr, data[16 * i : 16 * i + 16]))
    return out


def test_pair_collate_in_workers_distinct_and_reproducible():
    data = images(64)
    first = loader_flips(data, seed=11, epochs=2)
    assert first == loader_flips(data, seed=11, epochs=2)
    assert first[0] != first[1]  # worker 0 made batch 0, worker 1 batch 1
    assert first[:4] != first[4:]  # epochs differ
    assert first[:4] != loader_flips(data, seed=12)


def test_faces112_in_dataloader_workers(both):
    rec, folder = both
    loader = torch.utils.data.DataLoader(rec, batch_size=2, num_workers=2, collate_fn=PairCollate(14, flip=False),
                                         multiprocessing_context="fork")
    got = torch.cat([hr for hr, _, _ in loader])
    expected = to_tensor(np.stack([folder[i][0] for i in range(len(folder))]))
    assert torch.equal(got, expected)
