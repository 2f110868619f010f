"""Federated training: FedAvg by hand, loss goes down, stragglers, SST, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from simfl.learning.data import ImageDataset, load_dataset
from simfl.policies.semi import Semi
from simfl.learning.protocol import LocalUpdate, RoundMetrics, Trainer
from simfl.learning.trainer import LabelledImages, TorchTrainer, intra_op_threads
from simfl.scenario import Task

# float32: these tests compare with direct float32 passes (auto would be bfloat16 on a CPU with bf16 units)
TASK = Task(model="cnn", learning_rate=0.05, batch_size=32, local_epochs=1, eval_samples=200, precision="float32")


@pytest.fixture(scope="module")
def fmnist() -> ImageDataset:
    try:
        return load_dataset("fashion-mnist")
    except Exception as exc:  # noqa: BLE001 - any loader failure means the data is absent
        pytest.skip(f"Fashion-MNIST unavailable: {exc}")


def _parts(n_devices: int, per_device: int) -> list[np.ndarray]:
    return [np.arange(k * per_device, (k + 1) * per_device) for k in range(n_devices)]


def _synthetic(ds: ImageDataset, n: int) -> LabelledImages:
    # test images stand in for generated ones: uint8 (n, C, H, W) with labels
    return LabelledImages(np.array(ds.test_images[-n:]), np.array(ds.test_labels[-n:]))


def _pseudo_labels(confidence: float):
    """SEMI's training_set hook with another confidence threshold."""
    semi = Semi()
    semi.confidence = confidence
    return semi.training_set


def test_fedavg_hand_computed(fmnist: ImageDataset) -> None:
    trainer = TorchTrainer(TASK, fmnist, _parts(1, 8), seed=0)
    shapes = [g.shape for g in trainer._global]
    a = [torch.full(s, 1.0) for s in shapes]
    b = [torch.full(s, 5.0) for s in shapes]
    # weights 1 and 3: (1*1 + 3*5) / 4 = 4 in every entry
    out = trainer.fedavg([LocalUpdate(0, 0, 1, a), LocalUpdate(1, 0, 3, b)])
    assert all(torch.equal(t, torch.full(t.shape, 4.0)) for t in out)
    # explicit weights replace the sample counts: (3*1 + 1*5) / 4 = 2
    out = trainer.fedavg([LocalUpdate(0, 0, 1, a), LocalUpdate(1, 0, 3, b)], weights=[3, 1])
    assert all(torch.equal(t, torch.full(t.shape, 2.0)) for t in out)


def test_fedavg_rejects_bad_weights(fmnist: ImageDataset) -> None:
    trainer = TorchTrainer(TASK, fmnist, _parts(1, 8), seed=0)
    update = LocalUpdate(0, 0, 1, [torch.zeros_like(g) for g in trainer._global])
    assert trainer.fedavg([update], [0.0]) is None  # nothing to average: the caller keeps the model
    with pytest.raises(ValueError):
        trainer.fedavg([update], [1.0, 2.0])


def test_torch_trainer_satisfies_the_engine_protocol(fmnist: ImageDataset) -> None:
    trainer = TorchTrainer(TASK, fmnist, _parts(1, 32), seed=0)
    assert isinstance(trainer, Trainer)
    metrics = trainer.train_round(0, np.array([0]))
    assert isinstance(metrics, RoundMetrics) and 0.0 <= metrics.accuracy <= 1.0


def test_one_round_lowers_the_test_loss(fmnist: ImageDataset) -> None:
    task = replace(TASK, local_epochs=2)
    trainer = TorchTrainer(task, fmnist, _parts(2, 256), seed=1)
    before = trainer.evaluate()
    after = trainer.train_round(0, np.array([0, 1]))
    # an untrained 10-class model sits near ln 10 = 2.30 nats
    assert before.loss == pytest.approx(np.log(10), abs=0.15)
    assert after.loss < before.loss - 0.2
    assert after.accuracy > before.accuracy


def test_aggregate_is_the_size_weighted_mean_of_the_participants(fmnist: ImageDataset) -> None:
    # Seeds are per (round, device), so device k trains identically whoever else takes part:
    # the two-device round must equal (S4) the weighted mean of the one-device rounds.
    parts = _parts(2, 64)
    synthetic = [None, _synthetic(fmnist, 32)]  # D_mix = 64 and 64 + 32
    models = {}
    for who in ([0], [1], [0, 1]):
        trainer = TorchTrainer(TASK, fmnist, parts, synthetic=synthetic, seed=3)
        trainer.train_round(0, np.array(who))
        models[tuple(who)] = trainer.global_state()
    assert trainer.d_mix.tolist() == [64, 96]
    for name, both in models[(0, 1)].items():
        expected = (64 * models[(0,)][name] + 96 * models[(1,)][name]) / 160
        torch.testing.assert_close(both, expected, rtol=1e-5, atol=1e-6)


def test_stragglers_do_not_count_and_nobody_means_no_change(fmnist: ImageDataset) -> None:
    trainer = TorchTrainer(TASK, fmnist, _parts(3, 32), seed=4)
    start = trainer.global_state()
    metrics = trainer.train_round(0, np.array([], dtype=int))
    for name, value in trainer.global_state().items():
        assert torch.equal(value, start[name])
    assert metrics == trainer.evaluate()
    # device 2's data is irrelevant when only device 0 arrives: poison it and compare
    a = TorchTrainer(TASK, fmnist, _parts(3, 32), seed=4)
    b = TorchTrainer(TASK, fmnist, _parts(2, 32) + [np.arange(40000, 40032)], seed=4)
    assert a.train_round(0, np.array([0])) == b.train_round(0, np.array([0]))


def test_same_seed_same_result_bit_for_bit(fmnist: ImageDataset) -> None:
    runs = []
    for _ in range(2):
        trainer = TorchTrainer(TASK, fmnist, _parts(3, 48), synthetic=[_synthetic(fmnist, 16)], seed=7)
        runs.append([trainer.train_round(r, np.array(p)) for r, p in enumerate(([0, 1, 2], [2, 0], [1]))])
    assert runs[0] == runs[1]  # RoundMetrics equality: accuracy and loss to the last bit
    other = TorchTrainer(TASK, fmnist, _parts(3, 48), synthetic=[_synthetic(fmnist, 16)], seed=8)
    assert other.train_round(0, np.array([0, 1, 2])).loss != runs[0][0].loss


def test_sst_server_update_joins_the_average(fmnist: ImageDataset) -> None:
    server = _synthetic(fmnist, 64)
    trainer = TorchTrainer(TASK, fmnist, _parts(2, 32), server_synthetic=server, seed=5)
    start = trainer.global_state()
    update = trainer.server_update(0)  # no device arrived; the server still trains
    assert update.samples == 64
    trainer.set_global(trainer.fedavg([update]))
    assert any(not torch.equal(v, start[k]) for k, v in trainer.global_state().items())
    with pytest.raises(ValueError, match="server_synthetic"):
        TorchTrainer(TASK, fmnist, _parts(2, 32), seed=5).server_update(0)


def test_bfloat16_precision_trains_and_is_deterministic(fmnist: ImageDataset) -> None:
    results = [TorchTrainer(TASK, fmnist, _parts(2, 64), seed=9, precision="bfloat16").train_round(0, np.array([0, 1]))
               for _ in range(2)]
    assert results[0] == results[1]
    assert results[0].loss < np.log(10)


def test_synthetic_images_of_the_wrong_shape_are_refused(fmnist: ImageDataset) -> None:
    wrong = (np.zeros((4, 1, 14, 14), dtype=np.uint8), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="device 0"):
        TorchTrainer(TASK, fmnist, _parts(1, 8), synthetic=[wrong], seed=0)


def test_worker_processes_do_not_change_the_result(fmnist: ImageDataset) -> None:
    # Clients trained in two forked workers must give the model one process gives:
    # same seeds, same thread count, same summation order.
    states, metrics = [], []
    for workers in (1, 2):
        # eval_samples 4500: three evaluation chunks of EVAL_BATCH (2000), the last one short
        trainer = TorchTrainer(replace(TASK, eval_samples=4500), fmnist, _parts(3, 64),
                               server_synthetic=_synthetic(fmnist, 32), seed=11, threads=1, workers=workers)
        for r in range(2):
            trainer.set_global(trainer.fedavg([*trainer.local_updates(r, np.array([0, 2])), trainer.server_update(r)]))
        metrics.append(trainer.evaluate())
        states.append(trainer.global_state())
        trainer.close()
    assert metrics[0] == metrics[1]
    for name, value in states[0].items():
        assert torch.equal(value, states[1][name])


def test_worker_pool_ends_with_the_trainer(fmnist: ImageDataset) -> None:
    import gc
    import multiprocessing

    trainer = TorchTrainer(TASK, fmnist, _parts(2, 32), seed=0, workers=2)
    trainer.train_round(0, np.array([0, 1]))
    assert len(multiprocessing.active_children()) >= 2
    del trainer
    gc.collect()
    assert multiprocessing.active_children() == []


def test_synthetic_labels_outside_the_classes_are_refused(fmnist: ImageDataset) -> None:
    bad = (np.zeros((2, 1, 28, 28), dtype=np.uint8), np.array([3, 10]))
    with pytest.raises(ValueError, match="classes 0..9"):
        TorchTrainer(TASK, fmnist, _parts(1, 8), synthetic=[bad], seed=0)


def test_evaluate_counts_like_a_direct_pass(fmnist: ImageDataset) -> None:
    task = replace(TASK, eval_samples=4500)  # three chunks, spread over two workers
    trainer = TorchTrainer(task, fmnist, _parts(2, 64), seed=12, workers=2)
    metrics = trainer.train_round(0, np.array([0, 1]))
    model = trainer.global_model()
    with torch.no_grad():
        logits = model(trainer.to_tensor(np.array(fmnist.test_images[:4500])))
    y = torch.from_numpy(np.array(fmnist.test_labels[:4500]))
    assert metrics.accuracy == pytest.approx(float((logits.argmax(1) == y).float().mean()), abs=1 / 4500)
    assert metrics.loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-4)


def test_trainer_leaves_the_process_thread_count_alone(fmnist: ImageDataset) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # differs from the trainer's 1, so a leak would show
    try:
        trainer = TorchTrainer(TASK, fmnist, _parts(1, 32), seed=0, threads=1, workers=1)
        trainer.train_round(0, np.array([0]))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_pseudo_labels_are_the_global_models_confident_predictions(fmnist: ImageDataset) -> None:
    # After a round of training the model is confident on some images and not others: the
    # kept set must be exactly those whose softmax maximum reaches the threshold, labelled
    # by the argmax of a forward pass we make here ourselves.
    synthetic = _synthetic(fmnist, 200)
    trainer = TorchTrainer(replace(TASK, local_epochs=3), fmnist, _parts(1, 512), synthetic=[synthetic], seed=2,
                           training_set=_pseudo_labels(0.8), workers=1)
    trainer.train_round(0, np.array([0]))
    model = trainer.global_model()
    model.eval()
    with torch.no_grad(), intra_op_threads(trainer.threads):
        probs = torch.softmax(model(trainer.to_tensor(synthetic.images)), dim=1)
    confidence, predicted = probs.max(dim=1)
    expected = confidence >= 0.8
    assert 0 < int(expected.sum()) < 200, "the check needs both kept and dropped samples"
    x, y = trainer.training_data(0)
    assert torch.equal(y[:512], torch.from_numpy(fmnist.train_labels[:512].astype(np.int64)))
    assert y[512:].tolist() == predicted[expected].tolist()
    assert torch.equal(x[512:], trainer.to_tensor(synthetic.images)[expected])


def test_pseudo_labelling_never_reads_the_generator_labels(fmnist: ImageDataset) -> None:
    synthetic = _synthetic(fmnist, 64)
    wrong = LabelledImages(synthetic.images, (synthetic.labels + 1) % 10)
    states = []
    for data in (synthetic, wrong):
        trainer = TorchTrainer(TASK, fmnist, _parts(2, 128), synthetic=[data, data], seed=4,
                               training_set=_pseudo_labels(0.5))
        for r in range(2):
            trainer.train_round(r, np.array([0, 1]))
        states.append(trainer.global_state())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_with_no_confident_sample_a_device_trains_on_its_local_data_alone(fmnist: ImageDataset) -> None:
    # An untrained model never reaches 0.99 confidence on 10 classes, so one round with
    # pseudo-labelling is one round without the synthetic set, bit for bit.
    alone = TorchTrainer(TASK, fmnist, _parts(1, 128), seed=5)
    alone.train_round(0, np.array([0]))
    semi = TorchTrainer(TASK, fmnist, _parts(1, 128), synthetic=[_synthetic(fmnist, 64)], seed=5,
                        training_set=_pseudo_labels(0.99))
    assert len(semi.training_data(0)[1]) == 128
    semi.train_round(0, np.array([0]))
    a, b = alone.global_state(), semi.global_state()
    assert all(torch.equal(a[k], b[k]) for k in a)


class _AskedFor:
    """A lazy synthetic source over fixed sets that records which devices were asked."""

    def __init__(self, sets: list[LabelledImages]) -> None:
        self.sets, self.asked = sets, []

    def __len__(self) -> int:
        return len(self.sets)

    def counts(self) -> np.ndarray:
        return np.array([len(s) for s in self.sets])

    def __getitem__(self, i: int) -> LabelledImages:
        self.asked.append(i)
        return self.sets[i]


def test_a_lazy_synthetic_source_trains_like_the_sets_and_is_asked_only_for_trainers(fmnist: ImageDataset) -> None:
    sets = [_synthetic(fmnist, 16 + 8 * i) for i in range(4)]
    for workers in (1, 2):
        eager = TorchTrainer(TASK, fmnist, _parts(4, 32), synthetic=sets, seed=3, workers=workers)
        source = _AskedFor(sets)
        lazy = TorchTrainer(TASK, fmnist, _parts(4, 32), synthetic=source, seed=3, workers=workers)
        assert lazy.d_mix.tolist() == eager.d_mix.tolist() == [48, 56, 64, 72]
        assert source.asked == []  # the sample counts come from counts(), nothing is made
        for r, members in enumerate(([1, 3], [3], [0, 3])):
            eager.train_round(r, np.array(members))
            lazy.train_round(r, np.array(members))
        # each trainer made once, in this process (also with forked workers), in job order:
        # a source that hands out its data in ask order gets the same order either way
        assert source.asked == [1, 3, 0]
        for name, value in eager.global_state().items():
            assert torch.equal(value, lazy.global_state()[name])
        eager.close()
        lazy.close()


def test_a_worker_keeps_a_lazily_made_set_only_for_its_job(fmnist: ImageDataset) -> None:
    # the parent sends the set with every job of that device (above), so the worker's copy
    # would only be memory that grows with the run
    from simfl.learning import workers

    sets = [_synthetic(fmnist, 16 + 8 * i) for i in range(2)]
    trainer = TorchTrainer(TASK, fmnist, _parts(2, 32), synthetic=_AskedFor(sets), seed=3, workers=1)
    base = [p.detach().numpy().copy() for p in trainer.global_params()]
    workers._WORKER = trainer  # train_job as a forked worker runs it, in this process
    try:
        params, loss, _ = workers.train_job((0, 1, 0, base, None, sets[1]))
    finally:
        workers._WORKER = None
    assert 1 not in trainer._synthetic and np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(params, base))  # it did train on the set


# ---------------------------------------------------------------- task.device


def test_cpu_and_auto_train_as_before_and_a_compact_partition_as_a_list(fmnist: ImageDataset) -> None:
    """task.device: cpu (the default) and auto on a machine without CUDA give the same bits
    as a trainer that names no device; the partition as LocalData as a list of arrays."""
    from simfl.learning.partition import LocalData

    def states(task: Task, parts: object) -> list[dict[str, torch.Tensor]]:
        trainer = TorchTrainer(task, fmnist, parts, synthetic=[_synthetic(fmnist, 16)], seed=7, workers=1)
        out = []
        for r, p in enumerate(([0, 1, 2], [2, 0])):
            trainer.train_round(r, np.array(p))
            out.append(trainer.global_state())
        assert all(t.device.type == "cpu" for t in trainer.global_params())
        return out

    before = states(TASK, _parts(3, 48))
    for task, parts in ((replace(TASK, device="cpu"), _parts(3, 48)),
                        (replace(TASK, device="auto"), LocalData.of(_parts(3, 48)))):
        if task.device == "auto" and torch.cuda.is_available():
            continue  # auto is cuda there: other bits
        after = states(task, parts)
        assert all(torch.equal(a[k], b[k]) for a, b in zip(before, after) for k in a)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_cuda_device_is_refused_naming_task_device(fmnist: ImageDataset) -> None:
    from simfl.errors import ScenarioError
    from simfl.learning.trainer import training_device

    with pytest.raises(ScenarioError, match=r"^x\.yaml: task\.device: cuda, but PyTorch sees no CUDA device") as info:
        training_device("cuda", "x.yaml")
    assert "Set task.device to cpu, or to auto" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ScenarioError, match="task.device: cuda"):
        TorchTrainer(replace(TASK, device="cuda"), fmnist, _parts(1, 8), seed=0)
    assert training_device("auto") == torch.device("cpu") == training_device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_run_on_cuda_without_one_is_refused_when_it_starts_before_it_writes(fmnist: ImageDataset, tmp_path) -> None:
    from conftest import scenario_dict

    from simfl.errors import ScenarioError
    from simfl.experiment import prepare, run_policy
    from simfl.registry import create
    from simfl.scenario import scenario_from_dict

    setup = prepare(scenario_from_dict(scenario_dict(task={"device": "cuda"}), "x.yaml"))  # loads: validation cannot know
    with pytest.raises(ScenarioError, match="x.yaml: task.device: cuda"):
        run_policy(setup, create("tfl"), tmp_path / "out", progress=None)
    assert not (tmp_path / "out").exists()
