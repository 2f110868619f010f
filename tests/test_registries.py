"""Data sets and models are found by name in one registry each: registering one decorated
function is all it takes for a scenario to accept the name and for simfl to use it."""

from __future__ import annotations

import numpy as np
import pytest

from simfl.errors import ScenarioError
from simfl.learning.data import DATASETS, ImageDataset, dataset, load_dataset
from simfl.learning.models import MODELS, build_model, model
from simfl.scenario import scenario_from_dict

from conftest import scenario_dict


@pytest.fixture
def toy_dataset():
    @dataset("toy-16", image_side=16, train_size=400, test_size=100)
    def load(data_dir):
        rng = np.random.default_rng(0)
        return ImageDataset("toy-16", rng.integers(0, 256, (400, 1, 16, 16), dtype=np.uint8), np.arange(400) % 4,
                            rng.integers(0, 256, (100, 1, 16, 16), dtype=np.uint8), np.arange(100) % 4,
                            ("a", "b", "c", "d"))
    yield "toy-16"
    del DATASETS["toy-16"]


@pytest.fixture
def tiny_model():
    @model("linear", side_divisor=1)
    def linear(in_channels, n_classes, image_size):
        from torch import nn

        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size * image_size, n_classes))
    yield "linear"
    del MODELS["linear"]


def test_a_registered_data_set_and_model_are_a_scenarios_to_use(toy_dataset, tiny_model):
    raw = scenario_dict(task={"dataset": toy_dataset, "model": tiny_model, "public_samples": 100,
                              "samples_per_device": 50})
    scenario = scenario_from_dict(raw)
    assert (scenario.task.dataset, scenario.task.model) == ("toy-16", "linear")
    data = load_dataset(toy_dataset)
    net = build_model(tiny_model, data.image_shape, data.n_classes, seed=0)
    assert sum(p.numel() for p in net.parameters()) == 16 * 16 * 4 + 4
    # what the registry says about the data is checked before anything is loaded
    with pytest.raises(ScenarioError, match=r"task.eval_samples: must be at most the 100 test images of toy-16"):
        scenario_from_dict(scenario_dict(task={**raw["task"], "eval_samples": 101}))
    # a name is registered once
    with pytest.raises(ValueError, match="registered twice"):
        dataset(toy_dataset, image_side=16)(lambda d: None)


def test_a_models_side_divisor_is_checked_against_the_data(tiny_model):
    @dataset("toy-10", image_side=10)
    def load(data_dir):  # never called: validation needs only the registry
        raise AssertionError
    try:
        with pytest.raises(ScenarioError, match=r"task.model: cnn needs an image side divisible by 4, but toy-10 "
                                                r"images are 10x10; use linear with toy-10"):
            scenario_from_dict(scenario_dict(task={"dataset": "toy-10", "model": "cnn"}))
    finally:
        del DATASETS["toy-10"]


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(ScenarioError, match=r"task.dataset: must be one of fashion-mnist, mnist, cifar10, gtsrb"):
        scenario_from_dict(scenario_dict(task={"dataset": "imagenet"}))
    with pytest.raises(ScenarioError, match=r"task.model: must be one of cnn, vgg9"):
        scenario_from_dict(scenario_dict(task={"model": "resnet"}))
