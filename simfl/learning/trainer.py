"""Federated training with PyTorch: local SGD on mixed data and FedAvg (Section III-A).

Each round (S3) every participant starts from the global model and runs ``tau`` local
epochs of plain mini-batch SGD (learning rate and batch size from the task, no
momentum: the paper names none) with cross-entropy on its mixed set D_mix = D_loc u D_gen;
the server then (S4) averages the participants' models weighted by
(D_loc + D_gen) / sum over participants, and evaluates the new global model on the
test set. A training-side policy may hand each job a `LocalRule`
(simfl.learning.local_rule: FedProx's proximal term, SCAFFOLD's correction, FedNova's step
count) that changes each step's direction and returns extras with the update; without
one the plain path runs exactly as before.

Speed: local training is where simfl spends its time, so the trainer
- converts every device's mixed set to one normalised float tensor, channels-last, once;
- reuses one model object: the global weights are copied into its parameters, not
  re-created, and the optimiser step is one fused ``_foreach_add_``;
- shuffles by permuting the whole set once per epoch, so batches are contiguous slices;
- evaluates under ``inference_mode`` in large batches;
- trains clients in parallel worker processes (one thread each, by default two
  workers), which needs no synchronisation inside an operation and so keeps both
  cores busy even when other jobs compete for them;
- puts max-pooling before ReLU in its models (the same function, less work).
Measured (benchmarks/train_throughput.py): about 3x a plain per-client PyTorch loop
for the compact CNN in float32, about 6x with ``precision="bfloat16"``.
Batching several clients with ``torch.func.vmap`` was measured slower (2.7x for the
compact CNN on 2 cores), and ``torch.compile`` slower still after a minute of compiling.

Where it computes (``task.device``): ``cpu`` (the default), ``cuda`` or ``auto`` (cuda
where ``torch.cuda.is_available()``, else cpu). The model, its working parameters and
every batch sit on that device; the global model, every ``LocalUpdate``'s params and
extras, and so checkpoints and aggregation, stay on the CPU, where simfl keeps them. On
cuda the clients train one after another in this process (CUDA does not survive a fork,
and the GPU runs each step in parallel). On cpu every tensor op is the one it was before
the setting existed, so CPU results are unchanged bit for bit. The CUDA path is untested
on the machines simfl is built on (they have no GPU) until a GPU run is measured.

Determinism: each (round, client) pair seeds its own ``torch.Generator`` from the
"training" stream and clients are summed in index order, so a run is reproducible bit
for bit on one machine with a fixed thread count, whichever subset of devices
participates, however many workers train them, and across a resume from a checkpoint.
"""

from __future__ import annotations

import math
import multiprocessing
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simfl import numerics
from simfl.errors import ScenarioError
from simfl.learning.data import ImageDataset
from simfl.learning.images import LabelledImages, LazySynthetic, SyntheticData, as_labelled, normalisation
from simfl.learning.local_rule import LocalRule, extras_to_tensors, local_steps
from simfl.learning.models import build_model
from simfl.learning.partition import LocalData
from simfl.learning.protocol import DEVICES, PRECISIONS, SERVER, LocalUpdate, RoundMetrics, TrainingData, TrainJob
from simfl.learning.threads import intra_op_threads
from simfl.learning.workers import eval_job, start_pool, train_job
from simfl.streams import rng

if TYPE_CHECKING:
    from simfl.scenario import Task

EVAL_BATCH = 2000


def training_device(setting: str, source: object = "") -> torch.device:
    """The torch device of ``task.device``: cpu, cuda, or auto (cuda where PyTorch sees a
    CUDA device, else cpu). A scenario is checked where it is loaded, which may not be
    the machine that trains it, so cuda without a CUDA device is refused here, when the
    run starts (`simfl.experiment.run_policy`, and every `TorchTrainer`): a ScenarioError
    naming task.device. `source`: the scenario's file, for the message."""
    if setting not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {setting!r}")
    available = torch.cuda.is_available()
    if setting == "cuda" and not available:
        build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        where = f"{source}: " if str(source) else ""
        raise ScenarioError(
            f"{where}task.device: cuda, but PyTorch sees no CUDA device on this machine "
            f"(torch.cuda.is_available() is False; torch {torch.__version__} is {build}). Whether a GPU is there "
            "is known only where the run trains, so it is checked when the run starts, not when the scenario "
            "is loaded. Set task.device to cpu, or to auto to train on a GPU where there is one and on the CPU "
            "elsewhere.")
    return torch.device("cuda" if setting == "cuda" or (setting == "auto" and available) else "cpu")


class TorchTrainer:
    """Federated averaging over devices with local and synthetic data (implements ``Trainer``).

    Parameters
    ----------
    task
        Model, learning rate, batch size, local epochs tau, eval_samples.
    dataset
        The image set; device indices point into its training split, evaluation uses
        its test split (the first ``task.eval_samples`` images when set).
    device_indices
        One index array per device into ``dataset.train_images`` (D_loc), or a
        `LocalData` holding them all (kept as it is: a million devices' indices in two
        arrays, no per-device object).
    synthetic
        Per device, its synthetic data D_gen (``LabelledImages`` or (images, labels)),
        or None / empty for none. Shorter than ``device_indices`` means none for the rest.
        A ``LazySynthetic`` source instead is asked for a device's data the first time
        the device trains (in this process, which hands them to its workers), so devices
        that never train never have theirs made. The asks come in job order whatever the
        number of workers, so a source may hand out its data in the order it is asked.
    server_synthetic
        A synthetic set held by the server, on which ``server_update`` trains the global
        model (SST, CLSD).
    seed
        Scenario seed; the "training" stream seeds model initialisation and every
        (round, client) shuffle.
    threads
        Intra-op threads of every training and evaluation step (``torch.set_num_threads``
        while the trainer works, restored after; in the workers for good). Results are bit-identical only for the same
        thread count, so it is fixed, not derived from the machine.
    workers
        Processes that train clients concurrently, each with ``threads`` threads (forked
        on first use; they share the data copy-on-write). Results do not depend on it.
        Two single-threaded workers beat one two-threaded process for simfl's models on
        two cores, by far when other jobs share the CPU (benchmarks/train_throughput.py).
    precision
        ``float32`` (default), ``bfloat16`` or ``auto``. bfloat16: convolutions and matrix products run under
        CPU autocast in bfloat16 while weights, the loss and the SGD update stay float32
        (mixed precision). On CPUs with AMX / AVX512-BF16 it trains VGG-9 about 2-3x and
        the compact CNN about 2x faster (measured here; on 8 FL rounds of Fashion-MNIST
        its accuracy stayed within 0.5 points of float32); results differ from float32 in
        the low bits but stay deterministic. ``auto``: bfloat16 in fast numerics on a CPU
        with bfloat16 units, float32 otherwise (`simfl.numerics.precision`). None:
        ``task.precision`` if the task has one.
    device
        ``cpu``, ``cuda`` or ``auto`` (`training_device`); None: ``task.device`` if the
        task has one, else cpu. On cuda ``workers`` is 1.
    training_set
        The policy's ``training_set`` hook: what a device trains on (default: its mixed set).
    local_rule
        The policy's ``local_rule`` hook: for a device, the ``LocalRule`` that changes its
        local SGD (FedProx, SCAFFOLD, FedNova), or None for plain SGD; asked in this
        process for every job, so it sees the policy's state at dispatch.
    """

    def __init__(self, task: Task, dataset: ImageDataset, device_indices: Sequence[np.ndarray] | LocalData,
                 synthetic: Sequence[SyntheticData] | LazySynthetic | None = None,
                 server_synthetic: SyntheticData = None,
                 seed: int = 0, threads: int = 1, workers: int = 2, precision: str | None = None,
                 training_set: Callable[[TrainingData], tuple[torch.Tensor, torch.Tensor]] | None = None,
                 local_rule: Callable[[int], LocalRule | None] | None = None, device: str | None = None) -> None:
        self.device = training_device(device or getattr(task, "device", None) or "cpu")
        precision = precision or getattr(task, "precision", None) or "float32"
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = numerics.precision(precision)  # "auto" resolved for this CPU and numerics mode
        self.training_set_hook = training_set
        self.local_rule_hook = local_rule
        if threads < 1 or workers < 1:
            raise ValueError(f"threads and workers must be >= 1, got {threads} and {workers}")
        # Workers are forked (they inherit the data); where fork does not exist, or on a GPU
        # (CUDA does not survive a fork), train in-process.
        has_fork = "fork" in multiprocessing.get_all_start_methods()
        self.threads, self.workers = int(threads), int(workers) if has_fork and self.device.type == "cpu" else 1
        self._pool: Any = None
        self._finalizer: Any = None
        server_set = as_labelled(server_synthetic, dataset.image_shape, "server", dataset.n_classes)
        self.task = task
        self.dataset = dataset
        self.n_devices = len(device_indices)
        stream = rng(seed, "training")
        init_seed, self._shuffle_root = (int(s) for s in stream.integers(0, 2**63 - 1, size=2))

        mean, std = normalisation(dataset.train_images)
        self._mean = torch.from_numpy(mean).view(1, -1, 1, 1)
        self._std = torch.from_numpy(std).view(1, -1, 1, 1)

        # A device's data are indices into the one shared training split plus its own
        # synthetic images (uint8), made into the model's float input only while it
        # trains: memory grows with the images, not with the devices holding them. Both
        # are kept without a Python object per device (a million devices, most of which
        # never train): the indices in one LocalData, the synthetic sets of the devices
        # that have one in a dict.
        self._indices = LocalData.of(device_indices)
        self.d_loc = self._indices.sizes()
        self._lazy: LazySynthetic | None = None
        self._synthetic: dict[int, LabelledImages] = {}
        self._no_synthetic = as_labelled(None, dataset.image_shape, "", dataset.n_classes)
        if isinstance(synthetic, LazySynthetic):
            counts = np.asarray(synthetic.counts(), dtype=np.int64)
            if counts.shape != (self.n_devices,):
                raise ValueError(f"the lazy synthetic source has {counts.shape} counts for {self.n_devices} devices")
            self._lazy = synthetic
            self.d_mix = self.d_loc + counts
        else:
            gen_counts = np.zeros(self.n_devices, dtype=np.int64)
            empty: set[int] = set()  # ids of sets found empty: a list of one shared empty set is checked once
            for i, data in enumerate(list(synthetic or [])[: self.n_devices]):
                if data is None or id(data) in empty:
                    continue
                made = as_labelled(data, dataset.image_shape, f"device {i}", dataset.n_classes)
                if len(made):
                    self._synthetic[i], gen_counts[i] = made, len(made)
                else:
                    empty.add(id(data))
            self.d_mix = self.d_loc + gen_counts
        self._server_x: torch.Tensor | None = None
        self._server_y: torch.Tensor | None = None
        if len(server_set):
            self._server_x = self._to_tensor(server_set.images)
            self._server_y = torch.from_numpy(server_set.labels).to(self.device)

        n_eval = len(dataset.test_labels) if task.eval_samples is None else min(task.eval_samples, len(dataset.test_labels))
        self._x_test = self._to_tensor(dataset.test_images[:n_eval])
        self._y_test = torch.from_numpy(dataset.test_labels[:n_eval].astype(np.int64)).to(self.device)

        self.model = build_model(task.model, dataset.image_shape, dataset.n_classes, init_seed)
        self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # The global model lives in its own tensors on the CPU, laid out like the parameters.
        self._global = [p.detach().clone() for p in self.model.parameters()]
        self.model = self.model.to(self.device)
        self._params: list[torch.Tensor] = list(self.model.parameters())

    # ------------------------------------------------------------------ public

    def local_updates(self, round_index: int, devices: np.ndarray, version: int = 0) -> list[LocalUpdate]:
        """Local training (S3) of each device in ``devices`` from the global model, in
        increasing index order (so a sum over them is the same however the caller orders
        them); duplicates count once, and a device with no data gives no update."""
        members = np.unique(np.asarray(devices, dtype=np.int64))
        return self.train([TrainJob(client=int(i), key=round_index, base_version=version) for i in members])

    def train(self, jobs: Sequence[TrainJob]) -> list[LocalUpdate]:
        """Each job's client trained from the job's base model (default: the current
        global one), seeded by (key, client), in the jobs' order; a device with no data
        gives no update."""
        for job in jobs:
            if not 0 <= job.client < self.n_devices:
                raise IndexError(f"devices must be indices in [0, {self.n_devices}), got {job.client}")
        active = [replace(job, base=self._global if job.base is None else job.base)
                  for job in jobs if self.d_mix[job.client] > 0]
        rules = [None if self.local_rule_hook is None else self.local_rule_hook(job.client) for job in active]
        with intra_op_threads(self.threads):
            return [LocalUpdate(client=job.client, base_version=job.base_version, samples=int(self.d_mix[job.client]),
                                params=[_kept(p) if self.workers <= 1 or len(active) <= 1 else p for p in params],
                                loss=loss, base=job.base, extras=extras)
                    for job, (params, loss, extras) in zip(active, self._train_clients(active, rules))]

    def server_update(self, round_index: int, version: int = 0) -> LocalUpdate:
        """The global model trained on the server's synthetic set (SST, CLSD), seeded as
        client number ``n_devices`` of the round."""
        if self._server_y is None:
            raise ValueError("server_update needs a non-empty server_synthetic set")
        with intra_op_threads(self.threads):
            job = TrainJob(client=self.n_devices, key=round_index, base_version=version, base=self._global)
            params, loss, _ = next(self._train_clients([job], [None]))
            return LocalUpdate(client=SERVER, base_version=version, samples=len(self._server_y),
                               params=[_kept(p) for p in params], loss=loss, base=self._global)

    def fedavg(self, updates: Sequence[LocalUpdate], weights: Sequence[float] | None = None) -> list[torch.Tensor] | None:
        """FedAvg (S4): sum_k w_k theta_k / sum_j w_j, in the order given; weights default
        to each update's samples (D_loc + D_gen). None when the weights sum to 0."""
        shares = _shares(updates, weights, "fedavg")
        if shares is None:
            return None
        acc = [torch.zeros_like(g) for g in self._global]
        with intra_op_threads(self.threads):
            for update, share in zip(updates, shares):
                torch._foreach_add_(acc, update.params, alpha=share)
        return acc

    def global_params(self) -> list[torch.Tensor]:
        """The current global model's tensors (``set_global`` replaces them; never modify)."""
        return self._global

    def average_delta(self, updates: Sequence[LocalUpdate], weights: Sequence[float] | None = None) -> list[torch.Tensor] | None:
        """sum_k w_k (theta_k - base_k) / sum_j w_j in the order given (each difference
        taken first, so a small step keeps its precision); weights default to samples.
        None when the weights sum to 0."""
        shares = _shares(updates, weights, "average_delta")
        if shares is None:
            return None
        acc = [torch.zeros_like(g) for g in self._global]
        with intra_op_threads(self.threads):
            for update, share in zip(updates, shares):
                base = self._global if update.base is None else update.base
                torch._foreach_add_(acc, torch._foreach_sub(update.params, base), alpha=share)
        return acc

    def step(self, params: Sequence[torch.Tensor], delta: Sequence[torch.Tensor], scale: float) -> list[torch.Tensor]:
        """params + scale * delta, as new tensors."""
        with intra_op_threads(self.threads):
            return list(torch._foreach_add(list(params), list(delta), alpha=scale))

    def mix(self, start: Sequence[torch.Tensor], end: Sequence[torch.Tensor], weight: float) -> list[torch.Tensor]:
        """(1 - weight) start + weight end, as new tensors; exactly ``end`` at weight 1
        (torch.lerp computes end - (1 - w)(end - start) for w >= 0.5)."""
        with intra_op_threads(self.threads):
            return [torch.lerp(a, b, weight) for a, b in zip(start, end)]

    def set_global(self, params: Sequence[torch.Tensor]) -> None:
        """Make ``params`` (laid out like the model's parameters) the global model."""
        self._global = list(params)

    def train_round(self, round_index: int, participants: np.ndarray) -> RoundMetrics:
        """One synchronous round with the default hooks: local updates of
        ``participants``, FedAvg, test metrics (the global model is unchanged when nobody
        trained)."""
        new = self.fedavg(self.local_updates(round_index, participants))
        if new is not None:
            self.set_global(new)
        return self.evaluate()

    def evaluate(self) -> RoundMetrics:
        """Accuracy and mean cross-entropy of the global model on the test set.

        The test set is cut into fixed chunks of ``EVAL_BATCH`` images, spread over the
        workers, and their sums added in chunk order, so the result does not depend on
        ``workers`` either.
        """
        n = len(self._y_test)
        chunks = [(s, min(s + EVAL_BATCH, n)) for s in range(0, n, EVAL_BATCH)]
        if self.workers > 1 and len(chunks) > 1:
            arrays = [g.numpy() for g in self._global]
            parts = self._ensure_pool().map(eval_job, [(arrays, a, b) for a, b in chunks], chunksize=1)
        else:
            self._load(self._global)
            with intra_op_threads(self.threads):
                parts = [self._eval_chunk(a, b) for a, b in chunks]
        loss_sum = sum(loss for loss, _ in parts)
        correct = sum(right for _, right in parts)
        return RoundMetrics(accuracy=correct / n, loss=loss_sum / n)

    def _eval_chunk(self, start: int, stop: int) -> tuple[float, int]:
        """Summed cross-entropy and number correct of the loaded model on test[start:stop]."""
        model = self.model
        model.eval()
        try:
            with torch.inference_mode(), self._autocast():
                logits = model(self._x_test[start:stop]).float()
            y = self._y_test[start:stop]
            return float(F.cross_entropy(logits, y, reduction="sum")), int((logits.argmax(dim=1) == y).sum())
        finally:
            model.train()

    def evaluate_local(self, params: Sequence[torch.Tensor], devices: Sequence[int]) -> list[tuple[float, float, int]]:
        """The model ``params`` on each device's own local data (its real images, not
        its synthetic ones): mean cross-entropy, accuracy and samples, in the order given
        (federated evaluation). A device without local data gives (nan, nan, 0)."""
        out: list[tuple[float, float, int]] = []
        with intra_op_threads(self.threads):
            self._load(list(params))
            self.model.eval()
            try:
                with torch.no_grad():
                    for device in devices:
                        idx = self._indices[int(device)]
                        if not len(idx):
                            out.append((math.nan, math.nan, 0))
                            continue
                        y = torch.from_numpy(self.dataset.train_labels[idx].astype(np.int64)).to(self.device)
                        logits = self.model(self._to_tensor(self.dataset.train_images[idx])).float()
                        out.append((float(F.cross_entropy(logits, y)), float((logits.argmax(dim=1) == y).double().mean()),
                                    len(y)))
            finally:
                self.model.train()
        return out

    def global_state(self) -> dict[str, torch.Tensor]:
        """A copy of the global model's parameters, by name."""
        names = [name for name, _ in self.model.named_parameters()]
        return {name: g.clone() for name, g in zip(names, self._global)}

    def load_global_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Replace the global model (e.g. a checkpoint, or ``fedavg`` of other states)."""
        for (name, _), g in zip(self.model.named_parameters(), self._global):
            g.copy_(state[name])  # copy_ moves across devices: the global model stays on the CPU

    def global_model(self) -> nn.Module:
        """The shared model object holding the global weights (reused by the trainer:
        copy it before training it yourself)."""
        self._load(self._global)
        return self.model

    def to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (n, C, H, W) images as the model's normalised float input, on its device."""
        return self._to_tensor(images)

    # ------------------------------------------------------------------ internals

    def _to_tensor(self, images: np.ndarray) -> torch.Tensor:
        # astype copies, so the tensor never aliases the (read-only, shared) cached arrays;
        # normalised on the CPU, so every device trains on the same floats
        x = torch.from_numpy(np.asarray(images).astype(np.float32)).div_(255.0)
        x = (x - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last).to(self.device)

    def close(self) -> None:
        """Stop the worker processes, if any (also done when the trainer is collected)."""
        if self._pool is not None:
            self._finalizer()
            self._pool = None

    def _client_data(self, client: int) -> tuple[torch.Tensor, torch.Tensor]:
        if client == self.n_devices:
            assert self._server_x is not None and self._server_y is not None
            return self._server_x, self._server_y
        return self.device_data(client)

    def device_data(self, device: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``device``'s mixed set D_loc u D_gen as normalised float images and labels."""
        idx, gen = self._indices[device], self.synthetic_data(device)
        if not len(gen):
            images, labels = self.dataset.train_images[idx], self.dataset.train_labels[idx].astype(np.int64)
        else:
            images = np.concatenate([self.dataset.train_images[idx], gen.images])
            labels = np.concatenate([self.dataset.train_labels[idx], gen.labels.astype(np.int64)])
        return self._to_tensor(images), torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(self.device)

    def synthetic_data(self, device: int) -> LabelledImages:
        """``device``'s synthetic set D_gen as uint8 images and labels (made now, once, when
        the trainer was given a lazy source)."""
        gen = self._synthetic.get(device)
        if gen is None:
            if self._lazy is None:
                return self._no_synthetic
            gen = as_labelled(self._lazy[device], self.dataset.image_shape, f"device {device}", self.dataset.n_classes)
            if len(gen) != self.d_mix[device] - self.d_loc[device]:
                raise ValueError(f"device {device}: the lazy synthetic source made {len(gen)} images, "
                                 f"its counts said {self.d_mix[device] - self.d_loc[device]}")
            self._synthetic[device] = gen
        return gen

    def _training_set(self, client: int) -> tuple[torch.Tensor, torch.Tensor]:
        """What ``client`` trains on this round, with the global model loaded: its mixed
        set, or what the policy's ``training_set`` hook makes of it."""
        x, y = self._client_data(client)
        if client == self.n_devices or self.training_set_hook is None:
            return x, y
        return self.training_set_hook(TrainingData(device=client, x=x, y=y, n_local=int(self.d_loc[client]),
                                                   model=self.model, autocast=self._autocast()))

    def training_data(self, device: int) -> tuple[torch.Tensor, torch.Tensor]:
        """What ``device`` trains on in the next round from the current global model (its
        mixed set, or what the policy's ``training_set`` hook makes of it)."""
        self._load(self._global)
        with intra_op_threads(self.threads):
            return self._training_set(device)

    def _train_clients(self, jobs: list[TrainJob], rules: Sequence[LocalRule | None]
                       ) -> Iterator[tuple[list[torch.Tensor], float, dict[str, Any]]]:
        """Each job's model after local training from its base (a list of tensors), its
        mean training loss over the last local epoch and its rule's extras, in job order.
        A yielded list is only valid until the next one is asked for."""
        if self.workers <= 1 or len(jobs) <= 1:
            for job, rule in zip(jobs, rules):
                self._load(job.base)
                x, y = self._training_set(job.client)
                loss, extras = self._train_loaded(x, y, job.key, job.client, job.repeat, rule)
                yield [p.detach() for p in self._params], loss, _on_cpu(extras)
            return
        arrays: dict[int, list[np.ndarray]] = {}  # one conversion per distinct base model
        # data made lazily after the workers were forked travel with the job (made here, so
        # every image comes from this process, whatever worker trains it)
        work = [(job.key, job.client, job.repeat, arrays.setdefault(id(job.base), [g.numpy() for g in job.base]), rule,
                 None if self._lazy is None or job.client == self.n_devices else self.synthetic_data(job.client))
                for job, rule in zip(jobs, rules)]
        for trained, loss, extras in self._ensure_pool().imap(train_job, work, chunksize=1):
            yield [torch.from_numpy(a) for a in trained], loss, extras_to_tensors(extras)

    def _train_loaded(self, x: torch.Tensor, y: torch.Tensor, key: int, client: int, repeat: int,
                      rule: LocalRule | None) -> tuple[float, dict[str, Any]]:
        """Local training of the loaded model on (x, y): plain SGD, or SGD under ``rule``
        followed by what the rule returns besides the params."""
        gen = self._generator(key, client, repeat)
        if rule is None:
            return self._local_sgd(x, y, gen), {}
        rule.start(self._params)
        loss = self._local_sgd(x, y, gen, rule)
        lr, epochs = self._step_and_epochs(rule)
        return loss, rule.finish(self._params, local_steps(len(y), self.task.batch_size, epochs), lr)

    def _step_and_epochs(self, rule: LocalRule | None) -> tuple[float, int]:
        """The learning rate and local epochs of a job: its rule's where it sets them, else the task's."""
        lr = self.task.learning_rate if rule is None or rule.learning_rate is None else float(rule.learning_rate)
        epochs = self.task.local_epochs if rule is None or rule.local_epochs is None else int(rule.local_epochs)
        return lr, epochs

    def _ensure_pool(self) -> Any:
        if self._pool is None:
            self._pool = start_pool(self)  # after the data are in memory: workers share them copy-on-write
            self._finalizer = weakref.finalize(self, self._pool.terminate)
        return self._pool

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")

    def _generator(self, key: int, client: int, repeat: int = 0) -> torch.Generator:
        # One independent stream per (round or base version, client, repeat): the same draw
        # whoever else participates.
        entropy = [self._shuffle_root, int(key), int(client)] + ([int(repeat)] if repeat else [])
        state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def _load(self, tensors: list[torch.Tensor]) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self._params, tensors)

    def _local_sgd(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, rule: LocalRule | None = None) -> float:
        """tau epochs of plain mini-batch SGD on (x, y), in place on ``self.model``, each
        step along the gradient or, with a ``rule``, along ``rule.direction`` of it;
        returns the mean cross-entropy over the last epoch's samples (as trained)."""
        (lr, epochs), bs = self._step_and_epochs(rule), self.task.batch_size
        params, model = self._params, self.model
        n = len(y)
        loss_sum = torch.zeros((), device=self.device)
        for _ in range(epochs):
            loss_sum = torch.zeros((), device=self.device)
            # the shuffle comes from the CPU generator on every device: the same batches
            perm = torch.randperm(n, generator=gen).to(self.device)
            xs, ys = x[perm], y[perm]  # one gather per epoch; batches are then contiguous slices
            for s in range(0, n, bs):
                with self._autocast():
                    logits = model(xs[s: s + bs])
                loss = F.cross_entropy(logits.float(), ys[s: s + bs])
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    step = grads if rule is None else rule.direction(list(grads), params)
                    torch._foreach_add_(params, step, alpha=-lr)
                    loss_sum += loss.detach() * len(ys[s: s + bs])
        return float(loss_sum) / max(n, 1)


def _kept(param: torch.Tensor) -> torch.Tensor:
    """A trained parameter as simfl keeps it: a CPU tensor of its own (the trainer reuses
    its model's tensors for the next client)."""
    return param.clone() if param.device.type == "cpu" else param.cpu()


def _on_cpu(extras: dict[str, Any]) -> dict[str, Any]:
    """A local rule's extras with every list of tensors on the CPU (as they are on cpu)."""
    return {key: [t.cpu() for t in value] if isinstance(value, list) and value
            and all(isinstance(t, torch.Tensor) for t in value) else value for key, value in extras.items()}


def _shares(updates: Sequence[LocalUpdate], weights: Sequence[float] | None, what: str) -> list[float] | None:
    """Each update's weight over their sum (weights default to the updates' samples);
    None when they sum to 0."""
    weights = [u.samples for u in updates] if weights is None else list(weights)
    if len(weights) != len(updates):
        raise ValueError(f"{what} needs one weight per update, got {len(updates)} updates and {len(weights)} weights")
    total = float(sum(weights))
    if total <= 0:
        return None
    return [w / total for w in weights]


# LabelledImages, SyntheticData, normalisation and intra_op_threads are imported from here by older code
__all__ = ["PRECISIONS", "LabelledImages", "SyntheticData", "TorchTrainer", "intra_op_threads", "normalisation",
           "training_device"]
