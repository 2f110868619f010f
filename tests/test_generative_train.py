"""Generator training: falling losses, checkpoints that round-trip, resumption that equals
an uninterrupted run, the public split as the only training data, and helpful misses."""

import numpy as np
import pytest
import torch

from simfl.errors import DataNotFound, SimflError
from simfl.generative.checkpoint import checkpoint_stem, load_checkpoint
from simfl.generative.train import (TrainedGenerator, load_generator, public_data, scenario_checkpoint,
                                    train_on_arrays)
from simfl.scenario import load_scenario

SCENARIO = "tests/data/generator-scenario.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_images(n=300, side=12, seed=0):
    """Three classes a generator can learn: dark, bright, left half bright (uint8, 12x12)."""
    rs = np.random.default_rng(seed)
    labels = rs.integers(0, 3, n)
    x = np.zeros((n, 1, side, side))
    x[labels == 1] = 1.0
    x[labels == 2, :, :, : side // 2] = 1.0
    return np.clip(x * 200 + rs.normal(0, 20, x.shape) + 20, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    images, labels = toy_images()
    root = tmp_path_factory.mktemp("gen")
    return {kind: train_on_arrays(kind, "tiny", images, labels, 3, root / f"{kind}.pt", seed=1, progress=None)
            for kind in ("diffusion", "gan")}


def test_tiny_diffusion_loss_falls(trained):
    history = load_checkpoint(trained["diffusion"])["run"]["history"]
    losses = [loss for _step, loss, _s in history]
    assert len(losses) == 3  # logged every 10 of 30 steps
    assert losses[0] < 1.0  # the zero predictor's loss is 1
    assert losses[-1] < 0.6 * losses[0]


def test_tiny_gan_discriminator_loss_falls(trained):
    # hinge loss of D: 2 when it cannot tell real from fake, falling as it learns to
    history = load_checkpoint(trained["gan"])["run"]["history"]
    losses = [loss for _step, loss, _s in history]
    assert losses[0] == pytest.approx(2.0, abs=0.3)
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("kind", ["diffusion", "gan"])
def test_checkpoint_round_trips_to_identical_samples(trained, kind):
    a = TrainedGenerator.from_path(trained[kind], guidance=1.0, steps=5)
    b = TrainedGenerator.from_path(trained[kind], guidance=1.0, steps=5)
    labels = np.array([0, 1, 2, 2, 1])
    sa, sb = a.sample(labels, seed=4), b.sample(labels, seed=4)
    assert sa.dtype == np.uint8 and sa.shape == (5, 1, 12, 12)  # back at the data's resolution
    assert np.array_equal(sa, sb)
    assert not np.array_equal(sa, a.sample(labels, seed=5))


@pytest.mark.parametrize("kind", ["diffusion", "gan"])
def test_resumed_training_equals_uninterrupted_training(tmp_path, kind):
    images, labels = toy_images(seed=1)
    whole = train_on_arrays(kind, "tiny", images, labels, 3, tmp_path / "whole.pt", seed=7, progress=None, steps=20)
    part = tmp_path / "part.pt"
    train_on_arrays(kind, "tiny", images, labels, 3, part, seed=7, progress=None, steps=20, stop_after=7)
    assert load_checkpoint(part)["run"]["step"] == 7
    train_on_arrays(kind, "tiny", images, labels, 3, part, seed=7, progress=None, steps=20)
    a, b = load_checkpoint(whole)["run"], load_checkpoint(part)["run"]
    assert b["step"] == 20
    for key in ("model", "ema") + (("disc",) if kind == "gan" else ()):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resuming"
    assert torch.equal(a["rng"], b["rng"])


def test_a_finished_checkpoint_is_not_trained_again(trained):
    images, labels = toy_images()
    before = load_checkpoint(trained["gan"])["run"]["model"]
    train_on_arrays("gan", "tiny", images, labels, 3, trained["gan"], seed=1, progress=None)
    after = load_checkpoint(trained["gan"])["run"]["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resuming_with_another_configuration_is_refused(trained):
    images, labels = toy_images()
    with pytest.raises(SimflError, match="different generator"):
        train_on_arrays("diffusion", "tiny", images, labels, 3, trained["gan"], seed=1, progress=None)


def test_bad_training_data_is_a_clear_error(tmp_path):
    images, labels = toy_images(n=10)
    with pytest.raises(SimflError, match="uint8"):
        train_on_arrays("gan", "tiny", images.astype(np.float32), labels, 3, tmp_path / "x.pt", seed=1)
    with pytest.raises(SimflError, match="labels must lie in 0..1"):
        train_on_arrays("gan", "tiny", images, labels, 2, tmp_path / "x.pt", seed=1)


def test_checkpoint_names_key_kind_config_dataset_public_size_and_seed(tmp_path):
    base = load_scenario(SCENARIO, overrides=[f"generator.cache_dir={tmp_path}"])
    assert scenario_checkpoint("gan", base).name == "gan-default-fashion-mnist-pub10000-seed1.pt"
    assert checkpoint_stem("diffusion", "tiny", "mnist", 500, 3) == "diffusion-tiny-mnist-pub500-seed3"
    variants = [base, load_scenario(SCENARIO, overrides=[f"generator.cache_dir={tmp_path}"], seed=2),
                load_scenario(SCENARIO, overrides=[f"generator.cache_dir={tmp_path}", "task.public_samples=500"]),
                load_scenario(SCENARIO, overrides=[f"generator.cache_dir={tmp_path}", "generator.config=tiny"])]
    names = {scenario_checkpoint("diffusion", s).name for s in variants}
    assert len(names) == 4
    assert scenario_checkpoint("diffusion", base).parent == tmp_path / "generators"


def test_missing_generator_names_the_training_command(tmp_path):
    scenario = load_scenario(SCENARIO, overrides=["generator.config=tiny"])
    with pytest.raises(DataNotFound) as info:
        load_generator("gan", scenario, cache_dir=tmp_path)
    message = str(info.value)
    assert "simfl generator train --kind gan tests/data/generator-scenario.yaml --seed 1" in message
    assert "--set generator.config=tiny" in message and f"--cache-dir {tmp_path}" in message


def test_partly_trained_generator_says_resume(tmp_path):
    scenario = load_scenario(SCENARIO, overrides=["generator.config=tiny", "task.public_samples=60"])
    path = scenario_checkpoint("gan", scenario, tmp_path)
    images, labels = toy_images(n=60, side=28)
    train_on_arrays("gan", "tiny", images, labels, 10, path, seed=1, progress=None, stop_after=3)
    with pytest.raises(DataNotFound, match="partly trained .step 3 of 30"):
        load_generator("gan", scenario, cache_dir=tmp_path)


def test_generators_train_on_the_public_split_only():
    from simfl.learning.data import load_dataset, public_private_split
    from simfl.world import rng

    scenario = load_scenario(SCENARIO, overrides=["task.public_samples=300"])
    images, labels, n_classes, names = public_data(scenario)
    data = load_dataset("fashion-mnist")
    private, public = public_private_split(data.train_labels, 300, rng(1, "partition"))
    assert len(images) == 300 and n_classes == 10 and names[0] == "T-shirt/top"
    assert np.array_equal(images, data.train_images[public])
    assert np.array_equal(labels, data.train_labels[public])
    assert not set(public.tolist()) & set(private.tolist())
