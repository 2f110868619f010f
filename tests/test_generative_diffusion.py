"""Diffusion: schedule and forward process against their closed forms (Ho et al. 2020),
classifier-free guidance (Ho & Salimans 2021), samplers."""

import math

import numpy as np
import pytest
import torch

from simfl.generative import diffusion as dm
from simfl.generative.unet import UNet, UNetConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_linear_schedule_is_ho_et_al_rescaled_to_300_steps():
    s = dm.linear_schedule(300)
    # 1e-4 and 0.02 are Ho et al.'s end points for T = 1000; times 1000/300
    assert s.betas[0].item() == pytest.approx(1e-4 * 1000 / 300)
    assert s.betas[-1].item() == pytest.approx(0.02 * 1000 / 300)
    assert s.n_steps == 300


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_alpha_bar_is_the_product_of_one_minus_beta(kind):
    s = dm.make_schedule(kind, 50)
    betas = s.betas.tolist()
    for t in (0, 1, 7, 49):
        product = 1.0
        for b in betas[: t + 1]:
            product *= 1.0 - b
        assert s.alpha_bar[t].item() == pytest.approx(product, rel=1e-12)
    assert s.alpha_bar_prev[0].item() == 1.0
    assert s.alpha_bar_prev[5].item() == pytest.approx(s.alpha_bar[4].item(), rel=1e-12)


def test_cosine_alpha_bar_matches_nichol_dhariwal_closed_form():
    T, s_off = 300, 0.008
    s = dm.cosine_schedule(T)

    def f(t):
        return math.cos((t / T + s_off) / (1 + s_off) * math.pi / 2) ** 2

    for t in (0, 10, 150, 280):  # alpha_bar[t] is the value after step t + 1
        assert s.alpha_bar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert s.alpha_bar[-1].item() < 1e-4  # the chain ends in (almost) pure noise


def test_posterior_variance_is_eq7_of_ho_et_al():
    s = dm.linear_schedule(100)
    t = 10
    b, ab, ab_prev = s.betas[t].item(), s.alpha_bar[t].item(), s.alpha_bar[t - 1].item()
    assert s.posterior_variance[t].item() == pytest.approx(b * (1 - ab_prev) / (1 - ab), rel=1e-12)
    assert s.posterior_variance[0].item() == 0.0


def test_q_sample_has_the_closed_form_mean_and_variance():
    s = dm.cosine_schedule(300)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.linspace(-1, 1, 16).reshape(1, 1, 4, 4)
    n, t_value = 20000, 120
    t = torch.full((n,), t_value)
    xt = dm.q_sample(s, x0.expand(n, 1, 4, 4), t, torch.randn(n, 1, 4, 4, generator=gen))
    ab = s.alpha_bar[t_value].item()
    mean, var = dm.q_mean_variance(s, x0, torch.tensor([t_value]))
    assert torch.allclose(mean, math.sqrt(ab) * x0, atol=1e-6)
    assert torch.allclose(var, torch.full_like(x0, 1 - ab), atol=1e-6)
    # the empirical moments of 20,000 draws agree with them (standard error ~0.007)
    assert torch.allclose(xt.mean(0, keepdim=True), mean, atol=0.03)
    assert torch.allclose(xt.var(0, keepdim=True), var, atol=0.03)
    # and with zero noise q_sample is exactly the mean
    zero = dm.q_sample(s, x0, torch.tensor([t_value]), torch.zeros_like(x0))
    assert torch.allclose(zero, mean)


def _random_unet(n_classes=3):
    torch.manual_seed(0)
    net = UNet(UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4), n_classes)
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)  # the zero init would make eps = 0 for every label
    return net.eval()


def test_guidance_weight_zero_equals_unguided_conditional_sampling():
    net = _random_unet()
    s = dm.cosine_schedule(20)
    y = torch.tensor([0, 1, 2, 1])
    for steps in (20, 5):  # DDPM (all steps) and DDIM
        unguided = dm.sample(net, s, y, (1, 8, 8), 3, None, steps, torch.Generator().manual_seed(3))
        w0 = dm.sample(net, s, y, (1, 8, 8), 3, 0.0, steps, torch.Generator().manual_seed(3))
        torch.testing.assert_close(w0, unguided, atol=1e-5, rtol=0)
        w2 = dm.sample(net, s, y, (1, 8, 8), 3, 2.0, steps, torch.Generator().manual_seed(3))
        assert (w2 - unguided).abs().max() > 1e-2  # guidance does change the samples


def test_guided_eps_is_one_plus_w_cond_minus_w_uncond():
    net = _random_unet()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([4, 9, 15])
    y = torch.tensor([2, 0, 1])
    with torch.no_grad():
        cond, uncond = net(x, t, y), net(x, t, torch.full_like(y, 3))
        got = dm.guided_eps(net, y, 3, 1.5)(x, t)
    torch.testing.assert_close(got, 2.5 * cond - 1.5 * uncond, atol=1e-5, rtol=0)


def test_ddim_timesteps_descend_from_t_minus_1_to_0():
    assert dm.ddim_timesteps(300, 5) == [299, 224, 150, 75, 0]
    assert dm.ddim_timesteps(10, 50) == list(range(9, -1, -1))


def test_samplers_are_deterministic_in_the_generator_seed():
    net = _random_unet()
    s = dm.cosine_schedule(20)
    y = torch.tensor([0, 2])
    a = dm.sample(net, s, y, (1, 8, 8), 3, 1.0, 4, torch.Generator().manual_seed(9))
    b = dm.sample(net, s, y, (1, 8, 8), 3, 1.0, 4, torch.Generator().manual_seed(9))
    c = dm.sample(net, s, y, (1, 8, 8), 3, 1.0, 4, torch.Generator().manual_seed(10))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.abs().max() <= 1.0


def test_training_loss_is_one_for_the_zero_predictor_at_start():
    # the UNet's last conv starts at zero: eps_theta = 0, so the loss is E||eps||^2 = 1
    torch.manual_seed(0)
    net = UNet(UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4), 3)
    x0 = torch.zeros(512, 1, 8, 8)
    loss = dm.diffusion_loss(net, dm.cosine_schedule(50), x0, torch.zeros(512, dtype=torch.long), 3, 0.2,
                             torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(1.0, abs=0.01)
    assert np.isfinite(loss.item())
