"""insightface-style IResNets with CBAM (the A-SKD paper recipe): shapes of the attention maps
at every block, head sizes, train/eval behaviour, channels_last and bf16 autocast, gradients
into CBAM, and the CBAM form of the attention loss between two of them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from cctv_id.distill.attention import cbam_askd_loss  # noqa: E402
from cctv_id.errors import ConfigError  # noqa: E402
from cctv_id.recognize.models.iresnet import ARCHS, build_iresnet, count_parameters  # noqa: E402


@pytest.fixture(scope="module")
def r18() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_iresnet("iresnet18", input_size=64).eval()


def test_iresnet50_cbam_maps_have_the_papers_shapes_at_every_block():
    torch.manual_seed(0)
    model = build_iresnet("iresnet50").eval()
    assert ARCHS["iresnet50"] == [3, 4, 14, 3]
    expected = [(64, 56)] * 3 + [(128, 28)] * 4 + [(256, 14)] * 14 + [(512, 7)] * 3
    assert model.block_info() == expected
    with torch.inference_mode():
        emb, maps = model.forward_with_maps(torch.rand(2, 3, 112, 112) * 2 - 1)
    assert emb.shape == (2, 512)
    assert len(maps) == 24
    for (channels, size), (ch, sp) in zip(expected, maps):
        assert ch.shape == (2, channels)
        assert sp.shape == (2, 1, size, size)
    assert model.fc.in_features == 512 * 7 * 7 == 25088


def test_iresnet18_size_and_head():
    plain = build_iresnet("iresnet18", cbam=False)
    with_cbam = build_iresnet("iresnet18")
    assert plain.fc.in_features == 25088
    # insightface's r18 is ~24.0 M parameters, 2/3 of them in the 25088 x 512 fc
    assert 23.5e6 < count_parameters(plain) < 24.5e6
    assert 0 < count_parameters(with_cbam) - count_parameters(plain) < 0.2e6
    assert len(with_cbam.block_info()) == sum(ARCHS["iresnet18"]) == 8
    with pytest.raises(ValueError, match="no CBAM"):
        plain.forward_with_maps(torch.zeros(1, 3, 112, 112))
    small = build_iresnet("iresnet18", input_size=64, embedding_size=128)
    assert small.fc.in_features == 512 * 4 * 4
    assert small(torch.zeros(3, 3, 64, 64)).shape == (3, 128)


def test_bad_configs_raise_config_error():
    with pytest.raises(ConfigError, match="unknown architecture 'iresnet7'; choose from "
                                          "iresnet18, iresnet34, iresnet50, iresnet100"):
        build_iresnet("iresnet7")
    with pytest.raises(ConfigError, match="multiple of 16"):
        build_iresnet("iresnet18", input_size=100)


def test_eval_is_deterministic_and_train_mode_differs(r18):
    import copy

    x = torch.rand(4, 3, 64, 64) * 2 - 1
    trained = copy.deepcopy(r18).train()  # a train-mode pass updates BN running stats: use a copy
    with torch.no_grad():
        a, b = r18(x), r18(x)
        torch.manual_seed(1)
        c1 = trained(x)
        torch.manual_seed(2)
        c2 = trained(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c1, atol=1e-3)  # batch statistics and dropout
    assert not torch.allclose(c1, c2, atol=1e-3)  # dropout masks differ per call


def test_channels_last_and_bf16_autocast_agree_with_fp32(r18):
    torch.manual_seed(2)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref, ref_maps = r18.forward_with_maps(x)
        cl_model = build_iresnet("iresnet18", input_size=64).eval()
        cl_model.load_state_dict(r18.state_dict())
        cl_model = cl_model.to(memory_format=torch.channels_last)
        cl, cl_maps = cl_model.forward_with_maps(x.contiguous(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf, bf_maps = r18.forward_with_maps(x)
    assert torch.allclose(cl, ref, atol=1e-3, rtol=1e-3)
    for (c1, s1), (c2, s2) in zip(ref_maps, cl_maps):
        assert torch.allclose(c1, c2, atol=1e-3, rtol=1e-3)
        assert torch.allclose(s1, s2, atol=1e-3, rtol=1e-3)
    assert bf.dtype == torch.bfloat16
    cos = torch.nn.functional.cosine_similarity(bf.float(), ref, dim=1)
    assert (cos > 0.995).all(), cos
    for (c1, s1), (c2, s2) in zip(ref_maps, bf_maps):
        assert torch.nn.functional.cosine_similarity(c1.flatten(), c2.float().flatten(), dim=0) > 0.995
        assert torch.nn.functional.cosine_similarity(s1.flatten(), s2.float().flatten(), dim=0) > 0.995


def test_gradients_reach_every_cbam_module():
    torch.manual_seed(3)
    model = build_iresnet("iresnet18", input_size=32).train()
    emb, maps = model.forward_with_maps(torch.rand(4, 3, 32, 32) * 2 - 1)
    (emb.pow(2).mean() + sum(s.mean() + c.mean() for c, s in maps)).backward()
    for block in model.blocks:
        for p in block.cbam.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0


def test_cbam_askd_loss_between_iresnets_is_zero_for_identical_and_flows_only_into_student():
    torch.manual_seed(4)
    student = build_iresnet("iresnet18", input_size=32).eval()
    teacher = build_iresnet("iresnet18", input_size=32).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    _, s_maps = student.forward_with_maps(x)
    _, same_maps = student.forward_with_maps(x)
    assert cbam_askd_loss(s_maps, same_maps).item() == pytest.approx(0.0, abs=1e-5)
    _, t_maps = teacher.forward_with_maps(x)  # teacher NOT under no_grad: the loss must detach it
    loss = cbam_askd_loss(s_maps, t_maps, weight=5.0)
    assert loss.item() > 0
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.blocks[0].cbam.parameters())
