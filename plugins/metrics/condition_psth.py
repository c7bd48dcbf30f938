"""``condition-psth``: Pearson r of smoothed PSTHs per condition or reach direction, samples vs data.

Trials are grouped either by an integer label covariate (``group_by: label``, e.g. the maze
condition) or by reach direction (``group_by: direction``, the default): the reach angle (the
samples' requested angle covariate, else read from a velocity covariate at ``angle_bin``) binned
into ``directions`` equal sectors, sector 0 centred on 0 rad. Each group's PSTH (mean count per
bin and neuron over its trials' valid bins, :func:`ldns_framework.metrics.condition_psth`) is
smoothed along time with a Gaussian over its defined bins; the value is the Pearson r over
every (group, bin, neuron) entry of the groups both sides have, over the bins both have.

Not applicable when either side has no grouping covariate (unconditional samples): no values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from ldns_framework import DataError, PooledMetric, SpikeData, metrics, option
from ldns_plugins.metrics.base import check_weights, higher_better

_DEFAULT = metrics.Behaviour()


@attrs.frozen
class ConditionPsthConfig:
    """Options of the ``condition-psth`` metric."""

    group_by: str = option("direction", choices=("direction", "label"),
                           doc="Group trials by reach direction, or by an integer label covariate.")
    label_covariate: str = option("condition", doc="Integer label covariate (trials, 1) for group_by: label.")
    covariate: str = option(_DEFAULT.velocity, doc="Velocity covariate (trials, time, 2) reach angles are read from.")
    angle_covariate: str = option(_DEFAULT.angle, doc="Requested reach angle of samples: (trials, 1) radians or "
                                                      "(trials, 2) [cos, sin]; read before the velocity covariate.")
    angle_bin: int = option(_DEFAULT.angle_bin, ge=0, doc="First bin whose velocity gives a trial's reach angle.")
    angle_bins: int = option(_DEFAULT.angle_bins, ge=1, doc="Bins from angle_bin over which the velocity vector "
                                                            "is averaged (the reach-angle conditioner's average_bins).")
    directions: int = option(_DEFAULT.directions, ge=1, doc="Number of equal direction sectors.")
    sigma_ms: float = option(_DEFAULT.sigma_ms, ge=0, doc="Std (ms) of the Gaussian smoothing of each PSTH.")


class _Groups(NamedTuple):
    labels: np.ndarray  # (groups,)
    psth: np.ndarray  # (groups, time, neurons), spikes per bin, smoothed; NaN where no trial reaches a bin


class ConditionPsth(PooledMetric):
    """Pearson r of the smoothed PSTH per condition (or reach direction), samples vs data."""

    config_class = ConditionPsthConfig

    def labels(self, spikes: SpikeData) -> np.ndarray | None:
        """One group label per trial (-1: no group), or None when ``spikes`` cannot be grouped."""
        config = self.config
        if config.group_by == "label":
            if config.label_covariate not in spikes.covariates:
                return None
            labels = np.asarray(spikes.covariates[config.label_covariate])
            field = f"covariates[{config.label_covariate!r}]"
            if labels.shape != (spikes.n_trials, 1) or not np.array_equal(labels, np.round(labels)):
                raise DataError(field, f"expected one integer label per trial, shape ({spikes.n_trials}, 1), got "
                                       f"{labels.shape} {labels.dtype}")
            return labels[:, 0].astype(np.int64)
        behaviour = metrics.Behaviour(velocity=config.covariate, angle=config.angle_covariate,
                                      angle_bin=config.angle_bin, angle_bins=config.angle_bins)
        angles = metrics.target_angles(spikes.covariates, spikes.lengths, behaviour)
        return None if angles is None else metrics.direction_labels(angles, config.directions)

    def trial_statistics(self, spikes: SpikeData, context: Any) -> tuple[SpikeData, np.ndarray] | None:
        labels = self.labels(spikes)
        return None if labels is None else (spikes, labels)

    def pool(self, per_trial: tuple[SpikeData, np.ndarray] | None, weights: np.ndarray, context: Any) -> _Groups | None:
        if per_trial is None:
            return None
        spikes, labels = per_trial
        sigma = metrics.sigma_in_bins(self.config.sigma_ms, spikes.bin_width_s)
        return _Groups(*metrics.smoothed_condition_psth(spikes.counts, labels, spikes.lengths, sigma,
                                                         check_weights(weights, spikes.n_trials)))

    def compare_statistics(self, model: _Groups | None, data: _Groups | None, context: Any) -> dict[str, float]:
        if model is None or data is None:
            return {}
        _, in_model, in_data = np.intersect1d(model.labels, data.labels, return_indices=True)
        time = min(model.psth.shape[1], data.psth.shape[1])
        if not in_model.size:
            return {"condition_psth_r": float("nan")}
        return {"condition_psth_r": metrics.pearson_r(model.psth[in_model, :time], data.psth[in_data, :time])}

    def describe(self, context: Any = None) -> dict[str, dict[str, str]]:
        return higher_better(("condition_psth_r",))
