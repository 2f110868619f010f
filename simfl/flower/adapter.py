"""A Flower strategy (flwr 1.42's message API, flwr.serverapp.strategy.Strategy) as a
simfl policy: `--policy flower:FedAdam`, `flower:path/to/file.py:MyStrategy`, or behind
another data side, `fimi+flower:FedAdam`.

What the strategy decides, as it would in Flower:

- who trains: each round its `configure_train(server_round, arrays, config, grid)` samples
  nodes from a `SimulatedGrid` that lists the devices available at that instant of
  simulated time (node id = device index) and answers at once. Python's `random`, which
  Flower's node sampling uses, is seeded from simfl's keyed streams (seed, "flower",
  round) around every call into the strategy and restored after, so runs are
  reproducible. Where Flower would wait in real time for more nodes, no round is played
  and the server waits in simulated time for the next device to come online;
- how each device trains: the ConfigRecord of its message, of which simfl reads `lr`
  (learning rate), `local-epochs` and `proximal-mu` (FedProx's proximal term); absent
  keys keep the task's learning rate and local epochs and plain SGD. More local epochs
  cost proportionally more computation time and energy (eqs. 5-6);
- the new global model: the replies of the devices that delivered by the deadline reach
  `aggregate_train` as Flower Messages (an ArrayRecord of the local model under
  "arrays", a MetricRecord under "metrics" with `num-examples` and `train_loss`, as
  Flower's own ClientApps send); stragglers, devices gone offline and flat batteries
  arrive as error replies, as Flower reports failed nodes;
- federated evaluation: the messages of `configure_evaluate` are answered by evaluating
  the new global model on each addressed device's own local data (`eval_loss`,
  `eval_acc`, `num-examples`), then `aggregate_evaluate`. It costs no simulated time or
  energy (the replies are a few numbers; simfl models training rounds).

What simfl decides: the synthetic data and the resources (TFL's plan; the data side's in
`a+flower:X`), with each cell's band shared among the strategy's participants when it
trains fewer than are available; the accounting of energy, latency and uplink bits; and
centralised evaluation on the test split (rounds.csv), besides which an `evaluate_fn` of
the scenario's `flower.<Strategy>.evaluate_fn` may run. The aggregated MetricRecords land
in the run folder's metrics.csv.

Synchronous rounds only; `task.participants_per_round` is refused (the strategy's own
fraction and minimum settings decide how many train).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import pickle
import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from flwr.app import ConfigRecord

from simfl import guard
from simfl.errors import PolicyError, ScenarioError
from simfl.flower.messages import (SimulatedGrid, TooFewNodes, arrays_of, config_of, ensure_identity, error_reply,
                                   evaluation_reply, from_array_record, never_waiting, to_array_record, update_reply)
from simfl.flower.references import policy_name, split_reference, strategy_class
from simfl.plan import RoundPlan, shared_among_selected
from simfl.policies.fedprox import ProximalRule
from simfl.policies.tfl import Tfl
from simfl.policy import PlanContext
from simfl.streams import keyed_rng
from simfl.training_side import TrainingAlgorithm
from simfl.user_code import import_target
from simfl.world import World

if TYPE_CHECKING:
    import torch

    from simfl.learning.local_rule import LocalRule
    from simfl.learning.protocol import LocalUpdate, Server
    from simfl.network import RoundState
    from simfl.scenario import Scenario

STRATEGY_STATE = "strategy"  # the pickled strategy in each round's checkpoint (tensor_state)


class ConfiguredRule(ProximalRule):
    """A device's local SGD as its Flower ConfigRecord asks: the learning rate, the local
    epochs and FedProx's proximal term (mu = 0: plain SGD steps)."""

    def __init__(self, mu: float, learning_rate: float | None, local_epochs: int | None) -> None:
        super().__init__(mu)
        self.learning_rate = learning_rate
        self.local_epochs = local_epochs

    def direction(self, grads: list[torch.Tensor], params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return super().direction(grads, params) if self.mu else grads


class FlowerStrategy(TrainingAlgorithm, Tfl):
    """A Flower strategy run in simfl's world (made per reference by `flower_policy`)."""

    strategy_class: ClassVar[type]
    reference: ClassVar[str]
    decides_participants = True
    waits_for_devices = True

    def __init__(self) -> None:
        super().__init__()
        self.strategy: Any = None
        self._instructions: dict[int, Any] = {}  # this round's train messages, by device
        # each message's (lr, local-epochs, proximal-mu), read once when it is sent
        self._settings: dict[int, tuple[float | None, int | None, float]] = {}
        self._metrics: dict[str, float] = {}  # what the last aggregation reported
        self._seed = 0
        self._train_config: dict[str, Any] = {}
        self._evaluate_config: dict[str, Any] = {}
        self._evaluate_fn: Any = None
        self._task_epochs = 1

    # --- set-up -------------------------------------------------------------------------
    def configure(self, scenario: Scenario) -> None:
        super().configure(scenario)  # synchronous rounds only
        label = self.strategy_class.__name__
        if scenario.task.participants_per_round is not None:
            raise ScenarioError(f"{scenario.source}: task.participants_per_round: policy {self.name!r} is a Flower "
                                "strategy, whose own fraction_train and min_train_nodes decide how many devices "
                                f"train; remove participants_per_round, or set them under flower.{label}")
        arguments = dict(scenario.flower.get(label, {}))
        self._train_config = arguments.pop("train_config", {})
        self._evaluate_config = arguments.pop("evaluate_config", {})
        evaluate_fn = arguments.pop("evaluate_fn", None)
        self._evaluate_fn = None if evaluate_fn is None else _function(evaluate_fn, scenario.source, label)
        self._seed, self._task_epochs = scenario.seed, scenario.task.local_epochs
        logging.getLogger("flwr").setLevel(logging.WARNING)  # Flower logs every sampling at INFO
        ensure_identity()
        self.strategy = self._build(arguments, scenario.source)
        needed = int(getattr(self.strategy, "min_available_nodes", 0) or 0)
        if needed > scenario.n_devices:
            raise ScenarioError(f"{scenario.source}: flower.{label}.min_available_nodes: the strategy waits for "
                                f"{needed} nodes, but the scenario has {scenario.n_devices} devices")

    def _build(self, arguments: dict[str, Any], source: str) -> Any:
        label = self.strategy_class.__name__
        try:
            signature = inspect.signature(self.strategy_class)
        except (TypeError, ValueError):
            signature = None
        if signature is not None and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            unknown = sorted(set(arguments) - set(signature.parameters))
            if unknown:
                allowed = ", ".join(p for p in signature.parameters if p not in ("self",))
                raise ScenarioError(f"{source}: flower.{label}.{unknown[0]}: {label} takes no argument "
                                    f"{unknown[0]!r}; its arguments: {allowed}")
        return self._call("__init__", self.strategy_class, **arguments)

    # --- who trains, and how ----------------------------------------------------------------
    def select(self, state: RoundState, context: PlanContext) -> np.ndarray:
        names, params = _model(context.server)
        arrays = to_array_record(params, names)
        grid = SimulatedGrid(state.available)
        try:
            with never_waiting(), self._seeded(state.round, 0):
                messages = list(self._call("configure_train", state.round + 1, arrays,
                                           ConfigRecord(dict(self._train_config)), grid))
        except TooFewNodes:
            self._instructions, self._settings = {}, {}
            return np.zeros(0, dtype=np.int64)
        instructions: dict[int, Any] = {}
        settings: dict[int, tuple[float | None, int | None, float]] = {}
        for message in messages:
            node = message.metadata.dst_node_id
            if not (isinstance(node, int) and 0 <= node < state.n_devices and state.available[node]):
                raise self._problem("configure_train", f"addressed node {node!r}, which is not one of the grid's "
                                    "nodes (the devices available now)")
            if node in instructions:
                raise self._problem("configure_train", f"addressed node {node} twice in round {state.round + 1}")
            sent = arrays_of(message)
            if sent is not None and sent is not arrays and not _same_arrays(sent, arrays):
                raise self._problem("configure_train", f"sent node {node} other arrays than the global model; simfl "
                                    "trains every device from the global model")
            settings[node] = _local_settings(config_of(message), self._problem)  # checked now, used when it trains
            instructions[node] = message
        self._instructions, self._settings = instructions, settings
        return np.array(sorted(instructions), dtype=np.int64)

    def shared_plan(self, world: World, state: RoundState, context: PlanContext) -> RoundPlan:
        """The static plan's resources for this round's participants: as planned when the
        strategy trains every available device (as tfl), else each cell's band shared
        among those in it (as tfl with K of N)."""
        assert context.plan is not None
        if len(state.selected) < int(np.count_nonzero(state.available)):
            return shared_among_selected(world, context.plan, state.cell_of, state.selected)
        return Tfl.plan_round(self, world, state, context)

    def with_local_epochs(self, round_plan: RoundPlan, world: World) -> RoundPlan:
        """`round_plan` with each participant's `local-epochs` where a message sets one."""
        epochs = np.full(world.n_devices, float(self._task_epochs))
        changed = False
        for device, (_, wanted, _) in self._settings.items():
            if wanted is not None and wanted != self._task_epochs:
                epochs[device], changed = float(wanted), True
        if not changed:
            return round_plan
        return RoundPlan(f_hz=round_plan.f_hz, b_hz=round_plan.b_hz, p_w=round_plan.p_w, epochs=epochs)

    def plan_round(self, world: World, state: RoundState, context: PlanContext) -> RoundPlan:
        return self.with_local_epochs(self.shared_plan(world, state, context), world)

    def local_rule(self, client: int) -> LocalRule | None:
        if client not in self._settings:
            return None
        lr, epochs, mu = self._settings[client]
        if lr is None and epochs is None and not mu:
            return None  # plain SGD with the task's settings: the trainer's own path, bit for bit
        return ConfiguredRule(mu, lr, epochs)

    # --- the new global model --------------------------------------------------------------
    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        names, params = _model(server)
        delivered = {u.client: u for u in updates}
        replies = []
        for device, message in sorted(self._instructions.items()):
            update = delivered.get(device)
            if update is None:
                replies.append(error_reply(message, f"device {device} did not deliver its update by the round's "
                                                    "deadline (a straggler, offline, or out of battery)"))
            else:
                replies.append(update_reply(message, update.params, names, update.samples, update.loss))
        server_round = state.round + 1
        with self._seeded(state.round, 1):
            result = self._call("aggregate_train", server_round, replies)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise self._problem("aggregate_train", f"returned {type(result).__name__}; it must return "
                                "(ArrayRecord or None, MetricRecord or None)")
        arrays, metrics = result
        self._metrics = {f"train_{k}" if not k.startswith("train") else k: v for k, v in _numbers(metrics).items()}
        new = None
        if arrays is not None:
            try:
                new = from_array_record(arrays, names, params)
            except PolicyError as exc:
                raise self._problem("aggregate_train", str(exc)) from None
        model = new if new is not None else params
        self._federated_evaluation(server, state, model, names)
        if self._evaluate_fn is not None:
            outcome = self._call_evaluate_fn(server_round, to_array_record(model, names))
            self._metrics.update({f"evaluate_fn_{k}": v for k, v in _numbers(outcome).items()})
        return new

    def _federated_evaluation(self, server: Server, state: RoundState, model: Sequence[Any], names: list[str]) -> None:
        grid = SimulatedGrid(state.available)
        try:
            with never_waiting(), self._seeded(state.round, 2):
                messages = list(self._call("configure_evaluate", state.round + 1, to_array_record(model, names),
                                           ConfigRecord(dict(self._evaluate_config)), grid))
        except TooFewNodes:
            return
        if not messages:
            return
        evaluate_local = getattr(server, "evaluate_local", None)
        if evaluate_local is None:
            raise self._problem("configure_evaluate", "asked for federated evaluation, which needs simfl's torch "
                                "trainer; set fraction_evaluate: 0.0 under the strategy's flower settings")
        nodes = [m.metadata.dst_node_id for m in messages]
        bad = [n for n in nodes if not (isinstance(n, int) and 0 <= n < state.n_devices)]
        if bad:
            raise self._problem("configure_evaluate", f"addressed node {bad[0]!r}, which is not a device")
        results = evaluate_local(model, nodes)
        replies = [evaluation_reply(m, loss, accuracy, n) if n else error_reply(m, f"device {node} has no local data")
                   for m, node, (loss, accuracy, n) in zip(messages, nodes, results)]
        with self._seeded(state.round, 3):
            metrics = self._call("aggregate_evaluate", state.round + 1, replies)
        self._metrics.update({f"evaluate_{k}" if not k.startswith("eval") else k: v
                              for k, v in _numbers(metrics).items()})

    def _call_evaluate_fn(self, server_round: int, arrays: Any) -> Any:
        try:
            return self._evaluate_fn(server_round, arrays)
        except (KeyboardInterrupt, PolicyError):
            raise
        except BaseException as exc:  # noqa: BLE001 (a user's function may raise anything)
            fn = self._evaluate_fn
            where = getattr(getattr(fn, "__code__", None), "co_filename", "?")
            raise PolicyError(f"{self._who()}: its evaluate_fn {getattr(fn, '__name__', fn)!r} ({where}) raised "
                              f"{type(exc).__name__}: {exc}") from None

    def round_metrics(self) -> dict[str, float]:
        return dict(self._metrics)

    # --- what a resumed run needs ------------------------------------------------------
    def tensor_state(self) -> dict[str, Any]:
        """The strategy pickled (its momentum, Adam moments, current arrays), so a
        resumed run continues bit for bit; nothing when it cannot be pickled."""
        import torch  # deferred: torch loads for training, not when a scenario names a Flower strategy

        try:
            blob = pickle.dumps(self.strategy)
        except Exception:  # noqa: BLE001 (a user's strategy may hold anything; resuming it is refused later)
            return {}
        return {STRATEGY_STATE: [torch.frombuffer(bytearray(blob), dtype=torch.uint8)]}

    def load_tensor_state(self, state: dict[str, Any]) -> None:
        saved = state.get(STRATEGY_STATE)
        if not saved:
            raise PolicyError(f"policy {self.name!r}: the checkpoint holds no state of the strategy (it could not be "
                              "pickled), so the run cannot resume bit for bit; run it again from the start")
        self.strategy = pickle.loads(saved[0].numpy().tobytes())  # our own checkpoint, checked by its sum

    # --- calling the strategy ----------------------------------------------------------------
    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """`strategy.<method>(...)` (or the class itself for `__init__`); whatever it raises
        is named with the strategy's file and method."""
        fn = args[0] if method == "__init__" else getattr(self.strategy, method)
        rest = args[1:] if method == "__init__" else args
        try:
            return fn(*rest, **kwargs)
        except (TooFewNodes, KeyboardInterrupt, PolicyError, ScenarioError):
            raise
        except BaseException as exc:  # noqa: BLE001 (a user's strategy may raise anything)
            what = f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"raised {type(exc).__name__}: {exc}"
            raise PolicyError(f"{self._who()}: {method}() {what}{guard.where(exc, self.strategy_class)}") from None

    def _problem(self, method: str, what: str) -> PolicyError:
        return PolicyError(f"{self._who()}: {method}() {what}")

    def _who(self) -> str:
        return f"Flower strategy {self.strategy_class.__name__} ({guard.origin(self.strategy_class)}, policy {self.name!r})"

    @contextlib.contextmanager
    def _seeded(self, round_index: int, call: int) -> Iterator[None]:
        """Python's `random` seeded from simfl's keyed stream (seed, "flower", round,
        call) for the duration of a call into the strategy, restored after."""
        saved = random.getstate()
        random.seed(int(keyed_rng(self._seed, "flower", round_index, call).integers(2**63)))
        try:
            yield
        finally:
            random.setstate(saved)


@functools.lru_cache(maxsize=None)
def flower_policy(reference: str) -> type[FlowerStrategy]:
    """The policy class of `flower:Name` or `flower:path.py:Name` (one per reference)."""
    cls = strategy_class(reference)
    name = policy_name(reference)
    label = f"Flower{split_reference(reference)[1]}"
    return type(label, (FlowerStrategy,), {"name": name, "strategy_class": cls, "reference": reference,
                                           "__module__": __name__, "__qualname__": label,
                                           "__doc__": f"Flower's {cls.__name__} strategy in simfl's world."})


def _model(server: Any) -> tuple[list[str], list[Any]]:
    """The global model's parameter names and tensors."""
    if server is None:
        raise PolicyError("a Flower strategy needs the run's server (the engine passes it in the round context)")
    params = list(server.global_params())
    state = getattr(server, "global_state", None)
    names = list(state().keys()) if state is not None else [f"param{i}" for i in range(len(params))]
    return names, params


def _same_arrays(a: Any, b: Any) -> bool:
    return list(a.keys()) == list(b.keys()) and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a.keys())


def _local_settings(config: Any, problem: Any) -> tuple[float | None, int | None, float]:
    """(`lr`, `local-epochs`, `proximal-mu`) of a ConfigRecord, None / 0 where absent."""
    lr, epochs, mu = config.get("lr"), config.get("local-epochs"), config.get("proximal-mu", 0.0)
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        raise problem("configure_train", f"set config['lr'] = {lr!r}; it must be a number > 0")
    if epochs is not None and not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        raise problem("configure_train", f"set config['local-epochs'] = {epochs!r}; it must be an integer >= 1")
    if not (isinstance(mu, (int, float)) and not isinstance(mu, bool) and math.isfinite(mu) and mu >= 0):
        raise problem("configure_train", f"set config['proximal-mu'] = {mu!r}; it must be a number >= 0")
    return (None if lr is None else float(lr)), epochs, float(mu)


def _numbers(record: Any) -> dict[str, float]:
    """The numbers of a MetricRecord (lists and None left out)."""
    if record is None:
        return {}
    return {str(k): float(v) for k, v in dict(record).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _function(reference: str, source: str, label: str) -> Any:
    target, _, attr = reference.rpartition(":")
    module = import_target(target, f"{source}: flower.{label}.evaluate_fn")
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ScenarioError(f"{source}: flower.{label}.evaluate_fn: {target} has no function {attr!r}")
    return fn


__all__ = ["ConfiguredRule", "FlowerStrategy", "flower_policy"]
