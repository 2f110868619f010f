"""Model shapes and sizes: VGG-9 matches the paper's 111.7 Mb uplink."""

from __future__ import annotations

import torch

from simfl.learning.models import build_model, forward_flops, model_bits, parameter_count


def test_vgg9_has_the_papers_parameter_count() -> None:
    # Section V-A2: 111.7 Mb at 32 bits per parameter. By hand: convs
    # 896 + 18,496 + 73,856 + 147,584 + 295,168 + 590,080 = 1,126,080;
    # fc 4096*512+512 + 512*512+512 + 512*10+10 = 2,365,450; total 3,491,530.
    model = build_model("vgg9", (3, 32, 32), 10, seed=0)
    assert parameter_count(model) == 3_491_530
    assert model_bits(model) == 111_728_960


def test_cnn_size_and_output_shape() -> None:
    model = build_model("cnn", (1, 28, 28), 10, seed=0)
    # conv 1*25*16+16 = 416; conv 16*25*32+32 = 12,832; fc 1568*64+64 = 100,416; fc 64*10+10 = 650
    assert parameter_count(model) == 114_314
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_vgg9_forward_flops_by_hand() -> None:
    # 2 x MACs: conv layers 2*(27*32*1024 + 288*64*1024 + 576*128*256 + 1152*128*256
    # + 1152*256*64 + 2304*256*64) + fc 2*(4096*512 + 512*512 + 512*10)
    convs = 27 * 32 * 1024 + 288 * 64 * 1024 + 576 * 128 * 256 + 1152 * 128 * 256 + 1152 * 256 * 64 + 2304 * 256 * 64
    fcs = 4096 * 512 + 512 * 512 + 512 * 10
    assert forward_flops(build_model("vgg9", (3, 32, 32), 10, 0), (3, 32, 32)) == 2 * (convs + fcs)


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone() -> None:
    before = torch.random.get_rng_state()
    a = build_model("cnn", (1, 28, 28), 10, seed=5)
    b = build_model("cnn", (1, 28, 28), 10, seed=5)
    c = build_model("cnn", (1, 28, 28), 10, seed=6)
    assert torch.equal(torch.random.get_rng_state(), before)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)
    # PyTorch's default Linear init: bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in 64
    assert float(a[-1].bias.detach().abs().max()) <= 1 / 8


def test_pool_before_relu_is_the_same_function() -> None:
    # The models apply max-pool before ReLU; check against the textbook order on random input.
    from torch import nn

    model = build_model("vgg9", (3, 32, 32), 10, seed=1)
    textbook, k = [], 0
    layers = list(model)
    while k < len(layers):
        if isinstance(layers[k], nn.MaxPool2d) and isinstance(layers[k + 1], nn.ReLU):
            textbook += [layers[k + 1], layers[k]]
            k += 2
        else:
            textbook.append(layers[k])
            k += 1
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), nn.Sequential(*textbook)(x))
