"""Population spike count histogram ("psch") and its KL divergence, model vs data.

Reference: LDNS_NOTES.md section 3.1 and METHOD.md section 7. The population count of a bin
is the sum of the counts over neurons; the counts of all valid bins of all trials are
pooled. Each pooled sample gets a Gaussian KDE with Scott's bandwidth (exactly
``scipy.stats.gaussian_kde(x)`` with the default ``bw_method``), evaluated on the integer
grid ``0 .. max`` (the largest population count of either set) and normalised to sum 1.
``D_KL = sum_g p_model[g] * log(p_model[g] / p_data[g])``, i.e. KL(model || data), summed as
the reference does with ``np.nansum`` (grid points where ``p_model`` is 0 contribute 0).

Differences from the reference, all in cases where it gives no finite answer:

* The KDE is evaluated in log space (``logsumexp``). Wherever the reference's float64 KDE is
  positive the two agree to rounding; where the data KDE underflows to exactly 0 under
  model mass (model counts tens of bandwidths beyond the data), the reference returns
  ``inf`` and this module the finite, large, log-space value, which still ranks models.
* A degenerate sample (fewer than 2 bins, or every population count equal) makes the KDE
  covariance singular (scipy raises ``LinAlgError``). Such a sample falls back to its
  normalised histogram on the grid plus :data:`HISTOGRAM_EPSILON` per grid point, then
  renormalised. Two identical constant samples therefore give KL 0.
* A sample with no valid bin at all has no density: its density is NaN and the KL is NaN.
* KL is clipped at 0 from below (it is >= 0 by Gibbs' inequality; only rounding makes it
  negative).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from ldns_framework.metrics._arrays import (check_counts, check_lengths, check_same_neurons, trial_chunks,
                                            valid_mask)
from ldns_framework.metrics.paired import pearson_r

# Added to every grid point of the fallback histogram of a degenerate sample, as a fraction
# of the sample (before renormalisation), so that log(p_model / p_data) stays finite.
HISTOGRAM_EPSILON = 1e-10


def population_counts(counts: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Population count (sum over neurons) of every valid bin, pooled over trials: (valid bins,).

    Integer counts give an int64 result; padding bins are dropped.
    """
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    parts = []
    for part in trial_chunks(counts):
        summed = counts[part].sum(axis=2)  # (trials, time)
        parts.append(summed[valid_mask(lengths[part], counts.shape[1])])
    if not parts:
        return np.zeros(0, dtype=np.int64)
    pooled = np.concatenate(parts)
    return pooled.astype(np.int64) if np.issubdtype(pooled.dtype, np.integer) else pooled


def log_population_density(population: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Log of the normalised Scott-bandwidth Gaussian KDE of ``population`` on ``grid``.

    ``p[g] = kde(grid)[g] / kde(grid).sum()`` computed in log space. The KDE equals
    ``scipy.stats.gaussian_kde(population)(grid)``: bandwidth factor ``n ** (-1/5)``,
    kernel variance ``var(population, ddof=1) * n ** (-2/5)``. It is evaluated over the
    distinct values weighted by their multiplicity, which is exact and fast for counts.
    Degenerate samples fall back to a histogram (module docstring); an empty sample gives NaN.
    """
    population = np.asarray(population, dtype=np.float64).ravel()
    grid = np.asarray(grid, dtype=np.float64)
    n = population.size
    if n == 0:
        return np.full(grid.shape, np.nan)
    values, multiplicity = np.unique(population, return_counts=True)
    variance = float(np.var(population, ddof=1)) if n > 1 else 0.0
    if n < 2 or variance <= 0.0:
        histogram = np.zeros(grid.shape)
        hits = np.searchsorted(grid, values)
        inside = (hits < grid.size) & (grid[np.minimum(hits, grid.size - 1)] == values)
        histogram[hits[inside]] = multiplicity[inside] / n
        histogram += HISTOGRAM_EPSILON
        return np.log(histogram) - np.log(histogram.sum())
    kernel_variance = variance * n ** (-2.0 / 5.0)  # Scott: factor n^(-1/(d+4)), d = 1
    exponents = -0.5 * (grid[:, None] - values[None, :]) ** 2 / kernel_variance  # (grid, values)
    log_density = logsumexp(exponents, axis=1, b=multiplicity[None, :])
    return log_density - logsumexp(log_density)


def population_density(population: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Normalised KDE density of population counts on ``grid`` (sums to 1); see the log version."""
    return np.exp(log_population_density(population, grid))


def kl_divergence(log_p: np.ndarray, log_q: np.ndarray) -> float:
    """``sum p * log(p / q)`` for normalised distributions given as logs (KL(p || q), nats).

    Terms where ``p`` is 0 contribute 0 (the reference's ``np.nansum``); NaN inputs give NaN.
    Clipped at 0 from below (Gibbs' inequality; negatives are rounding only).
    """
    log_p = np.asarray(log_p, dtype=np.float64)
    log_q = np.asarray(log_q, dtype=np.float64)
    if np.isnan(log_p).any() or np.isnan(log_q).any():
        return float("nan")
    p = np.exp(log_p)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (log_p - log_q), 0.0)
    return max(float(np.sum(terms)), 0.0)


def count_grid(*populations: np.ndarray, max_count: int | None = None) -> np.ndarray:
    """The integer grid ``0 .. max`` over all given population samples (or ``0 .. max_count``)."""
    if max_count is None:
        max_count = int(max((p.max() for p in populations if p.size), default=0))
    return np.arange(int(max_count) + 1, dtype=np.float64)


class PopulationComparison(NamedTuple):
    """Two pooled population-count samples compared on their shared integer grid."""

    grid: np.ndarray  # (points,) 0 .. max
    log_model: np.ndarray  # (points,) log normalised KDE of the model sample
    log_data: np.ndarray  # (points,) log normalised KDE of the data sample
    kl: float  # KL(model || data), nats
    density_r: float  # Pearson r of the two densities on the grid (the Lorenz statistic)


def compare_populations(model: np.ndarray, data: np.ndarray, max_count: int | None = None) -> PopulationComparison:
    """Compare pooled population counts (:func:`population_counts`) of model and data.

    ``max_count`` fixes the grid to ``0 .. max_count`` and clips both samples at it (the
    reference does this for the human data, with 220); by default the grid ends at the largest
    population count of either sample.
    """
    if max_count is not None:
        model, data = np.minimum(model, max_count), np.minimum(data, max_count)
    grid = count_grid(model, data, max_count=max_count)
    log_model, log_data = log_population_density(model, grid), log_population_density(data, grid)
    return PopulationComparison(grid, log_model, log_data, kl_divergence(log_model, log_data),
                                pearson_r(np.exp(log_model), np.exp(log_data)))


def _compare_counts(model_counts: np.ndarray, data_counts: np.ndarray, lengths_model: np.ndarray | None,
                    lengths_data: np.ndarray | None, max_count: int | None) -> PopulationComparison:
    check_same_neurons(check_counts(model_counts, "model_counts"), check_counts(data_counts, "data_counts"))
    return compare_populations(population_counts(model_counts, lengths_model),
                               population_counts(data_counts, lengths_data), max_count)


def population_count_densities(model_counts: np.ndarray, data_counts: np.ndarray,
                               lengths_model: np.ndarray | None = None,
                               lengths_data: np.ndarray | None = None,
                               max_count: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid, p_model, p_data): both normalised KDE densities on the shared integer grid
    (``max_count``: :func:`compare_populations`)."""
    result = _compare_counts(model_counts, data_counts, lengths_model, lengths_data, max_count)
    return result.grid, np.exp(result.log_model), np.exp(result.log_data)


def population_count_kl(model_counts: np.ndarray, data_counts: np.ndarray,
                        lengths_model: np.ndarray | None = None, lengths_data: np.ndarray | None = None,
                        max_count: int | None = None) -> float:
    """D_KL(model || data) in nats between the population-count KDE densities (module docstring)."""
    return _compare_counts(model_counts, data_counts, lengths_model, lengths_data, max_count).kl
