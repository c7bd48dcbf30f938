"""The Python API, mirroring the CLI (sklearn-style ``fit`` returning self).

``Pipeline`` composes the two objects that do the work: a
:class:`~ldns_framework.runner.StageRunner` trains the stages into a run directory, and the
:class:`~ldns_framework.model.TrainedModel` it produces (or that :meth:`Pipeline.load` reopens)
encodes, samples, scores and evaluates. The pipeline keeps the data it loaded, so a fit
followed by sampling and evaluation loads the data source once. It is a composition root: it
discovers the registry when none is given.

Usage::

    pipeline = Pipeline.from_spec("docs/specs/lorenz-small.yaml").fit(run_dir="runs/lorenz")
    samples = pipeline.sample(200, seed=0, steps=25)   # the spec's sampler, 25 steps
    records = pipeline.evaluate(samples)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.errors import LdnsError, SpecError
from ldns_framework.io.encodings import Encoded
from ldns_framework.io.samples import Samples
from ldns_framework.limits import torch_device
from ldns_framework.model import TrainedModel
from ldns_framework.runner import STAGES, StageRunner, check_provenance, resolve_run_spec
from ldns_framework.spec import ResolvedSpec, apply_overrides, load_spec_file
from ldns_framework.training import make_fabric

__all__ = ["STAGES", "Pipeline"]


class Pipeline:
    """A spec, its registry and, once fitted or loaded, its trained model."""

    def __init__(self, spec: ResolvedSpec, registry: Any = None, run_dir: str | Path | None = None) -> None:
        self.spec = spec
        self.registry = registry if registry is not None else _discover()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._fabric: Any = None
        self._data: SpikeData | None = None
        self._model: TrainedModel | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: str | Path | Mapping[str, Any], overrides: Sequence[str] = (),
                  registry: Any = None) -> "Pipeline":
        """From a YAML path or a dict; ``overrides`` are ``dotted.key=value`` strings."""
        registry = registry if registry is not None else _discover()
        raw = load_spec_file(spec) if isinstance(spec, (str, Path)) else dict(spec)
        return cls(registry.resolve(apply_overrides(raw, list(overrides))), registry)

    @classmethod
    def load(cls, run_dir: str | Path, registry: Any = None, device: str | None = None) -> "Pipeline":
        """Reopen a run directory for inference: its resolved spec, checked provenance and trained weights.

        ``device`` ('auto', 'cpu', 'cuda', 'cuda:N', 'mps'): where to encode and sample; None is
        the run's ``run.device`` when this machine has it, else 'auto' (said on stderr), so a run
        trained on a GPU node reopens anywhere. A device asked for that is absent is an error.
        """
        run_dir = Path(run_dir)
        if not (run_dir / "spec.yaml").is_file():
            raise LdnsError(f"{run_dir}: not a run directory (no spec.yaml)")
        registry = registry if registry is not None else _discover()
        pipeline = cls(resolve_run_spec(run_dir, registry), registry, run_dir)
        check_provenance(run_dir, pipeline.spec, registry)
        target = torch_device(device, "device") if device is not None else _run_device(pipeline.spec)
        pipeline._model = TrainedModel.load(run_dir, pipeline.spec, registry, target, data=pipeline.load_data)
        return pipeline

    @property
    def fabric(self) -> Any:
        """The Lightning Fabric of ``run.device`` / ``run.precision`` for training (made on first use;
        inference after :meth:`load` runs on plain torch and never makes one)."""
        if self._fabric is None:
            run = self.spec.run
            self._fabric = make_fabric(run.device, run.precision, run.strategy, run.devices, run.num_nodes)
        return self._fabric

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, data: SpikeData | None = None, run_dir: str | Path | None = None, *, until: str | None = None,
            resume: bool = False, progress: bool = True) -> "Pipeline":
        """Run every stage (or up to ``until``) into ``run_dir``; ``resume`` continues a stopped run.

        ``data`` replaces the spec's data source; otherwise the source is loaded once here.
        """
        self.run_dir = Path(run_dir) if run_dir is not None else self.run_dir
        if self.run_dir is None:
            raise LdnsError("fit needs a run directory (run_dir=...)")
        if self._fabric is None:
            self.spec.run.check_machine()  # the spec may come from another machine: say what this one lacks
        runner = StageRunner(self.spec, self.registry, self.run_dir, self.fabric, progress=progress)
        self._data, model = runner.run(data if data is not None else self._data, until=until, resume=resume)
        if model is not None:
            self._model = model
        return self

    # -- the trained model -----------------------------------------------------------------
    @property
    def model(self) -> TrainedModel:
        """The trained model; an error until :meth:`fit` reached the encoder or :meth:`load` ran."""
        if self._model is None:
            raise LdnsError("the pipeline has no trained encoder: call fit() or Pipeline.load(run_dir)")
        return self._model

    @property
    def encoder(self) -> Any:
        return self.model.encoder

    @property
    def observation(self) -> Any:
        return self.model.observation

    @property
    def generator(self) -> Any:
        """The trained generator, or None when the spec has none or its stage has not run."""
        return self._model.generator if self._model is not None else None

    def load_data(self) -> SpikeData:
        """The spec's data: loaded from its source on first use (or the data given to :meth:`fit`), then kept."""
        if self._data is None:
            self._data = self.registry.build("data", self.spec.components["data"]).load()
        return self._data

    def encode(self, data: SpikeData, batch_size: int = 256, progress: bool = True,
               trial_index: np.ndarray | None = None) -> Encoded:
        """Latents and rates of real trials; see :meth:`TrainedModel.encode`."""
        return self.model.encode(data, batch_size=batch_size, progress=progress, trial_index=trial_index)

    def encode_split(self, split: str) -> Encoded:
        """Encode one split of the spec's data ('train', 'val', 'test' or 'all')."""
        return self.model.encode_split(split)

    def log_prob(self, data: SpikeData) -> Any:
        """Per-trial log-likelihood (trials,) of real counts; see :meth:`TrainedModel.log_prob`."""
        return self.model.log_prob(data)

    def sample(self, n: int, *, length: int | None = None, lengths: Any = None, condition: Any = None,
               sampler: str | None = None, seed: int = 0, observation: str | None = None,
               batch_size: int | None = None, progress: bool = True, **sampler_options: Any) -> Samples:
        """Draw ``n`` trials; see :meth:`TrainedModel.sample` (``sampler_options`` e.g. ``steps=25``)."""
        return self.model.sample(n, length=length, lengths=lengths, condition=condition, sampler=sampler, seed=seed,
                                 observation=observation, batch_size=batch_size, progress=progress, **sampler_options)

    def write_samples(self, samples: Samples, path: str | Path) -> Path:
        """Write samples (see :mod:`ldns_framework.io.samples`) and tell the plugins."""
        return self.model.write_samples(samples, path)

    def evaluate(self, samples: Samples | str | Path | None = None, **options: Any) -> list[dict[str, Any]]:
        """Compare samples with the real data; see :meth:`TrainedModel.evaluate`."""
        return self.model.evaluate(samples, **options)

    def save(self, directory: str | Path) -> Path:
        """Copy the fitted run directory to ``directory`` (which must not exist); returns it."""
        if self.run_dir is None or not (self.run_dir / "spec.yaml").is_file():
            raise LdnsError("save: nothing to save; fit() or load() a run first")
        directory = Path(directory)
        if directory.exists():
            raise LdnsError(f"{directory}: already exists; choose a new directory")
        shutil.copytree(self.run_dir, directory)
        return directory


def _run_device(spec: ResolvedSpec) -> Any:
    """The torch device of ``run.device`` when this machine has it; else the best one here, said on
    stderr (a run trained on a GPU node samples and encodes anywhere)."""
    try:
        return torch_device(spec.run.device)
    except SpecError as exc:
        print(f"note: {exc}; using 'auto' to load this run (choose with --device)", file=sys.stderr)
        return torch_device("auto")


def _discover() -> Any:
    from ldns_registry import Registry

    return Registry.discover()
