"""The training engine shared by every stage and component.

A stage is a module plus a loss function ``loss_fn(module, *tensors) -> {"loss": ..., part: ...}``
over minibatches of in-memory tensors. The engine runs it through Lightning Fabric (devices,
precision, DDP), with AdamW, linear warm-up + cosine decay, gradient clipping, validation every
k epochs, best-on-validation weights, resumable checkpoints and a progress bar. It knows nothing
about S4 or diffusion.

Stage directory layout::

    weights.safetensors   best-on-validation weights (the stage's product)
    last.safetensors      weights + optimiser tensors of the last checkpoint (for --resume)
    state.json            epoch, step, best validation loss, optimiser scalars, complete flag
    log.jsonl             one line per epoch: lr, training and validation loss parts, seconds
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from ldns_framework.checkpoint import (load_module_weights, load_tensors, load_weights, optimizer_from_tensors,
                                       optimizer_to_tensors, save_tensors)
from ldns_framework.errors import LdnsError
from ldns_framework.rundir import append_jsonl, read_json, write_json
from ldns_framework.spec import TrainConfig

LossFn = Callable[..., dict[str, torch.Tensor]]
EpochCallback = Callable[[dict[str, Any]], None]


@attrs.frozen
class TrainResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: float | None
    resumed_from: int | None


def make_fabric(device: str = "auto", precision: str = "32-true", strategy: str = "auto", devices: Any = 1) -> Any:
    """A Lightning Fabric for ``run.device`` / ``run.precision`` (CPU unless a GPU is asked for or found)."""
    from lightning_fabric import Fabric

    if device.startswith("cuda:"):
        accelerator, devices = "cuda", [int(device.split(":")[1])]
    else:
        accelerator = device
    fabric = Fabric(accelerator=accelerator, devices=devices, precision=_fabric_precision(precision), strategy=strategy)
    return fabric


def _fabric_precision(precision: str) -> str:
    return {"32": "32-true"}.get(precision, precision)


def lr_factor(step: int, total_steps: int, warmup_fraction: float, final_fraction: float) -> float:
    """Linear warm-up to 1, then half-cosine decay to ``final_fraction`` at ``total_steps``."""
    warmup = int(round(warmup_fraction * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """Runs one stage; see the module docstring for what it writes."""

    def __init__(self, config: TrainConfig, stage_dir: str | Path, *, seed: int, fabric: Any = None,
                 progress: bool = True, description: str = "train",
                 on_epoch_end: EpochCallback | None = None) -> None:
        self.config = config
        self.dir = Path(stage_dir)
        self.seed = seed
        self.fabric = fabric if fabric is not None else make_fabric("cpu")
        self.progress = progress
        self.description = description
        self.on_epoch_end = on_epoch_end

    # -- public --------------------------------------------------------------------------------
    def is_complete(self) -> bool:
        state = self.dir / "state.json"
        return state.is_file() and bool(read_json(state).get("complete"))

    def fit(self, module: torch.nn.Module, loss_fn: LossFn, train: Sequence[torch.Tensor],
            val: Sequence[torch.Tensor] | None = None, *, resume: bool = False,
            after_step: Callable[[], None] | None = None, select_best: bool = True) -> TrainResult:
        """Train ``module`` on ``train`` tensors (first axis = trials); keep the best weights on ``val``.

        ``after_step`` runs after every optimiser step (e.g. an EMA update). With
        ``select_best=False`` the validation loss is logged but the last weights are kept (for
        losses too noisy to select on, such as a diffusion loss at random timesteps).
        """
        cfg = self.config
        state_path = self.dir / "state.json"
        if state_path.is_file() and not resume:
            raise LdnsError(f"{self.dir}: this stage already has a checkpoint; pass --resume to continue it or choose a new --out")
        n_train = int(train[0].shape[0])
        if n_train == 0:
            raise LdnsError(f"{self.description}: the training split is empty")
        batch_size = cfg.batch_size or n_train
        steps_per_epoch = math.ceil(n_train / batch_size / self.fabric.world_size)
        total_steps = steps_per_epoch * cfg.epochs

        parameters = [p for p in module.parameters() if p.requires_grad]
        if not parameters:
            raise LdnsError(f"{self.description}: {type(module).__name__} has no trainable parameters to optimise")
        optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
        start_epoch, step, best = 0, 0, {"loss": None, "epoch": 0}
        resumed_from = None
        if resume and state_path.is_file():
            start_epoch, step, best = self._restore(module, optimizer)
            resumed_from = start_epoch
        model, optimizer = self.fabric.setup(module, optimizer)

        bar = tqdm(total=cfg.epochs, initial=start_epoch, desc=self.description, unit="epoch", dynamic_ncols=True,
                   disable=not (self.progress and self.fabric.is_global_zero))
        for epoch in range(start_epoch, cfg.epochs):
            started = time.perf_counter()
            torch.manual_seed(self.seed * 100_003 + epoch)  # per-epoch randomness: resume reproduces it exactly
            loader = self._loader(train, batch_size, shuffle=True, epoch=epoch)
            model.train()
            sums: dict[str, float] = {}
            n_batches = 0
            for tensors in loader:
                lr = cfg.lr * lr_factor(step, total_steps, cfg.warmup_fraction, cfg.final_lr_fraction)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                parts = loss_fn(model, *tensors)
                optimizer.zero_grad(set_to_none=True)
                self.fabric.backward(parts["loss"])
                if cfg.grad_clip > 0:
                    self.fabric.clip_gradients(model, optimizer, max_norm=cfg.grad_clip)
                optimizer.step()
                step += 1
                if after_step is not None:
                    after_step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                n_batches += 1
            record: dict[str, Any] = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"],
                                      **{f"train_{k}": v / max(1, n_batches) for k, v in sums.items()}}
            last_epoch = epoch + 1 == cfg.epochs
            if val is not None and int(val[0].shape[0]) > 0 and ((epoch + 1) % cfg.val_every == 0 or last_epoch):
                val_parts = self.evaluate(model, loss_fn, val, batch_size)
                record.update({f"val_{k}": v for k, v in val_parts.items()})
                if select_best and (best["loss"] is None or val_parts["loss"] < best["loss"]):
                    best = {"loss": val_parts["loss"], "epoch": epoch + 1}
                    self._save_weights(module, "weights.safetensors")
            if not select_best or val is None or int(val[0].shape[0]) == 0:
                best = {"loss": record.get("val_loss"), "epoch": epoch + 1}
                if last_epoch:
                    self._save_weights(module, "weights.safetensors")
            record["seconds"] = round(time.perf_counter() - started, 3)
            if self.fabric.is_global_zero:
                append_jsonl(self.dir / "log.jsonl", record)
            if (epoch + 1) % cfg.checkpoint_every == 0 or last_epoch:
                self._checkpoint(module, optimizer, epoch + 1, step, best, complete=last_epoch)
            if self.on_epoch_end is not None and self.fabric.is_global_zero:
                self.on_epoch_end(record)
            bar.set_postfix({k.replace("train_", ""): f"{v:.4g}" for k, v in record.items()
                             if k.startswith(("train_", "val_loss"))}, refresh=False)
            bar.update(1)
        bar.close()
        if (self.dir / "weights.safetensors").is_file():
            load_module_weights(module, self.dir / "weights.safetensors")
        return TrainResult(epochs_run=cfg.epochs - start_epoch, best_epoch=best["epoch"],
                           best_val_loss=best["loss"], resumed_from=resumed_from)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, loss_fn: LossFn, tensors: Sequence[torch.Tensor],
                 batch_size: int) -> dict[str, float]:
        """Mean loss parts over ``tensors`` in eval mode (weighted by batch size)."""
        was_training = model.training
        model.eval()
        sums: dict[str, float] = {}
        total = 0
        for batch in self._loader(tensors, batch_size, shuffle=False, epoch=0):
            n = int(batch[0].shape[0])
            for key, value in loss_fn(model, *batch).items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
            total += n
        model.train(was_training)
        return {k: v / max(1, total) for k, v in sums.items()}

    # -- internals -----------------------------------------------------------------------------
    def _loader(self, tensors: Sequence[torch.Tensor], batch_size: int, *, shuffle: bool, epoch: int) -> Any:
        generator = torch.Generator().manual_seed(self.seed * 7919 + epoch)
        loader = DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, generator=generator)
        return self.fabric.setup_dataloaders(loader, use_distributed_sampler=self.fabric.world_size > 1)

    def _save_weights(self, module: torch.nn.Module, name: str) -> None:
        if self.fabric.is_global_zero:
            save_tensors(self.dir / name, module.state_dict())

    def _checkpoint(self, module: torch.nn.Module, optimizer: Any, epoch: int, step: int,
                    best: dict[str, Any], *, complete: bool) -> None:
        if self.fabric.is_global_zero:
            optim_tensors, optim_info = optimizer_to_tensors(optimizer)
            tensors = {**{f"model/{k}": v for k, v in module.state_dict().items()},
                       **{f"optim/{k}": v for k, v in optim_tensors.items()}}
            save_tensors(self.dir / "last.safetensors", tensors)
            write_json(self.dir / "state.json", {"epoch": epoch, "step": step, "best_val_loss": best["loss"],
                                                 "best_epoch": best["epoch"], "optimizer": optim_info,
                                                 "complete": complete, "epochs": self.config.epochs})
        self.fabric.barrier()

    def _restore(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, int, dict[str, Any]]:
        state = read_json(self.dir / "state.json")
        tensors = load_tensors(self.dir / "last.safetensors")
        weights = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        load_weights(module, weights, str(self.dir / "last.safetensors"))
        optimizer_from_tensors(optimizer, {k[len("optim/"):]: v for k, v in tensors.items() if k.startswith("optim/")},
                               state["optimizer"])
        return int(state["epoch"]), int(state["step"]), {"loss": state["best_val_loss"], "epoch": state["best_epoch"]}
