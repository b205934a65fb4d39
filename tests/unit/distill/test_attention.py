"""A-SKD attention similarity: hand computations, zero for identical maps, gradients only into the student."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from cctv_id.distill.attention import (  # noqa: E402
    askd_loss,
    cbam_askd_loss,
    channel_map,
    pair_blocks,
    spatial_map,
    standardise,
    teacher_targets,
)


def test_spatial_map_is_standardised_channel_mean_of_squares():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [1.0, 0.0]]]])  # (1, 2, 2, 2)
    raw = torch.tensor([(1 + 1) / 2, (4 + 0) / 2, (9 + 1) / 2, (16 + 0) / 2])  # 1, 2, 5, 8
    expected = (raw - raw.mean()) / raw.std(unbiased=False)
    assert torch.allclose(spatial_map(f)[0], expected, atol=1e-5)


def test_channel_map_and_pooling_to_student_size():
    f = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    c = channel_map(f)
    assert c.shape == (2, 3)
    assert torch.allclose(c.mean(1), torch.zeros(2), atol=1e-5)
    assert spatial_map(f, size=2).shape == (2, 4)


def test_loss_matches_hand_computation_and_is_zero_for_identical_maps():
    torch.manual_seed(0)
    student = [torch.randn(3, 8, 6, 6)]
    teacher = [torch.randn(3, 8, 12, 12)]
    pairs = pair_blocks([(0, 8, 6)], [(0, 8, 12)], min_size=5)
    assert len(pairs) == 1 and pairs[0].channel and pairs[0].size == 6
    targets = teacher_targets(teacher, pairs)
    got = askd_loss(student, targets, pairs, weight=2.0)
    # by hand: pool the teacher's spatial map to 6x6, standardise, 1 - cos; same for channels
    ts = torch.nn.functional.adaptive_avg_pool2d(teacher[0].pow(2).mean(1, keepdim=True), 6).flatten(1)
    ss = student[0].pow(2).mean(1).flatten(1)
    z = lambda v: (v - v.mean(1, keepdim=True)) / v.std(1, unbiased=False, keepdim=True)  # noqa: E731
    cos = lambda a, b: (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))  # noqa: E731
    tc, sc = teacher[0].mean((2, 3)), student[0].mean((2, 3))
    hand = 2.0 * ((1 - cos(z(ss), z(ts))) + (1 - cos(z(sc), z(tc)))).mean()
    assert math.isclose(float(got), float(hand), rel_tol=1e-4)
    same = askd_loss(student, teacher_targets(student, pair_blocks([(0, 8, 6)], [(0, 8, 6)])), pairs, 5.0)
    assert abs(float(same)) < 1e-5


def test_gradient_flows_only_into_the_student():
    s = torch.randn(2, 4, 6, 6, requires_grad=True)
    t = torch.randn(2, 4, 6, 6, requires_grad=True)
    pairs = pair_blocks([(0, 4, 6)], [(0, 4, 6)])
    loss = askd_loss([s], [(spatial_map(t), channel_map(t))], pairs, 1.0)
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_spatial_only_where_widths_differ_and_small_stages_left_out():
    student = [(0, 32, 24), (0, 32, 24), (1, 64, 12), (2, 128, 6), (3, 256, 3)]
    teacher = [(0, 32, 35)] * 3 + [(1, 96, 17)] * 4 + [(2, 128, 8)] * 3 + [(3, 256, 4)] * 3
    pairs = pair_blocks(student, teacher, min_size=5)
    assert [p.student for p in pairs] == [0, 1, 2, 3]  # the 3 px stage is left out
    assert [p.teacher for p in pairs] == [1, 2, 6, 9]  # last blocks of each stage meet
    assert [p.channel for p in pairs] == [True, True, False, True]
    s_maps = [torch.randn(2, c, n, n) for _, c, n in student]
    t_maps = [torch.randn(2, c, n, n) for _, c, n in teacher]
    assert float(askd_loss(s_maps, teacher_targets(t_maps, pairs), pairs)) > 0


def test_cbam_form_zero_for_identical_and_weighted():
    ca, sa = torch.randn(2, 16, 1, 1), torch.randn(2, 1, 7, 7)
    assert abs(float(cbam_askd_loss([(ca, sa)], [(ca, sa)], 5.0))) < 1e-5
    other = (torch.randn(2, 16, 1, 1), torch.randn(2, 1, 7, 7))
    one = cbam_askd_loss([(ca, sa)], [other], 1.0)
    assert math.isclose(float(cbam_askd_loss([(ca, sa)], [other], 5.0)), 5 * float(one), rel_tol=1e-5)


def test_standardise_constant_map_is_finite():
    assert torch.isfinite(standardise(torch.ones(2, 9))).all()


def test_cbam_form_equals_a_hand_computation_over_two_blocks():
    # batch of 2, block 1: 3 channels + 2x2 spatial; block 2: 2 channels + 1x3 spatial
    s1c = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    t1c = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])  # cos 0 and 1
    s1s = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]).reshape(2, 1, 2, 2)
    t1s = torch.tensor([[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]).reshape(2, 1, 2, 2)  # cos 1/sqrt2, -1
    s2c = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    t2c = torch.tensor([[4.0, 3.0], [0.0, 2.0]])  # cos 24/25, 0
    s2s = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 5.0]]).reshape(2, 1, 1, 3)
    t2s = torch.tensor([[2.0, 4.0, 4.0], [0.0, 0.0, 1.0]]).reshape(2, 1, 1, 3)  # cos 1, 1
    per_sample = [
        (1 - 0.0) + (1 - 1 / math.sqrt(2)) + (1 - 24 / 25) + (1 - 1.0),
        (1 - 1.0) + (1 - (-1.0)) + (1 - 0.0) + (1 - 1.0),
    ]
    expected = 5.0 * sum(per_sample) / 2
    got = cbam_askd_loss([(s1c, s1s), (s2c, s2s)], [(t1c, t1s), (t2c, t2s)], weight=5.0)
    assert math.isclose(float(got), expected, rel_tol=1e-6)
