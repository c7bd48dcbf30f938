"""The training engine shared by every stage and component.

A stage is a module plus a loss function ``loss_fn(module, *tensors) -> {"loss": ..., part: ...}``
over minibatches of in-memory tensors. The engine runs it through Lightning Fabric (devices,
precision, DDP), with AdamW, linear warm-up + cosine decay, gradient clipping, validation every
k epochs, best-on-validation weights, exactly resumable checkpoints and a progress bar. It knows
nothing about S4 or diffusion.

Stage directory layout::

    state.json                    the manifest: position (epoch, batch, step), best validation
                                  loss, optimiser scalars, RNG scalars, the log's length, and the
                                  file it names with its sha256; ``complete`` once the stage is done
    checkpoint-<step>.safetensors weights, optimiser tensors, best weights and RNG states of the
                                  position the manifest records (while the stage is unfinished)
    weights.safetensors           the stage's product: best-on-validation (or last) weights
    log.jsonl                     one line per epoch: lr, training and validation loss parts, seconds

Commit protocol: a checkpoint goes to a new file, then the manifest naming it (and its
checksum) replaces ``state.json``, then the previous checkpoint is deleted. ``state.json`` is
the only thing a resume trusts: files it does not name (a checkpoint written before a kill, a
``weights.safetensors`` not yet committed), temporaries and log lines past its recorded length
are removed, so no kill can pair weights with the wrong counter or duplicate a log line.

Exactness: every epoch seeds the trial order from (seed, stage, epoch) and the global RNGs (torch,
numpy, Python's ``random``) from (seed, stage, epoch, rank); a checkpoint also stores the RNG states, so a
run resumed from any checkpoint, at an epoch boundary or mid-epoch after SIGINT/SIGTERM
(:class:`StopSignals`), reaches the same weights bit for bit as one that never stopped (on CPU).
Component state such as an EMA and its update counter lives in buffers, saved with the weights.

Data parallelism (``run.devices`` x ``run.num_nodes`` processes, docs/distributed.md): the
processes split every global batch (:func:`shard_batches`), DDP all-reduces the gradients, so
every process holds the same weights, optimiser state and EMA after each step; validation sums
and the log's training losses are added up over processes; process 0 alone writes, and every
decision taken from the directory (resume or not, which checkpoint) is its, broadcast
(:func:`on_rank_zero`). A stop signal stops all processes at the end of the epoch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence, TypeVar

import attrs
import numpy as np
import torch
from tqdm.auto import tqdm

from ldns_framework.allocator import keep_freed_memory
from ldns_framework.checkpoint import (load_tensors, load_weights, optimizer_from_tensors, optimizer_to_tensors,
                                       save_tensors)
from ldns_framework.errors import MAX_LINE, LdnsError, SpecError, shorten, shown
from ldns_framework.rundir import append_jsonl, clean_temporaries, read_json, remove, truncate, write_json
from ldns_framework.spec import TrainConfig

LossFn = Callable[..., dict[str, torch.Tensor]]
T = TypeVar("T")
EpochCallback = Callable[[dict[str, Any]], None]

#: Version of the stage manifest (state.json) written by :class:`Trainer`.
MANIFEST_FORMAT = 2
WEIGHTS_NAME = "weights.safetensors"
STATE_NAME = "state.json"
LOG_NAME = "log.jsonl"
_CHECKPOINT_PREFIX = "checkpoint-"


@attrs.frozen
class TrainResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: float | None
    resumed_from: int | None
    #: The figures ``finalize`` returned (kept in the stage manifest; {} without one).
    finalized: dict[str, Any] = attrs.field(factory=dict)


# -- random state -----------------------------------------------------------------------------------
def derive_seed(seed: int, *keys: Any) -> int:
    """A 63-bit seed for the stream named by ``keys`` (stage, epoch, rank) under the run's ``seed``:
    what a stream draws never depends on what ran before it in the process."""
    digest = hashlib.sha256(json.dumps([seed, *keys]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed the global RNGs components draw from: torch (CPU and CUDA), numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The global RNG states: tensors (for the checkpoint file) and scalars (for the manifest)."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["rng/python"] = torch.tensor(internal, dtype=torch.int64)
    return tensors, {"numpy": [kind, int(position), int(has_gauss), float(cached_gauss)],
                     "python": [version, gauss_next]}


def set_rng_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng/cuda/")), key=lambda k: int(k[9:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, position, has_gauss, cached_gauss = scalars["numpy"]
    np.random.set_state((kind, tensors["rng/numpy"].numpy().astype(np.uint32), position, has_gauss, cached_gauss))
    version, gauss_next = scalars["python"]
    random.setstate((version, tuple(int(v) for v in tensors["rng/python"].tolist()), gauss_next))


# -- signals ----------------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM once its last checkpoint was committed.

    ``exit_code`` is 128 + the signal number (130 for SIGINT, 143 for SIGTERM); the message says
    how to resume once ``run_dir`` is known.
    """

    def __init__(self, signum: int, run_dir: str | Path | None = None) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.run_dir = run_dir

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        if self.run_dir is None:
            return f"interrupted by {signal.Signals(self.signum).name}: resume with fit(..., resume=True)"
        return f"interrupted: resume with ldns train --resume --out {self.run_dir}"


class StopSignals:
    """While active (a context manager, main thread only), SIGINT and SIGTERM request a stop: the
    training loop finishes its current step, commits a checkpoint and raises :class:`Interrupted`.
    A second signal raises :class:`Interrupted` at once (the last committed checkpoint still holds)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise Interrupted(signum)
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: stopping after the current step "
              "(send it again to stop at once)", file=sys.stderr, flush=True)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        """Raise :class:`Interrupted` when a stop was requested."""
        if self.signum is not None:
            raise Interrupted(self.signum)


def agreed_stop(fabric: Any, stop: StopSignals) -> int:
    """The signal that asked to stop (0 for none): this process's, or under DDP any process's, so
    that all stop at the same point (torchrun forwards a signal to every process; a test or a
    scheduler may signal one)."""
    if fabric is None or fabric.world_size == 1:
        return stop.signum or 0
    flag = torch.tensor(stop.signum or 0, dtype=torch.int64, device=fabric.device)
    return int(fabric.all_reduce(flag, reduce_op="max"))


# -- devices and processes --------------------------------------------------------------------------
#: Environment variables a launcher (torchrun, `fabric run`) sets in each process it starts.
_LAUNCHED_ENV = ("LOCAL_WORLD_SIZE", "WORLD_SIZE")


def make_fabric(device: str = "auto", precision: str = "32-true", strategy: str = "auto", devices: int = 1,
                num_nodes: int = 1) -> Any:
    """A Lightning Fabric for the spec's ``run`` section (CPU unless a GPU is asked for or found).

    With ``devices`` x ``num_nodes`` > 1 the processes are joined (launched) here: a process that
    torchrun, `fabric run` or srun started joins the group they started; a process started by hand
    starts the other processes of its node itself (Fabric re-runs the same command in each).
    """
    from lightning_fabric import Fabric
    from lightning_fabric.strategies import SingleDeviceStrategy
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    if device.startswith("cuda:"):
        accelerator, parallel = "cuda", [int(device.split(":")[1])]
    else:
        accelerator, parallel = device, devices
    _check_launcher(devices, num_nodes)
    try:
        fabric = Fabric(accelerator=accelerator, devices=parallel, num_nodes=num_nodes,
                        precision=_fabric_precision(precision), strategy=strategy)
    except (ValueError, RuntimeError, MisconfigurationException) as exc:  # its checks of the devices and cluster
        raise SpecError("run", _one_line(exc)) from None
    # Fabric's own flag: `fabric run` has already launched (joined) in the constructor
    if not isinstance(fabric.strategy, SingleDeviceStrategy) and not fabric._launched:
        try:
            fabric.launch()
        except ValueError as exc:  # the cluster's process counts against the spec's (SLURM)
            raise SpecError("run", _one_line(exc)) from None
        except RuntimeError as exc:  # e.g. the rendezvous address cannot be reached
            raise LdnsError(f"cannot start or join the {devices * num_nodes} training processes: "
                            f"{_one_line(exc)}") from None
    return fabric


def _one_line(exc: BaseException) -> str:
    """A Lightning or torch error message (often several lines) on one bounded line."""
    return shorten(" ".join(str(exc).split()), MAX_LINE)


def _check_launcher(devices: int, num_nodes: int) -> None:
    """A process started by torchrun or `fabric run` checks the process counts it was given against
    the spec's, naming the option to change (Fabric would fail later, less clearly)."""
    local, world = (os.environ.get(name) for name in _LAUNCHED_ENV)
    if local is None or world is None or not local.isdigit() or not world.isdigit():
        return
    if int(local) != devices:
        raise SpecError("run.devices", f"the launcher started {local} processes on this node but the spec asks for "
                                       f"{devices}; set run.devices: {local} (or --set run.devices={local})")
    if int(world) != devices * num_nodes:
        nodes = int(world) // max(1, int(local))
        raise SpecError("run.num_nodes", f"the launcher started {world} processes in all ({nodes} node(s) of {local}) "
                                         f"but the spec asks for {devices * num_nodes}; set run.num_nodes: {nodes}")


def on_rank_zero(fabric: Any, fn: Callable[[], T]) -> T:
    """``fn()`` run by process 0 alone, its result handed to every process.

    The other processes wait instead of racing process 0 on the run directory; when ``fn`` fails,
    every process raises (process 0 its own error, the others an :class:`LdnsError` with its
    message), so none waits forever for a process that has stopped.
    """
    if fabric is None or fabric.world_size == 1:
        return fn()
    outcome: tuple[bool, Any] | None = None
    failure: BaseException | None = None
    if fabric.is_global_zero:
        try:
            outcome = (True, fn())
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the others are told
            failure = exc
            outcome = (False, str(exc) if isinstance(exc, LdnsError) else
                       f"process 0 stopped with {type(exc).__name__}: {exc}")
    ok, value = fabric.broadcast(outcome, src=0)
    if failure is not None:
        raise failure
    if not ok:
        raise LdnsError(value)
    return value


def _fabric_precision(precision: str) -> str:
    return {"32": "32-true"}.get(precision, precision)


def lr_factor(step: int, total_steps: int, warmup_fraction: float, final_fraction: float) -> float:
    """Linear warm-up to 1, then half-cosine decay to ``final_fraction`` at ``total_steps``."""
    warmup = int(round(warmup_fraction * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


# -- manifests --------------------------------------------------------------------------------------
def read_manifest(stage_dir: str | Path) -> dict[str, Any] | None:
    """A stage's ``state.json`` (None when the stage has not committed anything yet)."""
    path = Path(stage_dir) / STATE_NAME
    return read_json(path, dict) if path.is_file() else None


def stage_complete(stage_dir: str | Path) -> bool:
    """True when the stage in ``stage_dir`` committed its ``state.json`` with ``complete`` set."""
    manifest = read_manifest(stage_dir)
    return manifest is not None and bool(manifest.get("complete"))


def manifest_file(stage_dir: str | Path, manifest: dict[str, Any], key: str) -> tuple[Path, str]:
    """(path, sha256) of the file the manifest names under ``key``, checked for form."""
    entry = manifest.get(key)
    name = entry.get("file") if isinstance(entry, dict) else None
    sha = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(name, str) or Path(name).name != name or not isinstance(sha, str):
        raise LdnsError(f"{Path(stage_dir) / STATE_NAME}: {key}: expected {{file: NAME, sha256: HEX}}, got "
                        f"{shown(entry)}")
    return Path(stage_dir) / name, sha


def clean_stage(stage_dir: str | Path) -> None:
    """Remove what the stage's committed manifest does not account for: temporaries, checkpoint
    or weights files it does not name, log lines past its recorded length. A writer resuming a
    run calls it before trusting anything in the stage directory."""
    stage_dir = Path(stage_dir)
    if not stage_dir.is_dir():
        return
    manifest = read_manifest(stage_dir)
    clean_temporaries(stage_dir)
    named: set[str] = set()
    if manifest is not None:
        named = {manifest_file(stage_dir, manifest, key)[0].name for key in ("checkpoint", "weights") if key in manifest}
    for path in stage_dir.iterdir():
        ours = path.name == WEIGHTS_NAME or (path.name.startswith(_CHECKPOINT_PREFIX) and path.suffix == ".safetensors")
        if ours and path.name not in named:
            remove(path)
    log_bytes = 0 if manifest is None or "log_bytes" not in manifest else _manifest_value(
        stage_dir, manifest, "log_bytes", int)
    truncate(stage_dir / LOG_NAME, log_bytes)


def _manifest_value(stage_dir: Path, manifest: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = manifest.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise LdnsError(f"{stage_dir / STATE_NAME}: {key}: missing or malformed (got {shown(value)}); "
                        "the file was changed or written by another version")
    return value


@attrs.define
class _Position:
    """Where training is: ``batch`` batches of epoch ``epoch`` (0-based) done, ``step`` optimiser
    steps in all; ``sums``/``batches`` accumulate the epoch's loss parts for its log line."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    sums: dict[str, float] = attrs.Factory(dict)
    batches: int = 0
    best_loss: float | None = None
    best_epoch: int = 0


class Shard(NamedTuple):
    """This process's part of one global batch: its trial ``indices`` (never empty), ``trials``
    of them its own (0 for an idle process's stand-in) out of the batch's ``batch_trials``."""

    indices: torch.Tensor
    trials: int
    batch_trials: int


def shard_batches(order: torch.Tensor, batch_size: int, rank: int, world_size: int) -> list[Shard]:
    """Split ``order`` (trial indices) into global batches of ``batch_size`` trials, as one process
    would take them, and give process ``rank`` of ``world_size`` trials rank, rank + W, ... of each.

    So the processes together see exactly the single process's batches, whatever their number. A
    batch with fewer trials than processes lends an idle process its first trial as a stand-in
    weighed 0, so that every process still takes part in the gradient all-reduce.
    """
    shards = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        mine = batch[rank::world_size]
        shards.append(Shard(mine if len(mine) else batch[:1], len(mine), len(batch)))
    return shards


class _Inputs:
    """A batch's tensors in a holder that Fabric's mixed-precision plugin leaves closed: it would cast
    float inputs (normalised latents) to bfloat16, rounding the data itself, where autocast alone
    chooses the precision op by op."""

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        self.tensors = tuple(tensors)


class _LossModule(torch.nn.Module):
    """A component and its loss as one ``forward``: the loss runs inside the strategy's wrapper (DDP
    readies its gradient all-reduce in ``forward``) and under its autocast, whichever method of the
    component it calls."""

    def __init__(self, module: torch.nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, inputs: _Inputs) -> dict[str, torch.Tensor]:
        return self.loss_fn(self.module, *inputs.tensors)


class Trainer:
    """Runs one stage; see the module docstring for what it writes and how it resumes.

    ``description`` names the stage (progress bar and seeds). ``stop`` is the :class:`StopSignals`
    of the caller (a stage runner); without one, :meth:`fit` listens for signals itself.

    Under data parallelism (a Fabric of W processes) ``config.batch_size`` stays the global batch:
    each process takes its share of every batch (:func:`shard_batches`) and weighs its loss by that
    share, so the all-reduced gradient is the single process's for a loss that is a mean over
    trials. Process 0 alone writes the stage directory; the others read what it committed.
    """

    def __init__(self, config: TrainConfig, stage_dir: str | Path, *, seed: int, fabric: Any = None,
                 progress: bool = True, description: str = "train",
                 on_epoch_end: EpochCallback | None = None, stop: StopSignals | None = None) -> None:
        self.config = config
        self.dir = Path(stage_dir)
        self.seed = seed
        self.fabric = fabric if fabric is not None else make_fabric("cpu")
        self.progress = progress
        self.description = description
        self.on_epoch_end = on_epoch_end
        self.stop = stop
        self._committed: Path | None = None  # the checkpoint file the manifest names

    # -- public --------------------------------------------------------------------------------
    def fit(self, module: torch.nn.Module, loss_fn: LossFn, train: Sequence[torch.Tensor],
            val: Sequence[torch.Tensor] | None = None, *, resume: bool = False,
            after_step: Callable[[], None] | None = None, select_best: bool = True,
            finalize: Callable[[torch.nn.Module], Mapping[str, Any]] | None = None) -> TrainResult:
        """Train ``module`` on ``train`` tensors (first axis = trials); keep the best weights on ``val``.

        ``after_step`` runs after every optimiser step (e.g. an EMA update). With
        ``select_best=False`` the validation loss is logged but the last weights are kept (for
        losses too noisy to select on, such as a diffusion loss at random timesteps).
        ``finalize`` adjusts the chosen weights once training ends, before they are committed (on
        every process alike, so it must be deterministic); the figures it returns are kept.
        """
        keep_freed_memory()  # each step reuses the last step's activation blocks (ldns_framework.allocator)
        with contextlib.nullcontext(self.stop) if self.stop is not None else StopSignals() as stop:
            return self._fit(stop, module, loss_fn, train, val, resume=resume, after_step=after_step,
                             select_best=select_best, finalize=finalize)

    def _fit(self, stop: StopSignals, module: torch.nn.Module, loss_fn: LossFn, train: Sequence[torch.Tensor],
             val: Sequence[torch.Tensor] | None, *, resume: bool, after_step: Callable[[], None] | None,
             select_best: bool, finalize: Callable[[torch.nn.Module], Mapping[str, Any]] | None) -> TrainResult:
        cfg = self.config
        n_train = int(train[0].shape[0])
        if n_train == 0:
            raise LdnsError(f"{self.description}: the training split is empty")
        parameters = [p for p in module.parameters() if p.requires_grad]
        if not parameters:
            raise LdnsError(f"{self.description}: {type(module).__name__} has no trainable parameters to optimise")
        manifest = on_rank_zero(self.fabric, lambda: self._open(resume))
        if manifest is not None and manifest.get("complete"):
            return self._load_complete(module, manifest)
        optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
        position, best_state, resume_rng, finalized = _Position(), None, None, {}
        if manifest is not None:
            position, best_state, resume_rng = self._restore(module, optimizer, manifest)
        resumed_from = position.epoch if manifest is not None else None
        model, optimizer = self.fabric.setup(_LossModule(module, loss_fn), optimizer)
        batch_size = cfg.batch_size or n_train
        world = self.fabric.world_size
        with tqdm(total=cfg.epochs, initial=position.epoch, desc=self.description, unit="epoch", dynamic_ncols=True,
                  disable=not (self.progress and self.fabric.is_global_zero)) as bar:
            for epoch in range(position.epoch, cfg.epochs):
                started = time.perf_counter()
                shards = self._epoch_shards(n_train, batch_size, epoch)
                total_steps = len(shards) * cfg.epochs
                if resume_rng is not None:  # mid-epoch resume: the RNGs as they were after the last step
                    set_rng_state(*resume_rng)
                    resume_rng = None
                model.train()
                for shard in shards[position.batch:]:
                    lr = cfg.lr * lr_factor(position.step, total_steps, cfg.warmup_fraction, cfg.final_lr_fraction)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    parts = model(self._batch(train, shard))
                    share = shard.trials / shard.batch_trials
                    optimizer.zero_grad(set_to_none=True)
                    # DDP averages the processes' gradients: weighing each by W x its share makes that the batch mean
                    self.fabric.backward(parts["loss"] * (share * world) if world > 1 else parts["loss"])
                    if cfg.grad_clip > 0:
                        self.fabric.clip_gradients(model, optimizer, max_norm=cfg.grad_clip)
                    optimizer.step()
                    if after_step is not None:
                        after_step()
                    position.step += 1
                    position.batch += 1
                    for key, value in parts.items():
                        position.sums[key] = position.sums.get(key, 0.0) + float(value.detach()) * share
                    position.batches += 1
                    if position.batch < len(shards) and stop.requested and world == 1:
                        self._commit(module, optimizer, position, best_state)
                        stop.check()
                sums = self._sum_over_processes(position.sums)
                record: dict[str, Any] = {"epoch": epoch + 1, "step": position.step,
                                          "lr": optimizer.param_groups[0]["lr"],
                                          **{f"train_{k}": v / max(1, position.batches) for k, v in sums.items()}}
                last_epoch = epoch + 1 == cfg.epochs
                has_val = val is not None and int(val[0].shape[0]) > 0
                if has_val and ((epoch + 1) % cfg.val_every == 0 or last_epoch):
                    val_parts = self._evaluate(model, val, batch_size)
                    record.update({f"val_{k}": v for k, v in val_parts.items()})
                    if select_best and (position.best_loss is None or val_parts["loss"] < position.best_loss):
                        position.best_loss, position.best_epoch = val_parts["loss"], epoch + 1
                        best_state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
                if not select_best or not has_val:
                    position.best_loss, position.best_epoch = record.get("val_loss"), epoch + 1
                record["seconds"] = round(time.perf_counter() - started, 3)
                if self.fabric.is_global_zero:
                    append_jsonl(self.dir / LOG_NAME, record)
                position = _Position(epoch=epoch + 1, step=position.step, best_loss=position.best_loss,
                                     best_epoch=position.best_epoch)
                stopping = agreed_stop(self.fabric, stop)
                if last_epoch:
                    finalized = self._finish(module, position, best_state if select_best else None, finalize)
                elif (epoch + 1) % cfg.checkpoint_every == 0 or stopping:
                    self._commit(module, optimizer, position, best_state)
                if self.on_epoch_end is not None and self.fabric.is_global_zero:
                    self.on_epoch_end(record)
                bar.set_postfix({k.replace("train_", ""): f"{v:.4g}" for k, v in record.items()
                                 if k.startswith(("train_", "val_loss"))}, refresh=False)
                bar.update(1)
                if stopping and not last_epoch:
                    raise Interrupted(stopping)
        return TrainResult(epochs_run=cfg.epochs - (resumed_from or 0), best_epoch=position.best_epoch,
                           best_val_loss=position.best_loss, resumed_from=resumed_from, finalized=finalized)

    @torch.no_grad()
    def _evaluate(self, model: torch.nn.Module, tensors: Sequence[torch.Tensor], batch_size: int) -> dict[str, float]:
        """Mean loss parts over ``tensors`` in eval mode (weighted by trials; the processes each
        score their share of every batch and the sums are added up)."""
        was_training = model.training
        model.eval()
        sums: dict[str, float] = {}
        n = int(tensors[0].shape[0])
        for shard in shard_batches(torch.arange(n), batch_size, self.fabric.global_rank, self.fabric.world_size):
            for key, value in model(self._batch(tensors, shard)).items():
                sums[key] = sums.get(key, 0.0) + float(value) * shard.trials
        model.train(was_training)
        return {k: v / n for k, v in self._sum_over_processes(sums).items()}

    # -- epochs --------------------------------------------------------------------------------
    def _epoch_shards(self, n_train: int, batch_size: int, epoch: int) -> list[Shard]:
        """This process's part of every batch of ``epoch``, the global RNGs seeded for the epoch
        first: the order depends on (seed, stage, epoch) only, every other draw also on the rank."""
        seed_everything(derive_seed(self.seed, self.description, "epoch", epoch, self.fabric.global_rank))
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.description, "order", epoch))
        order = torch.randperm(n_train, generator=generator)  # (trials,): the same on every process
        return shard_batches(order, batch_size, self.fabric.global_rank, self.fabric.world_size)

    def _batch(self, tensors: Sequence[torch.Tensor], shard: Shard) -> _Inputs:
        """The shard's trials of each tensor, on this process's device (only the batch is copied).
        A tensor may also be a row reader (``.shape`` and ``reader[index] -> tensor``, e.g. counts
        read per batch from a file: :class:`~ldns_framework.runner.CountRows`)."""
        return _Inputs([self.fabric.to_device(t[shard.indices]) for t in tensors])

    def _sum_over_processes(self, sums: dict[str, float]) -> dict[str, float]:
        """``sums`` added up over the processes (every process holds the same keys)."""
        if self.fabric.world_size == 1:
            return sums
        keys = sorted(sums)
        values = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self.fabric.device)
        return dict(zip(keys, self.fabric.all_reduce(values, reduce_op="sum").tolist()))

    # -- commits -------------------------------------------------------------------------------
    def _commit(self, module: torch.nn.Module, optimizer: Any, position: _Position,
                best_state: dict[str, torch.Tensor] | None) -> None:
        """Write a checkpoint of ``position`` to a new file, then the manifest naming it, then
        delete the previous one (see the module docstring)."""
        if self.fabric.is_global_zero:
            optim_tensors, optim_info = optimizer_to_tensors(optimizer)
            rng_tensors, rng_info = rng_state()
            tensors = {**{f"model/{k}": v for k, v in module.state_dict().items()},
                       **{f"optim/{k}": v for k, v in optim_tensors.items()},
                       **{f"best/{k}": v for k, v in (best_state or {}).items()}, **rng_tensors}
            path = self.dir / f"{_CHECKPOINT_PREFIX}{position.step:09d}-{position.batch:06d}.safetensors"
            sha = save_tensors(path, tensors)
            self._write_manifest(position, complete=False, checkpoint={"file": path.name, "sha256": sha},
                                 optimizer=optim_info, rng=rng_info,
                                 partial={"sums": position.sums, "batches": position.batches})
            if self._committed is not None and self._committed != path:
                remove(self._committed)
            self._committed = path
        self.fabric.barrier()

    def _finish(self, module: torch.nn.Module, position: _Position, best_state: dict[str, torch.Tensor] | None,
                finalize: Callable[[torch.nn.Module], Mapping[str, Any]] | None) -> dict[str, Any]:
        """Commit the product (best or last weights, then ``finalize``) and mark the stage complete;
        the module ends up holding the product. Returns ``finalize``'s figures."""
        if best_state is not None:
            module.load_state_dict(best_state)
        finalized = dict(finalize(module)) if finalize is not None else {}
        if self.fabric.is_global_zero:
            sha = save_tensors(self.dir / WEIGHTS_NAME, module.state_dict())
            self._write_manifest(position, complete=True, weights={"file": WEIGHTS_NAME, "sha256": sha},
                                 finalized=finalized)
            if self._committed is not None:
                remove(self._committed)
            self._committed = None
        self.fabric.barrier()
        return finalized

    def _write_manifest(self, position: _Position, *, complete: bool, **files_and_state: Any) -> None:
        log = self.dir / LOG_NAME
        write_json(self.dir / STATE_NAME, {
            "format": MANIFEST_FORMAT, "complete": complete, "epochs": self.config.epochs,
            "epoch": position.epoch, "batch": position.batch, "step": position.step,
            "best_val_loss": position.best_loss, "best_epoch": position.best_epoch,
            "log_bytes": log.stat().st_size if log.is_file() else 0, **files_and_state})

    # -- resume --------------------------------------------------------------------------------
    def _open(self, resume: bool) -> dict[str, Any] | None:
        """(Process 0.) The committed manifest, after :func:`clean_stage`; notes the checkpoint it
        names (deleted once superseded). Without ``resume``, a manifest is an error."""
        manifest = read_manifest(self.dir)
        if manifest is not None and not resume:
            raise LdnsError(f"{self.dir}: this stage already has a checkpoint; pass --resume to continue it or "
                            "choose a new --out")
        clean_stage(self.dir)
        named = manifest is not None and "checkpoint" in manifest
        self._committed = manifest_file(self.dir, manifest, "checkpoint")[0] if named else None
        return manifest

    def _load_complete(self, module: torch.nn.Module, manifest: dict[str, Any]) -> TrainResult:
        path, sha = manifest_file(self.dir, manifest, "weights")
        load_weights(module, load_tensors(path, sha), str(path))
        return TrainResult(epochs_run=0, best_epoch=int(manifest.get("best_epoch") or 0),
                           best_val_loss=manifest.get("best_val_loss"),
                           resumed_from=_manifest_value(self.dir, manifest, "epoch", int),
                           finalized=dict(manifest.get("finalized") or {}))

    def _restore(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, manifest: dict[str, Any]
                 ) -> tuple[_Position, dict[str, torch.Tensor] | None, tuple[dict[str, torch.Tensor], Any] | None]:
        """Load the checkpoint the manifest names (checksum verified): weights, optimiser, best
        weights; returns the position, the best weights and, mid-epoch, the RNG states to restore.
        The epoch's partial loss sums go to process 0 alone (they are added up over processes)."""
        if manifest.get("format") != MANIFEST_FORMAT:
            raise LdnsError(f"{self.dir / STATE_NAME}: checkpoint format {manifest.get('format')!r}, this version "
                            f"reads format {MANIFEST_FORMAT}; start a new run")
        path, sha = manifest_file(self.dir, manifest, "checkpoint")
        tensors = load_tensors(path, sha)
        load_weights(module, _prefixed(tensors, "model/"), str(path))
        optimizer_from_tensors(optimizer, _prefixed(tensors, "optim/"),
                               _manifest_value(self.dir, manifest, "optimizer", dict))
        partial = _manifest_value(self.dir, manifest, "partial", dict)
        position = _Position(epoch=_manifest_value(self.dir, manifest, "epoch", int),
                             batch=_manifest_value(self.dir, manifest, "batch", int),
                             step=_manifest_value(self.dir, manifest, "step", int),
                             sums=dict(partial.get("sums", {})) if self.fabric.is_global_zero else {},
                             batches=int(partial.get("batches", 0)),
                             best_loss=manifest.get("best_val_loss"), best_epoch=int(manifest.get("best_epoch") or 0))
        best = _prefixed(tensors, "best/") or None
        rng = None
        # Mid-epoch (a checkpoint a single process made): under DDP the other processes keep the
        # epoch's own streams rather than repeat process 0's draws.
        if position.batch and self.fabric.is_global_zero:
            rng = ({k: v for k, v in tensors.items() if k.startswith("rng/")},
                   _manifest_value(self.dir, manifest, "rng", dict))
        return position, best, rng


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
