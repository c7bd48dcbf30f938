"""The stage runner: trains a spec's stages, in order, into a run directory.

Stages (:data:`STAGES`): ``data`` (load once, check, summarise) -> ``encoder`` (trained with the
observation model's likelihood, or with the factorised model an autoregressive one names) ->
``observation`` (fitted on the encoder's rates when it ``needs_fitting``) -> ``latents``
(normalisation statistics) -> ``generator`` (gradient-trained, or fitted in closed form).

The runner owns the run directory (spec, environment and provenance, resume), the lifecycle
hooks and the progress lines; it loads the data once and encodes the training split once per
fit, and hands back a :class:`~ldns_framework.model.TrainedModel`. Components are built
through the registry it is given.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path
from typing import Any, Iterator, Mapping

import attrs
import numpy as np
import torch

from ldns_framework.batch import Batch
from ldns_framework.checkpoint import save_tensors
from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError, PluginError
from ldns_framework.io.encodings import Encoded
from ldns_framework.io.lazy import LazyCounts
from ldns_framework.latents import LatentStats
from ldns_framework.model import (TrainedModel, build_autoencoder, build_generator, encode_trials, load_generator,
                                  load_stage_weights)
from ldns_framework.rundir import (STAGES, RunLock, clean_temporaries, create_run_dir, environment_record, json_text,
                                   read_json, write_json, yaml_text)
from ldns_framework.spec import COMPONENT_SECTIONS, ResolvedSpec, load_spec_file
from ldns_framework.training import (Interrupted, StopSignals, Trainer, agreed_stop, clean_stage, derive_seed,
                                     on_rank_zero, seed_everything, stage_complete)

__all__ = ["STAGES", "StageRunner", "check_provenance"]

#: Stages left out when the spec has no generator.
GENERATOR_STAGES = ("latents", "generator")


def say(message: str) -> None:
    """One progress line on stderr (printed with or without progress bars)."""
    print(message, file=sys.stderr, flush=True)


def resolve_run_spec(run_dir: Path, registry: Any) -> ResolvedSpec:
    """The run's resolved ``spec.yaml``; a component whose plugin is not installed here is named
    with the distribution that provided it (before the spec's own "unknown type" error)."""
    stored = read_json(run_dir / "environment.json", dict).get("plugins", {})
    for section, entry in stored.items():
        kind = COMPONENT_SECTIONS.get(section)
        if kind is not None and registry.catalogue.get(kind, entry["name"]) is None:
            raise LdnsError(f"{run_dir}: {section} {entry['name']!r} was provided by {entry['distribution']} "
                            f"{entry['version']}, which is not installed here; install that plugin")
    return registry.resolve(load_spec_file(run_dir / "spec.yaml"))


def check_provenance(run_dir: Path, spec: ResolvedSpec, registry: Any) -> None:
    """Fail when a plugin that provided one of the run's components is missing or another
    distribution provides it now; warn when only its version changed."""
    stored = read_json(run_dir / "environment.json", dict).get("plugins", {})
    current = registry.provenance(spec)
    for section, entry in stored.items():
        now = current.get(section)
        if now is None or now["distribution"] != entry["distribution"]:
            raise LdnsError(f"{run_dir}: {section} {entry['name']!r} was provided by {entry['distribution']} "
                            f"{entry['version']}, now by {now['distribution'] if now else 'nothing'}; install that plugin")
        if now["version"] != entry["version"]:
            say(f"warning: {section} {entry['name']!r} was trained with {entry['distribution']} {entry['version']}, "
                f"loading with {now['version']}")


def differing_keys(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings."""
    keys = []
    for key in sorted(set(a) | set(b)):
        path = f"{prefix}{key}"
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            keys += differing_keys(va, vb, path + ".")
        elif va != vb:
            keys.append(path)
    return keys


class StageRunner:
    """One fit of ``spec`` into ``run_dir``. Call :meth:`run` once."""

    def __init__(self, spec: ResolvedSpec, registry: Any, run_dir: str | Path, fabric: Any, *,
                 progress: bool = True) -> None:
        self.spec = spec
        self.registry = registry
        self.run_dir = Path(run_dir)
        self.fabric = fabric
        self.progress = progress
        # What the stages hand on to each other, filled in stage order.
        self._data: SpikeData | None = None
        self._encoder: Any = None
        self._observation: Any = None
        self._observation_fitted = False
        self._train_encoding: Encoded | None = None
        self._latent_stats: LatentStats | None = None
        self._conditioner: Any = None
        self._generator: Any = None
        self._completed: frozenset[str] = frozenset()  # stages a resumed run finds done
        self._stop = StopSignals()

    def stages(self, until: str | None = None) -> tuple[str, ...]:
        """The stages this fit runs, in order."""
        if until is not None and until not in STAGES:
            raise LdnsError(f"--until: unknown stage {until!r}; stages: {', '.join(STAGES)}")
        stages = STAGES[: STAGES.index(until) + 1] if until else STAGES
        if self.spec.components["generator"] is None:
            stages = tuple(s for s in stages if s not in GENERATOR_STAGES)
        return stages

    def run(self, data: SpikeData | None = None, *, until: str | None = None,
            resume: bool = False) -> tuple[SpikeData, TrainedModel | None]:
        """Run the stages (up to ``until``); returns the data and the trained model (None when the
        encoder stage was not reached). ``data`` replaces the spec's data source.

        Each stage starts by seeding the global RNGs from (seed, stage), so what it builds and
        draws never depends on which stages ran before in this process (a resumed run matches an
        uninterrupted one). SIGINT/SIGTERM stop the run at its next safe point with a checkpoint
        committed, raising :class:`~ldns_framework.training.Interrupted` (which names the run).
        """
        stages = self.stages(until)
        with self._stop, self._run_dir_lock(resume):
            if self.spec.run.num_threads:
                torch.set_num_threads(self.spec.run.num_threads)
            self._data = data
            try:
                for stage in stages:
                    signum = agreed_stop(self.fabric, self._stop)  # all processes stop together
                    if signum:
                        raise Interrupted(signum)
                    seed_everything(derive_seed(self.spec.seed, stage))
                    getattr(self, f"_stage_{stage}")(resume)
            except Interrupted as exc:
                exc.run_dir = self.run_dir
                raise
            except (LdnsError, MemoryError):
                raise
            except Exception as exc:  # noqa: BLE001 - a plugin's bug is named with its plugin
                culprit = self._culprit(exc)
                if culprit is None:
                    raise
                raise PluginError(f"{culprit} raised {type(exc).__name__}: {exc}") from exc
        return self._data, self._model()

    def _culprit(self, exc: BaseException) -> str | None:
        """``<kind> 'name' of plugin 'p' (dist 1.0)`` for the spec's component whose code raised
        ``exc`` (the innermost traceback frame inside a component's module), or None."""
        modules = {}
        for section, component in self.spec.components.items():
            if component is not None:
                entry = self.registry.entry(COMPONENT_SECTIONS[section], component.type)
                modules[entry.target.partition(":")[0]] = f"{section} {component.type!r} of {entry.where()}"
        blamed = None
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            module = frame.f_globals.get("__name__", "")
            owner = next((who for name, who in modules.items() if module == name or module.startswith(name + ".")), None)
            blamed = owner or blamed
        return blamed

    def _model(self) -> TrainedModel | None:
        if self._encoder is None:
            return None
        data = self._data
        return TrainedModel(self.spec, self.registry, encoder=self._encoder, observation=self._observation,
                            n_neurons=data.n_neurons, n_time=data.n_time, device=self.fabric.device,
                            run_dir=self.run_dir,
                            observation_fitted=self._observation_fitted, generator=self._generator,
                            conditioner=self._conditioner, latent_stats=self._latent_stats, data=lambda: data,
                            train_encoding=self._train_encoding)

    # -- run directory ------------------------------------------------------------------------
    @property
    def _writer(self) -> bool:
        """Whether this process writes the run: the only one, or process 0 of a data-parallel group."""
        return self.fabric is None or self.fabric.is_global_zero

    @contextlib.contextmanager
    def _run_dir_lock(self, resume: bool) -> Iterator[None]:
        """Create the run directory (whole, with its spec and environment) or check and clean the
        one being resumed, holding its lock meanwhile. Under DDP only process 0 opens, locks and
        writes it; the others wait for it and take the stages it found done (or its error)."""
        lock: RunLock | None = None

        def open_run_dir() -> frozenset[str]:
            nonlocal lock
            lock = self._open_run_dir(resume)
            try:
                return self._stages_done() if resume else frozenset()
            except BaseException:
                lock.release()
                raise

        self._completed = on_rank_zero(self.fabric, open_run_dir)
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    def _stages_done(self) -> frozenset[str]:
        """The stages whose product a resumed run loads instead of computing again."""
        done = {stage for stage in ("encoder", "observation", "generator") if stage_complete(self.run_dir / stage)}
        if (self.run_dir / "latent_stats.json").is_file():
            done.add("latents")
        return frozenset(done)

    def _open_run_dir(self, resume: bool) -> RunLock:
        spec_path = self.run_dir / "spec.yaml"
        if not spec_path.is_file():
            device = str(self.fabric.device) if self.fabric is not None else "cpu"
            return create_run_dir(self.run_dir, {
                "spec.yaml": yaml_text(self.spec.to_dict()),
                "environment.json": json_text(environment_record(
                    self.spec.seed, device, {"plugins": self.registry.provenance(self.spec),
                                             "processes": self.fabric.world_size if self.fabric is not None else 1}))})
        if not resume:
            raise LdnsError(f"{self.run_dir}: run directory already exists; pass --resume to continue it "
                            "or choose a new --out")
        lock = RunLock.acquire(self.run_dir)
        try:
            stored = resolve_run_spec(self.run_dir, self.registry)
            if stored != self.spec:
                differing = differing_keys(stored.to_dict(), self.spec.to_dict())
                raise LdnsError(f"{self.run_dir}: the spec differs from the run's spec.yaml at "
                                f"{', '.join(differing[:5])}; resume without a spec or use a new --out")
            check_provenance(self.run_dir, self.spec, self.registry)
            clean_temporaries(self.run_dir)
            for stage in STAGES:
                clean_stage(self.run_dir / stage)
        except BaseException:
            lock.release()
            raise
        return lock

    def _start(self, stage: str) -> None:
        if self._writer:  # hooks may write beside the run: process 0 alone calls them
            self.registry.hook.ldns_stage_start(stage=stage, run_dir=self.run_dir, spec=self.spec)

    def _end(self, stage: str, summary: Mapping[str, Any], line: str) -> None:
        self._say(f"{stage}: {line}")
        if self._writer:
            self.registry.hook.ldns_stage_end(stage=stage, run_dir=self.run_dir, summary=dict(summary))

    def _say(self, message: str) -> None:
        """A progress line, from process 0 alone under DDP."""
        if self._writer:
            say(message)

    def _trainer(self, stage: str) -> Trainer:
        def on_epoch_end(record: dict[str, Any]) -> None:
            self.registry.hook.ldns_epoch_end(stage=stage, epoch=record["epoch"], record=record)

        return Trainer(self.spec.train[stage], self.run_dir / stage, seed=self.spec.seed, fabric=self.fabric,
                       progress=self.progress, description=stage, on_epoch_end=on_epoch_end, stop=self._stop)

    # -- tensors ------------------------------------------------------------------------------
    def _split(self, split: str) -> SpikeData | None:
        """The trials of ``split``, or None when the data has no such split or it is empty."""
        if split not in self._data.splits or not len(self._data.splits[split]):
            return None
        return self._data.split(split)

    @staticmethod
    def _count_tensors(part: SpikeData | None, like: SpikeData) -> tuple[torch.Tensor | CountRows, torch.Tensor]:
        """(counts (B, T, N) float32, mask (B, T)) of ``part`` for the trainer; lazy counts stay in
        their file and are read per batch (:class:`CountRows`), only the mask is in memory."""
        if part is None:
            return torch.zeros(0, like.n_time, like.n_neurons), torch.zeros(0, like.n_time, dtype=torch.bool)
        counts = CountRows(part.counts) if part.lazy else torch.as_tensor(part.counts, dtype=torch.float32)
        return counts, torch.as_tensor(part.mask())  # (B, T, N), (B, T)

    def _encoded_train(self) -> Encoded:
        """The training split's latents and rates: encoded once per fit, by the first stage that needs them.
        Lazily read data keep no rates (as large as the counts) unless the observation model is fitted on them."""
        if self._train_encoding is None:
            self._train_encoding = encode_trials(self._encoder, self._data.split("train"), self.fabric.device,
                                                 progress=self.progress and self._writer,
                                                 trial_index=self._data.splits["train"],
                                                 rates=self._observation.needs_fitting or not self._data.lazy)
        return self._train_encoding

    # -- stages -------------------------------------------------------------------------------
    def _stage_data(self, resume: bool) -> None:
        self._start("data")
        if self._data is None:
            self._data = self.registry.build("data", self.spec.components["data"]).load()
        if self._split("train") is None:
            raise DataError("splits", "the data has no training trials (split 'train')")
        summary = self._data.summary()
        if self._writer:
            write_json(self.run_dir / "data" / "summary.json", summary)
        self._end("data", summary, f"{summary['trials']} trials "
                                   f"({', '.join(f'{k} {v}' for k, v in summary['splits'].items())}), "
                                   f"{summary['neurons']} neurons, {summary['bins']} bins")

    def _stage_encoder(self, resume: bool) -> None:
        self._encoder, self._observation = build_autoencoder(self.spec, self.registry, self._data.n_neurons)
        stage_dir = self.run_dir / "encoder"
        if "encoder" in self._completed:
            load_stage_weights(self._encoder, stage_dir)
            self._say("encoder: complete (loaded)")
            return
        self._start("encoder")
        likelihood = self._encoder_likelihood().to(self.fabric.device)  # scores on the encoder's device

        def loss_fn(model: Any, counts: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
            return model.training_loss(Batch(counts, mask), likelihood)

        train = self._count_tensors(self._split("train"), self._data)
        val = self._count_tensors(self._split("val"), self._data)
        result = self._trainer("encoder").fit(self._encoder, loss_fn, train, val, resume=resume,
                                              finalize=lambda encoder: encoder.calibrate(*train))
        calibrated = f"; calibrated: {_figures(result.finalized)}" if result.finalized else ""
        self._end("encoder", attrs.asdict(result),
                  f"{result.epochs_run} epochs, best validation loss {_number(result.best_val_loss)} "
                  f"at epoch {result.best_epoch}{calibrated}")

    def _encoder_likelihood(self) -> Any:
        """The observation model whose likelihood trains the encoder: the spec's own, or the
        factorised model it names in :meth:`~ldns_framework.interfaces.ObservationModel.encoder_observation`."""
        name = self._observation.encoder_observation()
        if name is None:
            return self._observation
        return self.registry.build("observation", {"type": name}, path="observation.encoder_observation",
                                   n_neurons=self._data.n_neurons)

    def _stage_observation(self, resume: bool) -> None:
        stage_dir = self.run_dir / "observation"
        kind = self.spec.components["observation"].type
        if "observation" in self._completed:
            load_stage_weights(self._observation, stage_dir)
            self._observation_fitted = True
            self._say("observation: complete (loaded)")
            return
        self._start("observation")
        summary: dict[str, Any] = {}
        self._observation.to("cpu")  # fitted on the CPU tensors of the training encoding
        if self._observation.needs_fitting:
            encoded = self._encoded_train()
            train = encoded.data
            summary = dict(self._observation.fit(torch.as_tensor(np.asarray(train.counts), dtype=torch.float32),
                                                 torch.as_tensor(encoded.rates), torch.as_tensor(train.mask())) or {})
        self._commit_fitted(stage_dir, self._observation, {"fit": summary})
        self._observation_fitted = True
        line = (f"fitted {kind}" + (f" ({_figures(summary)})" if summary else "")
                if self._observation.needs_fitting else f"{kind} needs no fitting")
        self._end("observation", summary, line)

    def _stage_latents(self, resume: bool) -> None:
        stats_path = self.run_dir / "latent_stats.json"
        if "latents" in self._completed:
            self._latent_stats = LatentStats.load(stats_path)
            self._say("latents: complete (loaded)")
            return
        self._start("latents")
        encoded = self._encoded_train()
        self._latent_stats = LatentStats.from_latents(encoded.latents, encoded.data.mask(), self.spec.latents.clamp)
        if self._writer:
            self._latent_stats.save(stats_path)
        summary = {"mean": self._latent_stats.mean.tolist(), "std": self._latent_stats.std.tolist()}
        std = self._latent_stats.std
        self._end("latents", summary, f"{std.size} channels normalised (std {float(std.min()):.3g} to "
                                      f"{float(std.max()):.3g}), clamp {self.spec.latents.clamp}")

    def _stage_generator(self, resume: bool) -> None:
        stage_dir = self.run_dir / "generator"
        kind = self.spec.components["generator"].type
        if "generator" in self._completed:
            self._conditioner, self._generator = load_generator(self.run_dir, self.spec, self.registry,
                                                                self._latent_dim())
            self._say("generator: complete (loaded)")
            return
        self._start("generator")
        self._conditioner = self.registry.build("conditioner", self.spec.components["conditioner"])
        self._conditioner.fit(self._data, self._data.splits["train"])
        if self._writer:
            write_json(self.run_dir / "conditioner.json", self._conditioner.state())
        self._generator = build_generator(self.spec, self.registry, self._latent_dim(), self._conditioner)
        train = self._generator_tensors(self._encoded_train())
        val_part = self._split("val")
        val = None if val_part is None else self._generator_tensors(
            encode_trials(self._encoder, val_part, self.fabric.device, progress=False,
                          trial_index=self._data.splits["val"], rates=False))
        if self._generator.closed_form:
            summary, line = self._fit_closed_form(stage_dir, train, val)
        else:
            summary, line = self._train_generator(kind, train, val, resume)
        self._end("generator", summary, line)

    def _commit_fitted(self, stage_dir: Path, module: Any, state: dict[str, Any]) -> None:
        """A fitted (not gradient-trained) stage: its weights (when it has any), then its manifest
        naming them with their sha256, marked complete (process 0 writes; every process fitted alike)."""
        if not self._writer:
            return
        weights = module.state_dict()
        if weights:
            state = {**state, "weights": {"file": "weights.safetensors",
                                          "sha256": save_tensors(stage_dir / "weights.safetensors", weights)}}
        write_json(stage_dir / "state.json", {"complete": True, **state})

    def _latent_dim(self) -> int:
        return int(self._latent_stats.mean.shape[0])

    def _generator_tensors(self, encoded: Encoded) -> tuple[torch.Tensor, ...]:
        """(normalised latents (B, T, D), mask (B, T)[, condition]) of the encoded trials."""
        mask = encoded.data.mask()  # (B, T)
        latents = self._latent_stats.normalise(encoded.latents) * mask[..., None]  # (B, T, D)
        tensors = [torch.as_tensor(latents, dtype=torch.float32), torch.as_tensor(mask)]
        condition = self._conditioner.from_data(self._data, np.asarray(encoded.trial_index))
        if condition is not None:
            tensors.append(torch.as_tensor(condition, dtype=torch.float32))
        return tuple(tensors)

    def _fit_closed_form(self, stage_dir: Path, train: tuple[torch.Tensor, ...],
                         val: tuple[torch.Tensor, ...] | None) -> tuple[dict[str, Any], str]:
        """A closed-form generator: one ``fit`` on all training latents, no optimiser."""
        latents, mask, *condition = train
        summary = dict(self._generator.fit(latents, mask, condition[0] if condition else None) or {})
        if val is not None:
            val_latents, val_mask, *val_condition = val
            with torch.no_grad():
                parts = self._generator.training_loss(val_latents, val_mask, val_condition[0] if val_condition else None)
            summary["val_loss"] = float(parts["loss"])
        self._commit_fitted(stage_dir, self._generator, {"closed_form": True, "fit": summary})
        kind = self.spec.components["generator"].type
        return summary, f"fitted {kind} in closed form" + (f" ({_figures(summary)})" if summary else "")

    def _train_generator(self, kind: str, train: tuple[torch.Tensor, ...], val: tuple[torch.Tensor, ...] | None,
                         resume: bool) -> tuple[dict[str, Any], str]:
        if not any(p.requires_grad for p in self._generator.parameters()):
            raise LdnsError(f"generator {kind!r} ({type(self._generator).__name__}) has no trainable parameters "
                            "and closed_form is False: give it parameters, or declare closed_form = True and "
                            "implement fit()")

        def loss_fn(model: Any, latents: torch.Tensor, mask: torch.Tensor,
                    condition: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
            return model.training_loss(latents, mask, condition)

        result = self._trainer("generator").fit(self._generator, loss_fn, train, val, resume=resume,
                                                after_step=self._generator.after_optimizer_step, select_best=False)
        line = f"{result.epochs_run} epochs, last validation loss {_number(result.best_val_loss)}"
        return attrs.asdict(result), line


class CountRows:
    """Lazy counts as the trainer indexes a tensor: ``rows[index]`` reads those trials from the
    file as a float32 (B, T, N) tensor, in the order of ``index``; nothing else is held."""

    def __init__(self, counts: LazyCounts) -> None:
        self._counts = counts.astype(np.float32)  # converted while read, batch by batch
        self.shape = torch.Size(counts.shape)  # (trials, T, N)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._counts[index.numpy()])  # (B, T, N)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _figures(summary: Mapping[str, Any]) -> str:
    """A fit's summary figures on one line (numbers to 4 significant digits, at most five)."""
    items = [f"{k} {_number(v) if isinstance(v, float) else v}" for k, v in summary.items()
             if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    return ", ".join(items[:5])
