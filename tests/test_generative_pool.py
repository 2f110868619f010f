"""Step S2, data synthesis: requested counts per device and class, a pool that is reused
(only the shortfall is generated), downlink bytes, and clear errors for bad requests."""

import numpy as np
import pytest

from simfl.errors import SimflError
from simfl.generative.pool import CHUNK, SynthesisService
from simfl.generative.train import TrainedGenerator, train_on_arrays


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    rs = np.random.default_rng(0)
    labels = rs.integers(0, 3, 120)
    images = (rs.random((120, 1, 12, 12)) * 60 + labels[:, None, None, None] * 80).astype(np.uint8)
    root = tmp_path_factory.mktemp("pool-gen")
    out = {}
    for kind in ("gan", "diffusion"):
        path = train_on_arrays(kind, "tiny", images, labels, 3, root / f"{kind}.pt", seed=2, progress=None, steps=10)
        out[kind] = TrainedGenerator.from_path(path, guidance=1.0, steps=3)
    return out


def test_synthesize_returns_the_requested_counts_per_device_and_class(generators, tmp_path):
    service = SynthesisService(generators["gan"], tmp_path, progress=None)
    requests = np.array([[2, 0, 1], [0, 3, 0], [0, 0, 0], [1, 1, 1]])
    out = service.synthesize(requests)
    assert len(out) == 4
    for (images, labels), row in zip(out, requests):
        assert images.dtype == np.uint8 and labels.dtype == np.int64
        assert images.shape == (row.sum(), 1, 12, 12)
        assert np.array_equal(np.bincount(labels, minlength=3), row)
    # devices get consecutive, disjoint slices of each class's pool
    pool0 = service.take(0, 3)
    assert np.array_equal(out[0][0][:2], pool0[:2])
    assert np.array_equal(out[3][0][:1], pool0[2:3])
    assert service.stats.generated_images == 3 * CHUNK  # one chunk per class
    assert service.stats.served_images == 9


def test_the_pool_is_reused_and_only_the_shortfall_is_generated(generators, tmp_path):
    requests = np.array([[5, 1, 0], [0, 2, 7]])
    first = SynthesisService(generators["gan"], tmp_path, progress=None)
    a = first.synthesize(requests)
    assert first.stats.generated_images == 3 * CHUNK  # one chunk for each class
    second = SynthesisService(generators["gan"], tmp_path, progress=None)
    b = second.synthesize(requests)
    assert second.stats.generated_images == 0
    for (ia, la), (ib, lb) in zip(a, b):
        assert np.array_equal(ia, ib) and np.array_equal(la, lb)
    # a larger request generates exactly the missing chunks of that class, keeping the prefix
    more = second.server_set(np.array([CHUNK + 3, 0, 0]))
    assert second.stats.generated_images == CHUNK
    assert np.array_equal(more[0][:5], a[0][0][:5])
    assert second.pool_size(0) == 2 * CHUNK


def test_pool_content_does_not_depend_on_request_order(generators, tmp_path):
    one = SynthesisService(generators["gan"], tmp_path / "one", progress=None)
    two = SynthesisService(generators["gan"], tmp_path / "two", progress=None)
    one.server_set(np.array([0, CHUNK + 1, 0]))
    two.server_set(np.array([0, 1, 0]))
    two.server_set(np.array([0, CHUNK + 1, 0]))
    assert np.array_equal(one.take(1, CHUNK + 1), two.take(1, CHUNK + 1))


def test_server_set_hands_out_the_first_images_of_each_class(generators, tmp_path):
    service = SynthesisService(generators["diffusion"], tmp_path, progress=None)
    images, labels = service.server_set(np.array([4, 0, 2]))
    assert images.shape == (6, 1, 12, 12)
    assert labels.tolist() == [0, 0, 0, 0, 2, 2]
    per_device = service.synthesize(np.array([[4, 0, 2]]))
    assert np.array_equal(per_device[0][0], images)
    # the diffusion pool is kept apart per sampler setting
    assert service.dir.name == "ddim3-w1"


def test_downlink_bytes_are_images_times_uint8_bytes_per_image(generators, tmp_path):
    service = SynthesisService(generators["gan"], tmp_path, progress=None)
    assert service.bytes_per_image == 1 * 12 * 12
    assert service.downlink_bytes(np.array([[2, 0, 1], [0, 0, 0], [10, 10, 10]])).tolist() == [432, 0, 4320]


def test_bad_requests_are_clear_errors(generators, tmp_path):
    service = SynthesisService(generators["gan"], tmp_path, progress=None)
    with pytest.raises(SimflError, match=r"shape \(I, C\) with C = 3 classes.*got shape \(2, 4\)"):
        service.synthesize(np.zeros((2, 4), dtype=int))
    with pytest.raises(SimflError, match="got shape \\(3,\\)"):
        service.synthesize(np.zeros(3, dtype=int))
    with pytest.raises(SimflError, match="negative count -1 at device 1, class 2"):
        service.synthesize(np.array([[0, 0, 0], [1, 0, -1]]))
    with pytest.raises(SimflError, match="whole numbers"):
        service.synthesize(np.array([[0.5, 0, 0]]))
    with pytest.raises(SimflError, match="negative count -2 at class 0"):
        service.server_set(np.array([-2, 0, 0]))
    with pytest.raises(SimflError, match="unknown class 3"):
        service.take(3, 1)
