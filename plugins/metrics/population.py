"""``population-count``: the population spike-count distribution, model vs data (METHOD.md section 7).

The population count of a bin is the sum of the counts over neurons, pooled over all valid
bins of all trials (:func:`ldns_framework.metrics.population_counts`). Each side's pooled
counts get a Gaussian KDE with Scott's bandwidth on the integer grid ``0 .. max``, normalised,
and are compared by :func:`ldns_framework.metrics.compare_populations`.

Values: ``population_count_kl`` = KL(model || data) in nats (the reference's direction);
``population_density_r``, Pearson r of the two densities on the grid (the Lorenz statistic).

Per trial the statistic is the trial's population counts; a fold re-weights them by trial
(``np.bincount`` with weights), so no count is recomputed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from ldns_framework import PooledMetric, SpikeData, metrics, option
from ldns_plugins.metrics.base import check_weights, higher_better, lower_better


@attrs.frozen
class PopulationCountConfig:
    """Options of the ``population-count`` metric."""

    max_count: int | None = option(None, doc="Clip population counts at this value and end the grid there "
                                             "(the reference uses 220 for the human data); null = the largest "
                                             "count of either side.", ge=1)


class _TrialPopulation(NamedTuple):
    trial: np.ndarray  # (valid bins,) trial index of each pooled bin
    population: np.ndarray  # (valid bins,) population count of that bin
    n_trials: int


class PopulationCount(PooledMetric):
    """KL divergence and Pearson r of the population spike-count densities."""

    config_class = PopulationCountConfig

    def trial_statistics(self, spikes: SpikeData, context: Any) -> _TrialPopulation:
        population = metrics.population_counts(spikes.counts, spikes.lengths)  # trial-major order
        trial = np.repeat(np.arange(spikes.n_trials), spikes.lengths)
        return _TrialPopulation(trial, population.astype(np.int64), spikes.n_trials)

    def pool(self, per_trial: _TrialPopulation, weights: np.ndarray, context: Any) -> np.ndarray:
        """The pooled population counts of the weighted trials (a trial of weight k appears k times)."""
        weights = check_weights(weights, per_trial.n_trials)
        if not per_trial.population.size:
            return per_trial.population
        multiplicity = np.bincount(per_trial.population, weights=weights[per_trial.trial]).astype(np.int64)
        return np.repeat(np.arange(multiplicity.size), multiplicity)

    def compare_statistics(self, model: np.ndarray, data: np.ndarray, context: Any) -> dict[str, float]:
        result = metrics.compare_populations(model, data, self.config.max_count)
        return {"population_count_kl": result.kl, "population_density_r": result.density_r}

    def describe(self, context: Any = None) -> dict[str, dict[str, str]]:
        return {**lower_better(("population_count_kl",), "nats"), **higher_better(("population_density_r",))}
