"""``psth``: peri-stimulus time histograms per condition, model vs data (METHOD.md section 7).

Both sides need an integer condition label per trial in the covariate named by ``covariate``
(shape (trials,) or (trials, 1)); e.g. samples generated for reach condition ``c`` carry
``c``. The PSTH of condition ``c`` is the mean count per bin and neuron over its trials
(:func:`ldns_framework.metrics.psth`). Conditions present on both sides are compared, over
the bins both sides have.

Values: ``psth_rmse`` (Hz, or spikes/bin when time is read in bins) over conditions, bins and
neurons; ``psth_r``, Pearson r of the same entries. When either side lacks the covariate the
metric has nothing to compare and returns no values (an empty dict).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np

from ldns_framework import DataError, SpikeData, metrics, option
from ldns_plugins.metrics.base import (TIME_UNITS, PooledMetric, check_weights, higher_better, lower_better,
                                       resample_index, resolve_time_unit, unit_label)


@attrs.frozen
class PsthConfig:
    """Options of the ``psth`` metric."""

    covariate: str = option("condition", doc="Covariate holding one integer condition label per trial.")
    time_unit: str = option("auto", doc="PSTH in Hz ('seconds'), spikes per bin ('bins'), or 'auto': "
                                        "bins when the data's metadata says isi_unit: bins, else Hz.",
                            choices=TIME_UNITS)


class _Pooled(NamedTuple):
    labels: np.ndarray  # (conditions,)
    psth: np.ndarray  # (conditions, time, neurons) in the context's unit


class Psth(PooledMetric):
    """RMSE and Pearson r of the PSTH per condition."""

    config_class = PsthConfig

    def prepare(self, data: SpikeData) -> str:
        return resolve_time_unit(self.config.time_unit, data)

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
        index = resample_index(check_weights(weights, spikes.n_trials))
        width = spikes.bin_width_s if context == "seconds" else None
        found, psth = metrics.psth(spikes.counts[index], labels[index], spikes.lengths[index], width)
        return _Pooled(found, psth)

    def compare_statistics(self, model: _Pooled | None, data: _Pooled | None, context: str) -> dict[str, float]:
        if model is None or data is None:
            return {}
        common, in_model, in_data = np.intersect1d(model.labels, data.labels, return_indices=True)
        if not common.size:
            return {"psth_rmse": float("nan"), "psth_r": float("nan")}
        time = min(model.psth.shape[1], data.psth.shape[1])
        a, b = model.psth[in_model, :time], data.psth[in_data, :time]
        keep = np.isfinite(a) & np.isfinite(b)
        rmse = float(np.sqrt(np.mean((a[keep] - b[keep]) ** 2))) if keep.any() else float("nan")
        return {"psth_rmse": rmse, "psth_r": metrics.pearson_r(a, b)}

    def describe(self, context: str) -> dict[str, dict[str, str]]:
        return {**lower_better(("psth_rmse",), unit_label("rate", context)), **higher_better(("psth_r",))}
