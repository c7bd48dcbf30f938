"""The integration check, one per kind: a tiny spec with the component swapped in trains, saves,
reloads through the run directory's own loader, and samples.

The spec's other sections use the kit's reference components (:mod:`ldns_framework.testing.reference`,
registered into the registry under test as plugin ``ldns-kit``), so the check depends on no other
installed plugin. The component is named in the spec by its registered name (``ldns check KIND
NAME``) or, when the kit was given only a factory, registered in-process under
``kit-subject-<class>`` from its importable class, with its config as the section's options.
It runs through the public API only::

    Pipeline.from_spec(spec, registry=registry).fit(data=data, run_dir=run, progress=False)
    Pipeline.load(run, registry=registry).sample(4, seed=0, progress=False)

and checks that the reloaded run samples valid counts, the same as the fitted pipeline draws with
the same seed (so nothing the component needs is left out of the run directory). A metric is
computed on the samples against the data.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import tempfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ldns_framework._markers import hookimpl
from ldns_framework.data import SpikeData
from ldns_framework.structure import unstructure_config
from ldns_framework.testing.core import KINDS, CheckSkipped, Subject, fail, register_check
from ldns_framework.testing.reference import register_reference_components, synthetic_spike_data

__all__ = ["INTEGRATION_CHECK", "integration_spec"]

INTEGRATION_CHECK = "integration_trains_saves_reloads_and_samples"
#: The spec section each kind is swapped into (a metric is computed on the samples instead).
SECTIONS = {"encoder": "encoder", "observation": "observation", "generator": "generator",
            "conditioner": "conditioner", "data": "data"}


def integration_spec(kind: str, section: dict[str, Any] | None, epochs: int = 2) -> dict[str, Any]:
    """The kit's tiny spec with ``section`` (``{"type": ..., options}``) swapped in for ``kind``."""
    stage = {"epochs": epochs, "batch_size": 8, "val_every": 1, "checkpoint_every": 1}
    spec: dict[str, Any] = {
        "seed": 0,
        "data": {"type": "kit-data"},
        "encoder": {"type": "kit-linear-encoder"},
        "observation": {"type": "kit-count-model"},
        "generator": {"type": "kit-gaussian"},
        "conditioner": {"type": "kit-unconditional"},
        "train": {"encoder": dict(stage), "generator": dict(stage)},
        "run": {"device": "cpu"},
    }
    if section is not None and kind in SECTIONS:
        spec[SECTIONS[kind]] = dict(section)
    return spec


class _SubjectPlugin:
    """An in-process plugin registering one importable component class under a kit name."""

    def __init__(self, kind: str, name: str, target: str) -> None:
        self.kind, self.name, self.target = kind, name, target

    @hookimpl
    def ldns_register_components(self, registrar: Any) -> None:
        registrar.add(self.kind, self.name, self.target, summary="the component under the conformance kit")


def _section(subject: Subject) -> dict[str, Any]:
    """The spec section naming the component: its registered name, or its class registered now."""
    if subject.registered_name is not None:
        return {"type": subject.registered_name, **subject.options}
    cls = type(subject.probe)
    module, qualname = cls.__module__, cls.__qualname__
    try:
        importable = "<locals>" not in qualname and getattr(importlib.import_module(module), qualname, None) is cls
    except ImportError:
        importable = False
    if not importable:
        raise CheckSkipped(f"{INTEGRATION_CHECK}: {module}.{qualname} cannot be imported by name (defined inside a "
                           f"function?), so no spec can name it; define it at module level or register it")
    name = f"kit-subject-{cls.__name__.lower()}"
    plugin = f"ldns-kit-subject-{subject.kind}-{cls.__name__}"
    if plugin not in subject.registry.loaded:
        subject.registry.register(_SubjectPlugin(subject.kind, name, f"{module}:{qualname}"), plugin)
    config = getattr(subject.probe, "config", None)
    return {"type": name, **(unstructure_config(config) if attrs.has(type(config)) else {})}


def _data(subject: Subject) -> SpikeData | None:
    """The data the run is fitted on: None for a data source (the run loads it), else the subject's or the kit's."""
    if subject.kind == "data":
        return None
    own = subject.data()
    return own if own is not None else synthetic_spike_data(seed=subject.settings.seed)


def _condition(loaded: Any, data: SpikeData | None) -> Any:
    """Conditions for 4 sampled trials: the run's conditioner applied to training trials (None when unconditional)."""
    conditioner = getattr(getattr(loaded, "model", loaded), "conditioner", None)
    if data is None or conditioner is None or getattr(conditioner, "kind", None) is None:
        return None
    condition = conditioner.from_data(data, data.splits["train"][:4])
    return None if condition is None else np.asarray(condition)


def _applies(subject: Subject) -> str | None:
    if subject.registry is None:
        return "needs a registry: give registry= (ldns check KIND NAME and the contract classes do)"
    return None


def _stage(name: str, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the failing stage is the message
        raise fail(name, f"{what} failed: {type(exc).__name__}: {exc}") from None


def _integration(subject: Subject, name: str) -> None:
    """A tiny spec with the component swapped in trains, saves, reloads through the run directory and samples."""
    from ldns_framework.pipeline import Pipeline

    registry = subject.registry
    register_reference_components(registry)
    section = None if subject.kind == "metric" else _section(subject)
    spec = integration_spec(subject.kind, section, subject.settings.integration_epochs)
    data = _data(subject)
    # The stages' summary lines would interleave with the kit's table; failures are reported below.
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stderr(io.StringIO()):
        run = Path(folder) / "run"
        fitted = _stage(name, "building the spec", Pipeline.from_spec, spec, registry=registry)
        _stage(name, "fit (train and save)", fitted.fit, data=data, run_dir=run, progress=False)
        loaded = _stage(name, "Pipeline.load (reload from the run directory)", Pipeline.load, run, registry=registry)
        condition = _condition(loaded, data)
        samples = _stage(name, "sample from the reloaded run", loaded.sample, 4, seed=0, condition=condition,
                         progress=False)
        again = _stage(name, "sample from the fitted pipeline", fitted.sample, 4, seed=0, condition=condition,
                       progress=False)
    counts = np.asarray(samples.counts)
    if counts.ndim != 3 or counts.shape[0] != 4 or (counts < 0).any() or not np.array_equal(counts, np.round(counts)):
        raise fail(name, f"the reloaded run sampled {counts.shape} {counts.dtype} counts, expected 4 trials of "
                         f"non-negative integers")
    for part in ("latents", "rates", "counts"):
        reloaded, fitted_part = getattr(samples, part, None), getattr(again, part, None)
        if reloaded is None or fitted_part is None:
            continue
        if not np.allclose(np.asarray(reloaded, dtype=np.float64), np.asarray(fitted_part, dtype=np.float64),
                           rtol=1e-5, atol=1e-6):
            raise fail(name, f"the reloaded run samples other {part} than the fitted pipeline with the same seed: "
                             f"some state of the component is not saved in the run directory (or not loaded back)")
    if subject.kind == "metric":  # data is the subject's or the kit's (only a data source loads its own)
        model = SpikeData(counts.astype(np.int64), lengths=np.asarray(samples.lengths), bin_width_s=data.bin_width_s)
        values = _stage(name, "compute on the samples", subject.component().compute, model, data)
        bad = {k: v for k, v in values.items() if not math.isfinite(float(v))}
        if bad:
            raise fail(name, f"values on generated samples are not finite: {bad}")


for _kind in KINDS:
    register_check(_kind, INTEGRATION_CHECK, applies=_applies)(_integration)
