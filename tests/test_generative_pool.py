"""Step S2, data synthesis: requested counts per device and class, a pool that is reused
(only the shortfall is generated), downlink bytes, and clear errors for bad requests."""

import numpy as np
import pandas as pd
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


def test_generation_reports_counts_rate_and_time_left(generators, tmp_path):
    """Eager: every generated chunk counted against the known total; lazy: against the
    images every device could ask for, said to be an upper bound; nothing already in the
    pool is counted."""
    lines = []
    service = SynthesisService(generators["gan"], tmp_path, progress=lines.append, progress_every_s=0)
    service.synthesize(np.array([[CHUNK + 1, 0, 2]]))  # class 0: two chunks, class 2: one
    assert [line.split(": ", 1)[1].split(" in ")[0] for line in lines] == [
        f"generated {CHUNK} images", f"generated {2 * CHUNK} images", f"generated {3 * CHUNK} images"]
    assert lines[0].endswith(f"{2 * CHUNK} more, ~{lines[0].split('~')[1]}") and lines[-1].endswith("; done")
    assert "s per image" in lines[0]

    lazy_lines = []
    again = SynthesisService(generators["gan"], tmp_path, progress=lazy_lines.append, progress_every_s=0)
    source = again.lazy(np.array([[1, 0, 0], [0, 3 * CHUNK, 0]]))  # class 0 is in the pool already
    source[1]
    assert len(lazy_lines) == 3 and "at most" in lazy_lines[0] and "as devices are first used" in lazy_lines[0]
    assert lazy_lines[-1].endswith("; done")
    quiet = SynthesisService(generators["gan"], tmp_path, progress=None)
    quiet.synthesize(np.array([[CHUNK + 1, 3 * CHUNK, 2]]))  # nothing left to make: no line, no error
    assert quiet.stats.generated_images == 0


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


REQUESTS = np.array([[20, 0, 5], [30, 1, 0], [0, 0, 40], [10, 2, 3]])


def test_a_lazy_request_hands_out_positions_in_first_use_order(generators, tmp_path):
    service = SynthesisService(generators["gan"], tmp_path / "lazy", progress=None)
    lazy = service.lazy(REQUESTS)
    assert len(lazy) == 4 and lazy.counts().tolist() == [25, 31, 40, 15]
    assert service.stats.generated_images == 0  # nothing is made before a device asks
    # device 3 asks first: class 0 positions 0..9, class 1 0..1, class 2 0..2 (chunk 0 of each)
    first = lazy[3]
    assert service.stats.generated_images == 3 * CHUNK
    # device 0 next: class 0 positions 10..29, class 2 3..7, still within chunk 0
    lazy[0]
    assert service.stats.generated_images == 3 * CHUNK
    # then 1 and 2: class 0 up to 59 and class 2 up to 47 reach into chunk 1
    lazy[1], lazy[2]
    assert service.stats.generated_images == 5 * CHUNK
    assert lazy.order == [3, 0, 1, 2]
    assert service.stats.served_images == 15 + 25 + 31 + 40
    # the images are those an eager request in that device order gives, slice for slice
    in_order = SynthesisService(generators["gan"], tmp_path / "eager", progress=None).synthesize(REQUESTS[[3, 0, 1, 2]])
    assert all(np.array_equal(a, b) for a, b in zip(first, in_order[0]))
    for slot, i in enumerate([3, 0, 1, 2]):
        assert all(np.array_equal(a, b) for a, b in zip(lazy[i], in_order[slot]))


def test_a_few_devices_of_many_generate_only_their_own_images(generators, tmp_path):
    service = SynthesisService(generators["gan"], tmp_path, progress=None)
    lazy = service.lazy(np.tile([5, 0, 0], (200, 1)))
    for i in range(0, 200, 20):  # ten devices spread over the request
        assert len(lazy[i][0]) == 5
    # 10 x 5 = 50 images: positions 0..49 of class 0, two chunks, not one chunk per device
    assert service.stats.generated_images == 2 * CHUNK


def test_an_order_handed_out_before_is_restored_by_assign(generators, tmp_path):
    service = SynthesisService(generators["gan"], tmp_path, progress=None)
    lazy = service.lazy(REQUESTS)
    made = {i: lazy[i] for i in (2, 0, 3)}
    again = SynthesisService(generators["gan"], tmp_path, progress=None).lazy(REQUESTS)
    again.assign(lazy.order)
    again.assign([0])  # a device already placed keeps its positions
    assert again.order == [2, 0, 3]
    assert all(np.array_equal(again[i][0], made[i][0]) for i in made)
    with pytest.raises(SimflError, match="no device 4"):
        again.assign([4])


def test_lazy_chunks_and_the_pool_serve_each_other(generators, tmp_path):
    lazy_dir, eager_dir = tmp_path / "lazy", tmp_path / "eager"
    made = SynthesisService(generators["gan"], lazy_dir, progress=None).lazy(REQUESTS)
    wanted = [made[i] for i in range(4)]
    # a later eager request takes the single-chunk files instead of generating again
    again = SynthesisService(generators["gan"], lazy_dir, progress=None)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again.synthesize(REQUESTS), wanted))
    assert again.stats.generated_images == 0
    # and a lazy request on an eagerly filled pool reads the pool
    SynthesisService(generators["gan"], eager_dir, progress=None).synthesize(REQUESTS)
    reader = SynthesisService(generators["gan"], eager_dir, progress=None)
    read = reader.lazy(REQUESTS)
    assert all(np.array_equal(read[i][0], wanted[i][0]) for i in range(4))
    assert reader.stats.generated_images == 0


def test_a_damaged_chunk_file_is_named_and_made_again(generators, tmp_path):
    first = SynthesisService(generators["gan"], tmp_path, progress=None)
    before = first.lazy(REQUESTS)[2]
    (chunk,) = sorted((first.dir / "class_002.chunks").glob("000001-*.npy"))
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF  # one flipped pixel
    chunk.write_bytes(bytes(data))
    lines: list[str] = []
    second = SynthesisService(generators["gan"], tmp_path, progress=lines.append)
    after = second.lazy(REQUESTS)[2]
    assert np.array_equal(before[0], after[0])
    assert second.stats.generated_images == CHUNK
    assert any(str(chunk) in line and "SHA-256" in line for line in lines)


def test_a_run_of_few_participants_trains_on_the_images_an_eagerly_filled_pool_gives(tmp_path):
    """A run whose rounds train one device of three makes its devices' images lazily (in
    single-chunk files); the same run after the pool was filled eagerly, as a Ray driver
    does before its fan-out, reads them from the pool: the rows are the same bytes."""
    import shutil
    from pathlib import Path

    from simfl.experiment import SYNTHESIS_KEY, make_plan, prefill_synthesis, prepare, run_policy
    from simfl.registry import create
    from simfl.runfolder import load_checkpoint
    from simfl.scenario import load_scenario

    tiny = Path(__file__).parent / "data" / "tiny.yaml"
    common = ["generator.kind=gan", "generator.config=tiny", "task.rounds=2", "optimisation.zeta=0.5",
              "task.participants_per_round=1"]
    runs = {}
    for name in ("lazy", "filled"):
        cache = tmp_path / name / "cache"
        if name == "filled":  # the generator the lazy run trained, not one trained again
            shutil.copytree(tmp_path / "lazy" / "cache" / "generators", cache / "generators")
        setup = prepare(load_scenario(tiny, [*common, f"generator.cache_dir={cache}"]))
        policy = create("fimi")
        plan = make_plan(setup, policy)
        assert plan.d_gen.sum() > 0
        if name == "filled":
            prefill_synthesis(setup, policy, plan, progress=None)
        run_policy(setup, policy, tmp_path / name / "out", progress=None, train_workers=1)
        runs[name] = (tmp_path / name / "out" / "rounds.csv").read_bytes()
        chunk_dirs = list((cache / "pools").rglob("*.chunks"))
        assert bool(chunk_dirs) == (name == "lazy")  # the two runs did take the two paths
        # every device records its similarity first, in device order: the images of an
        # eager request, as before positions were handed out on first use
        last = sorted((tmp_path / name / "out" / "checkpoints").glob("fimi-round*.pt"))[-1]
        assert load_checkpoint(last)[SYNTHESIS_KEY] == [0, 1, 2]
    assert runs["lazy"] == runs["filled"]


def test_a_run_of_few_participants_resumes_with_the_images_and_the_plan_it_started_with(tmp_path, monkeypatch):
    """Positions go to devices in the order the run first uses them; a run interrupted
    after two rounds and resumed gives each device the images the uninterrupted run gives
    it (the order is in the checkpoint), so the rows are the same bytes."""
    from pathlib import Path

    import simfl.experiment as experiment
    from simfl.experiment import prepare, run_policy
    from simfl.registry import create
    from simfl.runfolder import load_checkpoint
    from simfl.scenario import load_scenario

    # a similarity sample of one device: the others are first used when they first train
    monkeypatch.setattr(experiment, "SIMILARITY_MAX_DEVICES", 1)
    tiny = Path(__file__).parent / "data" / "tiny.yaml"
    common = ["generator.kind=gan", "generator.config=tiny", "optimisation.zeta=0.5",
              "task.participants_per_round=1", f"generator.cache_dir={tmp_path / 'cache'}"]

    def run(out: str, *extra: str, resume: bool = False) -> None:
        setup = prepare(load_scenario(tiny, [*common, "task.rounds=5", *extra]))
        run_policy(setup, create("fimi"), tmp_path / out, resume=resume, progress=None, train_workers=1)

    run("whole")
    # a time budget that stops the run at the second round's end (rounds end when their
    # participant delivers, so their lengths are the run's own)
    second_end = float(pd.read_csv(tmp_path / "whole" / "rounds.csv")["end_s"].iloc[1])
    run("part", f"task.max_time_s={second_end!r}")
    assert len((tmp_path / "part" / "rounds.csv").read_text().splitlines()) == 1 + 2
    run("part", resume=True)
    order = load_checkpoint(tmp_path / "whole" / "checkpoints" / "fimi-round4.pt")[experiment.SYNTHESIS_KEY]
    assert sorted(order) == [0, 1, 2] and order != [0, 1, 2]  # not device order: the case under test
    for name in ("rounds.csv", "events.csv"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "part" / name).read_bytes(), name
    # FIMI plans for task.rounds rounds (its learning-curve target (12a)): a resume to more
    # rounds would play them on another plan, and is refused with the folder untouched
    before = {name: (tmp_path / "part" / name).read_bytes() for name in ("rounds.csv", "plans/fimi.csv")}
    with pytest.raises(SimflError, match=r"'fimi' plans differently now .*task\.rounds"):
        run("part", "task.rounds=8", resume=True)
    assert all((tmp_path / "part" / name).read_bytes() == data for name, data in before.items())
