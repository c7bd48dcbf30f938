"""``psth``: peri-stimulus time histograms per condition, model vs data (METHOD.md section 7).

Both sides need an integer condition label per trial in the covariate named by ``covariate``
(shape (trials,) or (trials, 1)); e.g. samples generated for reach condition ``c`` carry
``c``. The PSTH of condition ``c`` is the mean count per bin and neuron over its trials
(:func:`ldns_framework.metrics.condition_psth`, which takes a fold's trial weights directly).
Conditions present on both sides are compared, over the bins both sides have.

Values: ``psth_rmse`` (Hz, or spikes/bin when time is read in bins) over conditions, bins and
neurons; ``psth_r``, Pearson r of the same entries. When either side lacks the covariate the
metric has nothing to compare and returns no values (an empty dict).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from ldns_framework import DataError, PooledMetric, SpikeData, metrics, option
from ldns_plugins.metrics.base import TimeUnit, check_weights, higher_better, lower_better, time_unit_option


@attrs.frozen
class PsthConfig:
    """Options of the ``psth`` metric."""

    covariate: str = option("condition", doc="Covariate holding one integer condition label per trial.")
    time_unit: str = time_unit_option("PSTH in Hz ('seconds') or spikes per bin ('bins')")


class _Pooled(NamedTuple):
    labels: np.ndarray  # (conditions,)
    psth: np.ndarray  # (conditions, time, neurons) in the context's unit


class Psth(TimeUnit, PooledMetric):
    """RMSE and Pearson r of the PSTH per condition."""

    config_class = PsthConfig

    def trial_statistics(self, spikes: SpikeData, context: str) -> tuple[SpikeData, np.ndarray] | None:
        name = self.config.covariate
        if name not in spikes.covariates:
            return None
        labels = np.asarray(spikes.covariates[name])
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise DataError(f"covariates[{name!r}]", f"expected one condition label per trial, shape "
                                                     f"({spikes.n_trials},) or ({spikes.n_trials}, 1), got {labels.shape}")
        if not np.array_equal(labels, np.round(labels)):
            raise DataError(f"covariates[{name!r}]", "expected integer condition labels, found fractional values")
        return spikes, labels.astype(np.int64)

    def pool(self, per_trial: tuple[SpikeData, np.ndarray] | None, weights: np.ndarray, context: str) -> _Pooled | None:
        if per_trial is None:
            return None
        spikes, labels = per_trial
        width = spikes.bin_width_s if context == "seconds" else None
        return _Pooled(*metrics.condition_psth(spikes.counts, labels, spikes.lengths, width,
                                               check_weights(weights, spikes.n_trials)))

    def compare_statistics(self, model: _Pooled | None, data: _Pooled | None, context: str) -> dict[str, float]:
        if model is None or data is None:
            return {}
        common, in_model, in_data = np.intersect1d(model.labels, data.labels, return_indices=True)
        if not common.size:
            return {"psth_rmse": float("nan"), "psth_r": float("nan")}
        time = min(model.psth.shape[1], data.psth.shape[1])
        a, b = model.psth[in_model, :time], data.psth[in_data, :time]
        return {"psth_rmse": metrics.rmse(a, b, finite_only=True), "psth_r": metrics.pearson_r(a, b)}

    def describe(self, context: str | None = None) -> dict[str, dict[str, str]]:
        unit = self.unit("rate", context)
        return {**lower_better(("psth_rmse",), unit), **higher_better(("psth_r",))}
