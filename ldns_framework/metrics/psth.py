"""Peri-stimulus time histograms (PSTH) per condition.

Reference: METHOD.md section 7 ("PSTH per condition"). The PSTH of condition ``c`` at bin
``t`` for neuron ``n`` is the mean count over the trials labelled ``c`` whose bin ``t`` is
valid (``t < lengths[i]``); padding never counts. Where no trial of a condition reaches
bin ``t`` the PSTH is NaN (undefined, not 0). Units: spikes per bin, or Hz given
``bin_width_s``.
"""

from __future__ import annotations

import numpy as np

from ldns_framework.errors import DataError
from ldns_framework.metrics._arrays import check_counts, check_lengths, valid_mask


def condition_psth(counts: np.ndarray, conditions: np.ndarray, lengths: np.ndarray | None = None,
                   bin_width_s: float | None = None, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, psth): sorted distinct condition labels and the PSTH, (labels, time, neurons).

    ``conditions`` holds one integer label per trial. ``weights`` (trials,) are trial
    multiplicities (None: each trial once; a bootstrap fold's resampled trials without copying
    them); conditions with no trial of positive weight are left out. Vectorised over trials,
    bins and neurons; the only loop is over the distinct conditions.
    """
    counts = check_counts(counts)
    lengths = check_lengths(lengths, counts)
    conditions = np.asarray(conditions)
    if conditions.shape != (counts.shape[0],):
        raise DataError("conditions", f"expected one label per trial, shape ({counts.shape[0]},), "
                                      f"got {conditions.shape}")
    if conditions.size and not np.issubdtype(conditions.dtype, np.integer):
        raise DataError("conditions", f"expected integer condition labels, got dtype {conditions.dtype}")
    weights = np.ones(counts.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (counts.shape[0],):
        raise DataError("weights", f"expected one weight per trial, shape ({counts.shape[0]},), got {weights.shape}")
    labels, label_index = np.unique(conditions[weights > 0], return_inverse=True)
    present = np.flatnonzero(weights > 0)
    weighted_mask = valid_mask(lengths, counts.shape[1]) * weights[:, None]  # (trials, time)
    result = np.empty((labels.size, counts.shape[1], counts.shape[2]))
    for k in range(labels.size):
        members = present[label_index == k]
        member_mask = weighted_mask[members]  # (members, time)
        totals = np.einsum("it,itn->tn", member_mask, counts[members].astype(np.float64))
        n_valid = member_mask.sum(axis=0)  # (time,)
        with np.errstate(invalid="ignore", divide="ignore"):
            result[k] = np.where(n_valid[:, None] > 0, totals / n_valid[:, None], np.nan)
    if bin_width_s is not None:
        result /= bin_width_s
    return labels, result


def smoothed_condition_psth(counts: np.ndarray, conditions: np.ndarray, lengths: np.ndarray | None,
                            sigma_bins: float, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, psth) as :func:`condition_psth` (spikes per bin), each PSTH then smoothed along time
    with a Gaussian of ``sigma_bins`` over its defined bins; still NaN where no trial reaches a bin.
    Trials labelled -1 (no condition) are left out."""
    from ldns_framework.metrics.smoothing import smooth_time

    conditions = np.asarray(conditions)
    weights = np.ones(conditions.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    labels, psth = condition_psth(counts, conditions, lengths, None, weights * (conditions >= 0))
    defined = np.isfinite(psth).all(axis=2)  # (labels, time)
    return labels, np.where(defined[..., None], smooth_time(psth, sigma_bins, defined), np.nan)
