"""ArcFace and CosFace margin heads: hand-computed logits, the margin only at the label column,
the scale, insightface's fallback past pi, and that they learn separable toy data."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from cctv_id.distill.heads import ArcFace, CosFace, build_head  # noqa: E402
from cctv_id.errors import ConfigError  # noqa: E402

# 3 classes in 2-d: class rows at 0, 90 and 180 degrees (set un-normalised, the head normalises)
ROWS = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-0.5, 0.0]])


def _angles(deg: list[float]) -> torch.Tensor:
    r = torch.tensor([math.radians(d) for d in deg])
    return torch.stack([torch.cos(r), torch.sin(r)], 1) * 7.0  # any length: embeddings get normalised


def _set_rows(head) -> None:
    with torch.no_grad():
        head.weight.copy_(ROWS)


def test_arcface_matches_hand_computation():
    head = ArcFace(2, 3, s=32.0, m=0.5)
    _set_rows(head)
    emb = _angles([30.0, 100.0])
    labels = torch.tensor([0, 1])
    logits = head(emb, labels)
    t = [math.radians(30.0), math.radians(100.0)]
    # cosines to the rows at 0, 90, 180 degrees
    cos0 = [math.cos(t[0]), math.cos(t[0] - math.pi / 2), math.cos(t[0] - math.pi)]
    cos1 = [math.cos(t[1]), math.cos(t[1] - math.pi / 2), math.cos(t[1] - math.pi)]
    cos0[0] = math.cos(t[0] + 0.5)  # label 0: theta = 30 deg
    cos1[1] = math.cos(math.radians(10.0) + 0.5)  # label 1: theta = 10 deg
    expected = 32.0 * torch.tensor([cos0, cos1])
    assert torch.allclose(logits, expected, atol=1e-4)


def test_arcface_falls_back_past_pi_and_margin_only_at_label():
    m = 0.5
    head = ArcFace(2, 3, s=1.0, m=m)
    _set_rows(head)
    emb = _angles([160.0])  # theta to class 0 is 160 deg: 160 deg + 0.5 rad > pi
    plain = F.normalize(emb, dim=1) @ F.normalize(ROWS, dim=1).T
    logits = head(emb, torch.tensor([0]))
    expected_target = math.cos(math.radians(160.0)) - math.sin(math.pi - m) * m
    assert logits[0, 0].item() == pytest.approx(expected_target, abs=1e-5)
    assert torch.allclose(logits[0, 1:], plain[0, 1:], atol=1e-6)
    # scale multiplies every logit
    head.s = 64.0
    assert torch.allclose(head(emb, torch.tensor([0])), 64.0 * logits, atol=1e-4)


def test_cosface_matches_hand_computation_and_scales():
    head = CosFace(2, 3, s=30.0, m=0.35)
    _set_rows(head)
    emb = _angles([45.0, 180.0])
    labels = torch.tensor([1, 2])
    r = math.sqrt(0.5)
    expected = torch.tensor([[r, r - 0.35, -r], [-1.0, 0.0, 1.0 - 0.35]]) * 30.0
    assert torch.allclose(head(emb, labels), expected, atol=1e-4)
    head.m = 0.0
    assert torch.allclose(head(emb, labels), 30.0 * (F.normalize(emb, dim=1) @ F.normalize(ROWS, dim=1).T), atol=1e-4)


def test_heads_work_on_bf16_embeddings_and_give_float32():
    for head in (ArcFace(8, 5), CosFace(8, 5)):
        out = head(torch.randn(4, 8).bfloat16(), torch.tensor([0, 1, 2, 3]))
        assert out.dtype == torch.float32 and out.shape == (4, 5)


@pytest.mark.parametrize("name", ["arcface", "cosface"])
def test_loss_decreases_on_separable_toy_embeddings(name):
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(4, 16), dim=1) * 3
    labels = torch.arange(4).repeat_interleave(8)
    emb = centres[labels] + 0.3 * torch.randn(32, 16)
    head = build_head(name, 16, 4)
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(head(emb, labels), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_build_head_defaults_and_unknown_name():
    arc = build_head("arcface", 512, 10)
    assert isinstance(arc, ArcFace) and (arc.s, arc.m) == (32.0, 0.5)
    cos = build_head("cosface", 512, 10, s=64.0, m=0.4)
    assert isinstance(cos, CosFace) and (cos.s, cos.m) == (64.0, 0.4)
    assert cos.weight.shape == (10, 512)
    with pytest.raises(ConfigError, match="unknown head 'sphereface'; choose from arcface, cosface"):
        build_head("sphereface", 512, 10)
