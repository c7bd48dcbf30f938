"""Named property checks for metrics: declared directions, finite values, perfect scores on identical inputs.

Inputs: the "data" side is the kit's seeded spike data (:func:`synthetic_spike_data`, with
covariates) or what ``make_data`` returns (``MetricContract.make_data``); the "model" side is the
same trials shifted in time by three bins, so it differs from the data but keeps its shape and
covariates. A metric that returns no values on these inputs (it needs covariates they lack) has its
value checks skipped at run time, with that reason.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.interfaces import PooledMetric
from ldns_framework.testing.core import CheckSkipped, KitSettings, Subject, fail, register_check
from ldns_framework.testing.reference import synthetic_spike_data

__all__ = ["MetricSubject", "shifted"]

DIRECTIONS = ("lower", "higher")


def shifted(data: SpikeData, bins: int = 3) -> SpikeData:
    """``data`` with every trial's counts rolled ``bins`` bins in time (zero again on padding)."""
    counts = np.roll(data.counts, bins, axis=1) * data.mask()[..., None]
    return SpikeData(counts, lengths=data.lengths, covariates=data.covariates, bin_width_s=data.bin_width_s,
                     neuron_ids=data.neuron_ids, metadata=data.metadata)


class MetricSubject(Subject):
    """A metric and its two inputs."""

    kind = "metric"

    def __init__(self, factory: Callable[..., Any], settings: KitSettings, *,
                 data: Callable[[], SpikeData] | None = None, **where: Any) -> None:
        self.make_data = data or (lambda: synthetic_spike_data(n_trials=30, length=20, seed=settings.seed))
        self._inputs: tuple[SpikeData, SpikeData] | None = None
        super().__init__(factory, settings, **where)

    def inputs(self) -> tuple[SpikeData, SpikeData]:
        """(model side, data side)."""
        if self._inputs is None:
            data = self.make_data()
            self._inputs = (shifted(data), data)
        return self._inputs

    def data(self) -> SpikeData:
        """The real-data side of the comparisons (what ``make_data`` returns)."""
        return self.inputs()[1]

    def values(self, name: str, model: SpikeData | None = None, data: SpikeData | None = None) -> dict[str, Any]:
        """compute(model, data) (default: the two inputs); CheckSkipped when it returns nothing."""
        default_model, default_data = self.inputs()
        out = self.component().compute(model if model is not None else default_model,
                                       data if data is not None else default_data)
        if not isinstance(out, dict):
            raise fail(name, f"compute must return a dict of name -> float, got {type(out).__name__}")
        if not out:
            raise CheckSkipped(f"{name}: compute returned no values on the kit's inputs (does it need covariates "
                               f"they lack? give make_data)")
        return out


def _check(name: str, **kwargs: Any) -> Any:
    return register_check("metric", name, **kwargs)


def _pooled(subject: Subject) -> str | None:
    return None if isinstance(subject.probe, PooledMetric) else "not a PooledMetric"


def _context(metric: Any, data: SpikeData) -> Any:
    return metric.prepare(data) if isinstance(metric, PooledMetric) else None


def _same_values(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """None when both hold the same names and (nearly) equal values; else what differs."""
    if set(a) != set(b):
        return f"names {sorted(a)} vs {sorted(b)}"
    for key in a:
        x, y = float(a[key]), float(b[key])
        if not (x == y or (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)):
            return f"{key}: {x!r} vs {y!r}"
    return None


@_check("values_are_finite_numbers")
def _finite(subject: MetricSubject, name: str) -> None:
    """compute returns a dict of names -> finite real numbers."""
    for key, value in subject.values(name).items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise fail(name, f"values must map names to numbers, got {key!r}: {value!r}")
        if not math.isfinite(float(value)):
            raise fail(name, f"value {key!r} is {value}")


@_check("every_value_declares_its_direction")
def _described(subject: MetricSubject, name: str) -> None:
    """describe(context) gives every returned value a unit and better = "lower" or "higher"."""
    values = subject.values(name)
    metric, (_, data) = subject.component(), subject.inputs()
    described = metric.describe(_context(metric, data))
    for key in values:
        entry = described.get(key) if isinstance(described, dict) else None
        if not isinstance(entry, dict) or entry.get("better") not in DIRECTIONS:
            raise fail(name, f"value {key!r} has no declared direction: describe() must map it to "
                             f"{{'unit': ..., 'better': 'lower' | 'higher'}}, got {entry!r}")
        if not isinstance(entry.get("unit"), str):
            raise fail(name, f"value {key!r}: describe() must give its unit as a string ('' when unitless)")


@_check("identical_inputs_score_perfectly")
def _perfect(subject: MetricSubject, name: str) -> None:
    """On identical inputs a lower-is-better value is 0, and a higher-is-better one is at least its value on different
    inputs; values declared ``against: condition`` (scored against the requested conditions) are exempt."""
    _, data = subject.inputs()
    same, different = subject.values(name, data, data), subject.values(name)
    metric = subject.component()
    described = metric.describe(_context(metric, data)) or {}
    for key, value in same.items():
        if (described.get(key) or {}).get("against") == "condition":
            continue
        better = (described.get(key) or {}).get("better")
        if better == "lower" and not abs(float(value)) <= 1e-6:
            raise fail(name, f"{key} is {value!r} for identical model and data; a lower-is-better value must be 0 there")
        if better == "higher" and key in different and float(value) < float(different[key]) - 1e-9:
            raise fail(name, f"{key} is {value!r} for identical inputs but {different[key]!r} for different ones; a "
                             f"higher-is-better value must be best on identical inputs")


@_check("trial_order_does_not_matter")
def _order(subject: MetricSubject, name: str) -> None:
    """Permuting the model's trials leaves every value unchanged."""
    model, data = subject.inputs()
    order = np.random.default_rng(subject.settings.seed).permutation(model.n_trials)
    difference = _same_values(subject.values(name), subject.values(name, model.subset(order), data))
    if difference:
        raise fail(name, f"values changed when the model's trials were permuted ({difference})")


@_check("pooled_compute_equals_unit_weights", applies=_pooled)
def _unit_weights(subject: MetricSubject, name: str) -> None:
    """PooledMetric: compute equals compare_statistics of the statistics pooled with unit weights."""
    metric, (model, data) = subject.component(), subject.inputs()
    context = metric.prepare(data)
    pooled = [metric.pool(metric.trial_statistics(side, context), np.ones(side.n_trials, np.int64), context)
              for side in (model, data)]
    difference = _same_values(subject.values(name), metric.compare_statistics(*pooled, context))
    if difference:
        raise fail(name, f"compute differs from pooling with unit weights ({difference})")


@_check("pooled_weights_are_multiplicities", applies=_pooled)
def _multiplicities(subject: MetricSubject, name: str) -> None:
    """PooledMetric: pooling with integer weights equals computing on the trials repeated that many times."""
    metric, (model, data) = subject.component(), subject.inputs()
    weights = np.random.default_rng(subject.settings.seed + 1).integers(0, 3, model.n_trials)
    weights[0] = 2
    context = metric.prepare(data)
    pooled_model = metric.pool(metric.trial_statistics(model, context), weights, context)
    pooled_data = metric.pool(metric.trial_statistics(data, context), np.ones(data.n_trials, np.int64), context)
    resampled = model.subset(np.repeat(np.arange(model.n_trials), weights))
    difference = _same_values(metric.compare_statistics(pooled_model, pooled_data, context),
                              subject.values(name, resampled, data))
    if difference:
        raise fail(name, f"pooling with weights {weights.tolist()} differs from the trials repeated that often ({difference})")
