"""``velocity-decoding`` and ``reach-angle-error``: does behaviour decoded from samples match the
behaviour they were generated for? (METHOD.md section 7, NWB_NOTES.md section 6.)

A ridge decoder (the NLB's alpha grid) maps Gaussian-smoothed spikes to velocity. It is fitted on
the real training trials when the evaluation gives them (:meth:`fit`, called before any split is
compared), else on the real trials it is compared against. Both sides are scored the same way,
each against its own behaviour covariate: samples against the condition they were generated for,
real trials against their recorded velocity. So ``*_data`` is the decoder on the real split (held
out when the split is ``test``), and the evaluation's floor is the decoder on half of it.

What the trials must carry (:class:`ldns_framework.metrics.Behaviour`, names set by the options):

* ``velocity-decoding``: the velocity covariate (trials, time, dims) in data units on both
  sides; for samples, the trajectory they were conditioned on.
* ``reach-angle-error``: the velocity covariate on the real trials (to fit the decoder and read
  their reach angle at ``angle_bin``, averaged over ``angle_bins``); on samples the requested angle (``angle_covariate``,
  (trials, 1) radians or (trials, 2) [cos, sin]) or a velocity covariate to read it from.

Not applicable (unconditional samples, data without behaviour): the metric returns no values
(an empty dict), like ``psth``; the evaluation lists it under ``not_applicable``.
"""

from __future__ import annotations

import weakref
from typing import Any

import attrs
import numpy as np

from ldns_framework import DataError, PooledMetric, SpikeData, metrics, option
from ldns_plugins.metrics.base import check_weights, higher_better, lower_better

_DEFAULT = metrics.Behaviour()
#: Decoders fitted on a set of real trials, per (covariate, sigma, folds); an entry lives as long as its trials.
_DECODERS: weakref.WeakKeyDictionary[SpikeData, dict[tuple[str, float, int], Any]] = weakref.WeakKeyDictionary()


def _velocity_option() -> Any:
    return option(_DEFAULT.velocity, doc="Velocity covariate (trials, time, dims) the decoder predicts; on "
                                         "samples, the velocity they were conditioned on (data units).")


def _sigma_option() -> Any:
    return option(_DEFAULT.sigma_ms, ge=0, doc="Width (std, ms) of the Gaussian smoothing of spikes before "
                                               "decoding; 0 decodes raw counts.")


def _folds_option() -> Any:
    return option(5, ge=2, doc="Cross-validation folds (over trials) choosing the ridge penalty.")


class _DecodingMetric(PooledMetric):
    """Shared part: the decoder, fitted on the training trials (:meth:`fit`) or on the compared split."""

    config: Any

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._trained: Any = None

    def features(self, spikes: SpikeData) -> np.ndarray:
        """Smoothed counts (trials, T, N) over each trial's valid bins."""
        sigma = metrics.sigma_in_bins(self.config.sigma_ms, spikes.bin_width_s)
        return metrics.smooth_time(spikes.counts, sigma, spikes.mask())

    def _fitted(self, data: SpikeData) -> Any:
        name = self.config.covariate
        if name not in data.covariates:
            return None
        key = (name, float(self.config.sigma_ms), int(self.config.folds))
        fitted = _DECODERS.setdefault(data, {})
        if key not in fitted:  # both decoding metrics of one evaluation share the decoder of its trials
            fitted[key] = metrics.fit_ridge_decoder(self.features(data), data.covariates[name], data.lengths,
                                                    folds=self.config.folds)
        return fitted[key]

    def fit(self, train: SpikeData) -> None:
        """Fit the decoder on the real training trials (kept for every split compared afterwards);
        without a velocity covariate there is nothing to fit and each split fits its own."""
        self._trained = self._fitted(train)

    def prepare(self, data: SpikeData) -> Any:
        """The decoder: the one :meth:`fit` made, else one fitted on ``data``; None without behaviour."""
        return self._trained if self._trained is not None else self._fitted(data)

    def decoded(self, spikes: SpikeData, decoder: Any) -> np.ndarray:
        """Velocity (trials, T, D) decoded from ``spikes``, 0 on padding."""
        return metrics.decode(decoder, self.features(spikes), spikes.lengths)


@attrs.frozen
class VelocityDecodingConfig:
    """Options of the ``velocity-decoding`` metric."""

    covariate: str = _velocity_option()
    sigma_ms: float = _sigma_option()
    folds: int = _folds_option()


class VelocityDecoding(_DecodingMetric):
    """R^2 of velocity decoded from samples against the velocity they were generated for."""

    config_class = VelocityDecodingConfig

    def trial_statistics(self, spikes: SpikeData, context: Any) -> metrics.R2Sums | None:
        name = self.config.covariate
        if context is None or name not in spikes.covariates:
            return None
        target = np.asarray(spikes.covariates[name])
        decoded = self.decoded(spikes, context)
        if target.shape != decoded.shape:
            raise DataError(f"covariates[{name!r}]", f"expected {decoded.shape} (trials, time, dims like the "
                                                     f"decoder's training velocity), got {target.shape}")
        return metrics.r2_sums(decoded, target, spikes.lengths)

    def pool(self, per_trial: metrics.R2Sums | None, weights: np.ndarray, context: Any) -> float | None:
        if per_trial is None:
            return None
        return metrics.pooled_r2(per_trial, check_weights(weights, per_trial.n.size))

    def compare_statistics(self, model: float | None, data: float | None, context: Any) -> dict[str, float]:
        if model is None or data is None:
            return {}
        return {"velocity_r2": model, "velocity_r2_data": data}

    def describe(self, context: Any = None) -> dict[str, dict[str, str]]:
        return higher_better(("velocity_r2", "velocity_r2_data"))


@attrs.frozen
class ReachAngleErrorConfig:
    """Options of the ``reach-angle-error`` metric."""

    covariate: str = _velocity_option()
    angle_covariate: str = option(_DEFAULT.angle, doc="Covariate of samples holding the requested reach angle: "
                                                      "(trials, 1) radians or (trials, 2) [cos, sin].")
    angle_bin: int = option(_DEFAULT.angle_bin, ge=0, doc="First bin whose velocity gives the reach angle (the "
                                                          "reach-direction conditioner's bin).")
    angle_bins: int = option(_DEFAULT.angle_bins, ge=1, doc="Bins from angle_bin over which the velocity vector "
                                                            "is averaged (the conditioner's average_bins).")
    sigma_ms: float = _sigma_option()
    folds: int = _folds_option()


class ReachAngleError(_DecodingMetric):
    """Median absolute error (degrees) between decoded and requested reach direction."""

    config_class = ReachAngleErrorConfig

    def behaviour(self) -> metrics.Behaviour:
        """Where the requested angle (or the velocity to read it from) is found."""
        return metrics.Behaviour(velocity=self.config.covariate, angle=self.config.angle_covariate,
                                 angle_bin=self.config.angle_bin, angle_bins=self.config.angle_bins)

    def trial_statistics(self, spikes: SpikeData, context: Any) -> np.ndarray | None:
        if context is None:
            return None
        requested = metrics.target_angles(spikes.covariates, spikes.lengths, self.behaviour())
        if requested is None:
            return None
        decoded = metrics.angle_at(self.decoded(spikes, context), self.config.angle_bin, spikes.lengths,
                                   self.config.angle_bins)
        return metrics.angular_error_deg(decoded, requested)  # (trials,), NaN where the bins are padding

    def pool(self, per_trial: np.ndarray | None, weights: np.ndarray, context: Any) -> float | None:
        if per_trial is None:
            return None
        errors = np.repeat(per_trial, check_weights(weights, per_trial.size))
        errors = errors[np.isfinite(errors)]
        return float(np.median(errors)) if errors.size else float("nan")

    def compare_statistics(self, model: float | None, data: float | None, context: Any) -> dict[str, float]:
        if model is None or data is None:
            return {}
        return {"reach_angle_error_deg": model, "reach_angle_error_deg_data": data}

    def describe(self, context: Any = None) -> dict[str, dict[str, str]]:
        # errors against the requested (or real) angles, not distances between samples and data
        return {name: {**entry, "against": "condition"} for name, entry in
                lower_better(("reach_angle_error_deg", "reach_angle_error_deg_data"), "deg").items()}
