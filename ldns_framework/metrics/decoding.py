"""Behaviour decoding: a ridge decoder from smoothed spikes to velocity, its R^2, reach angles.

METHOD.md section 7 ("behaviour decoding") and NWB_NOTES.md section 6 (the NLB's vel R^2): a
linear ridge map from per-bin features (trials, time, neurons) to velocity (trials, time, dims),
fitted on real training trials with the NLB's alpha grid (``logspace(-4, 0, 9)``) chosen by
cross-validation over whole trials, so bins of one trial never sit on both sides of a fold.
Every bin past a trial's length is padding: never a row of the fit, never scored.

R^2 is pooled from per-trial sums (:func:`r2_sums`, :func:`pooled_r2`), so a bootstrap fold
re-weights trials without decoding again; uniform over the velocity dimensions, as
``sklearn``'s ``score``.

Reach angles are ``atan2(v_y, v_x)`` of the velocity at one bin (METHOD.md section 4: bin 50 of
the aligned window), or of the velocity vector averaged over a few bins from there, as the
``reach-angle`` conditioner reads it (``average_bins``, default 10); compared on the circle
(:func:`angular_error_deg`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from ldns_framework.errors import DataError
from ldns_framework.metrics._arrays import valid_bins

#: The NLB's ridge penalties (GridSearchCV over these).
DEFAULT_ALPHAS = tuple(np.logspace(-4, 0, 9).tolist())


@attrs.frozen
class Behaviour:
    """Where behaviour lives in :class:`~ldns_framework.SpikeData` covariates (shared by the decoding
    metrics and the report's conditional section).

    Real trials carry ``velocity`` (trials, time, dims). Generated trials carry what they were
    conditioned on, in data units: ``velocity`` (the requested trajectory) for sequence conditions,
    ``angle`` (trials, 1) in radians (or (trials, 2) as [cos, sin]) for reach-direction conditions.
    A reach angle is read from velocity over bins ``angle_bin .. angle_bin + angle_bins - 1`` (the
    reach-direction conditioner's ``bin`` and ``average_bins``; keep them equal).
    """

    velocity: str = "hand_vel"
    angle: str = "reach_angle"
    angle_bin: int = 50
    angle_bins: int = 10
    sigma_ms: float = 40.0
    directions: int = 8


def fit_ridge_decoder(features: np.ndarray, targets: np.ndarray, lengths: np.ndarray,
                      alphas: tuple[float, ...] = DEFAULT_ALPHAS, folds: int = 5) -> Any:
    """A fitted ``sklearn`` ``Ridge`` decoder (features (trials, T, N) -> targets (trials, T, D)).

    The penalty is the one ``GridSearchCV(Ridge(), {"alpha": alphas}, cv=GroupKFold(folds))`` with
    trials as groups would choose (mean R^2 over folds; :func:`ridge_cv_scores`, the same scores
    from per-fold sufficient statistics: one pass over the rows instead of a fit per fold and alpha,
    which took minutes on MC_Maze-sized data). At least 2 non-empty trials are needed.
    """
    from sklearn.linear_model import Ridge

    features, targets = np.asarray(features, np.float64), np.asarray(targets, np.float64)
    if targets.ndim != 3 or targets.shape[:2] != features.shape[:2]:
        raise DataError("targets", f"expected (trials, time, dims) matching the spikes' {features.shape[:2]}, "
                                   f"got {targets.shape}")
    rows, outputs = valid_bins(features, lengths), valid_bins(targets, lengths)
    if not np.isfinite(outputs).all():
        raise DataError("targets", "expected finite values on every valid bin")
    n_trials = int((np.asarray(lengths) > 0).sum())
    if n_trials < 2:
        raise DataError("trials", f"expected at least 2 non-empty trials to fit a decoder, got {n_trials}")
    groups = np.repeat(np.arange(features.shape[0]), np.asarray(lengths))  # trial of each row
    scores = ridge_cv_scores(rows, outputs, groups, alphas, min(int(folds), n_trials))
    return Ridge(alpha=float(alphas[int(np.argmax(scores))])).fit(rows, outputs)


def ridge_cv_scores(rows: np.ndarray, targets: np.ndarray, groups: np.ndarray, alphas: tuple[float, ...],
                    folds: int) -> np.ndarray:
    """Mean over ``GroupKFold(folds)`` folds of the held-out R^2 (uniform over outputs) of a ridge
    regression with intercept, per alpha (alphas,).

    Each fold keeps the augmented Gram matrices of its rows ([X 1]'[X 1], [X 1]'Y, sum Y^2), so
    the training side of a fold is the total minus the fold, and its held-out residuals follow
    from the fold's own matrices: the rows are read once, whatever the number of alphas.
    """
    from sklearn.model_selection import GroupKFold

    augmented = np.concatenate([rows, np.ones((rows.shape[0], 1))], axis=1)  # (M, N + 1)
    parts = []
    for _, held in GroupKFold(n_splits=folds).split(rows, targets, groups):
        x, y = augmented[held], targets[held]
        parts.append((x.T @ x, x.T @ y, (y ** 2).sum(axis=0)))  # (N+1, N+1), (N+1, D), (D,)
    total_a, total_b = sum(p[0] for p in parts), sum(p[1] for p in parts)
    n_features = rows.shape[1]
    scores = np.zeros((len(parts), len(alphas)))
    for k, (fold_a, fold_b, fold_yy) in enumerate(parts):
        train_a, train_b = total_a - fold_a, total_b - fold_b
        n = train_a[-1, -1]
        mean_x, mean_y = train_a[:-1, -1] / n, train_b[-1] / n
        gram = train_a[:-1, :-1] - n * np.outer(mean_x, mean_x)  # centred X'X of the training side
        cross = train_b[:-1] - n * np.outer(mean_x, mean_y)  # centred X'Y
        held_n, held_sum = fold_a[-1, -1], fold_b[-1]
        total = fold_yy - held_sum ** 2 / held_n  # (D,) held-out sum of squares about its mean
        for j, alpha in enumerate(alphas):
            weights = np.linalg.solve(gram + float(alpha) * np.eye(n_features), cross)  # (N, D)
            full = np.vstack([weights, mean_y - mean_x @ weights])  # (N + 1, D), intercept last
            residual = fold_yy - 2 * np.einsum("nd,nd->d", full, fold_b) + np.einsum("nd,nm,md->d", full, fold_a, full)
            scores[k, j] = np.mean(1.0 - residual / total)
    return scores.mean(axis=0)


def decode(decoder: Any, features: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Decoded targets (trials, T, D) on the valid bins, 0 on padding."""
    mask = np.arange(features.shape[1])[None, :] < np.asarray(lengths)[:, None]
    out = np.zeros(features.shape[:2] + (len(np.atleast_1d(decoder.intercept_)),))
    if mask.any():
        out[mask] = decoder.predict(np.asarray(features, np.float64)[mask]).reshape(int(mask.sum()), -1)
    return out


class R2Sums(NamedTuple):
    """Per-trial sums from which R^2 of any multiset of trials follows."""

    n: np.ndarray  # (trials,) valid bins
    sum_y: np.ndarray  # (trials, D)
    sum_y2: np.ndarray  # (trials, D)
    ss_res: np.ndarray  # (trials, D)


def r2_sums(predicted: np.ndarray, target: np.ndarray, lengths: np.ndarray) -> R2Sums:
    """Per-trial sums over valid bins of predicted vs target (trials, T, D); padding ignored."""
    if predicted.shape != target.shape:
        raise DataError("target", f"expected the target's shape {predicted.shape}, got {target.shape}")
    mask = (np.arange(target.shape[1])[None, :] < np.asarray(lengths)[:, None])[..., None]  # (trials, T, 1)
    y = np.where(mask, np.asarray(target, np.float64), 0.0)
    residual = np.where(mask, y - predicted, 0.0)
    return R2Sums(mask[..., 0].sum(axis=1).astype(np.float64), y.sum(axis=1), (y ** 2).sum(axis=1),
                  (residual ** 2).sum(axis=1))


def pooled_r2(sums: R2Sums, weights: np.ndarray | None = None) -> float:
    """R^2 over the valid bins of the trials repeated ``weights`` times, uniform over dimensions.

    NaN when no bin is scored or a dimension's target is constant (R^2 undefined).
    """
    w = np.ones(sums.n.shape) if weights is None else np.asarray(weights, np.float64)
    n = float(w @ sums.n)
    if n == 0:
        return float("nan")
    total = w @ sums.sum_y2 - (w @ sums.sum_y) ** 2 / n  # (D,)
    if np.any(total <= 1e-12 * np.maximum(1.0, w @ sums.sum_y2)):
        return float("nan")
    return float(np.mean(1.0 - (w @ sums.ss_res) / total))


def angle_at(velocity: np.ndarray, bin_index: int, lengths: np.ndarray, n_bins: int = 1) -> np.ndarray:
    """Reach angle (radians, (trials,)) of (trials, T, 2) velocity: the direction of the velocity
    vector averaged over bins ``bin_index .. bin_index + n_bins - 1`` (vectors, never angles, are
    averaged: no wrap-around); NaN for trials whose length does not cover those bins."""
    velocity = np.asarray(velocity, np.float64)
    if velocity.ndim != 3 or velocity.shape[2] != 2:
        raise DataError("reach velocity", f"expected (trials, time, 2) to read a reach angle, got {velocity.shape}")
    if bin_index < 0 or n_bins < 1:
        raise DataError("bin", f"expected a non-negative bin and at least 1 bin, got {bin_index} and {n_bins}")
    stop = bin_index + n_bins
    if stop > velocity.shape[1]:
        return np.full(velocity.shape[0], np.nan)
    mean = velocity[:, bin_index:stop].mean(axis=1)  # (trials, 2)
    return np.where(np.asarray(lengths) >= stop, np.arctan2(mean[:, 1], mean[:, 0]), np.nan)


def angular_error_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles (radians) on the circle, in degrees, in [0, 180]."""
    difference = np.angle(np.exp(1j * (np.asarray(a, np.float64) - np.asarray(b, np.float64))))
    return np.abs(np.degrees(difference))


def direction_labels(angles: np.ndarray, directions: int) -> np.ndarray:
    """Integer direction sector (0 .. directions-1) of each angle (radians); sector 0 is centred on 0
    rad. NaN angles get -1 (no direction)."""
    if int(directions) < 1:
        raise DataError("directions", f"expected at least 1 direction, got {directions}")
    angles = np.asarray(angles, np.float64)
    width = 2 * np.pi / int(directions)
    sectors = np.floor(np.mod(np.nan_to_num(angles) + width / 2, 2 * np.pi) / width).astype(np.int64)
    return np.where(np.isfinite(angles), np.minimum(sectors, int(directions) - 1), -1)


def target_angles(covariates: dict[str, np.ndarray], lengths: np.ndarray, behaviour: Behaviour) -> np.ndarray | None:
    """The reach angle of each trial (radians, (trials,)): the ``angle`` covariate ((trials, 1) in
    radians, or (trials, 2) as [cos, sin]), else read from the ``velocity`` covariate at
    ``angle_bin`` (averaged over ``angle_bins``); None when neither is there."""
    if behaviour.angle in covariates:
        angle = np.asarray(covariates[behaviour.angle], np.float64)
        field = f"covariates[{behaviour.angle!r}]"
        if angle.ndim == 2 and angle.shape[1] == 2:
            return np.arctan2(angle[:, 1], angle[:, 0])
        if angle.ndim == 2 and angle.shape[1] == 1:
            return angle[:, 0]
        raise DataError(field, f"expected one angle per trial in radians, shape (trials, 1), or "
                               f"(trials, 2) as [cos, sin], got {angle.shape}")
    if behaviour.velocity in covariates:
        return angle_at(covariates[behaviour.velocity], behaviour.angle_bin, lengths, behaviour.angle_bins)
    return None
