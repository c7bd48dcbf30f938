"""Figures of the report's conditional section: behaviour-conditioned and variable-length samples.

* :func:`direction_psth_figure`: smoothed PSTHs per reach direction, data (solid) against the
  first sample set (dashed), for the neurons with the highest rates.
* :func:`decoded_behaviour_figure`: a ridge decoder fitted on the real training trials turns
  spikes into hand paths (velocity integrated over time): real held-out trials against their
  recorded paths, and samples against the trajectories or directions they were generated for.
* :func:`length_bucket_figure`: mean rate and mean pairwise correlation per bucket of trial
  lengths, data against each sample set.

Where behaviour lives in the covariates is a :class:`ldns_framework.metrics.Behaviour`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from ldns_framework import metrics
from ldns_framework.data import SpikeData
from ldns_framework.report.figures import DATA_COLOUR, _new_figure, _time_label, model_colour, time_unit_of

__all__ = ["decoded_behaviour_figure", "direction_psth_figure", "has_behaviour", "length_bucket_figure",
           "variable_length"]


def has_behaviour(spikes: SpikeData, behaviour: metrics.Behaviour) -> bool:
    """True when ``spikes`` carry a velocity or a reach-angle covariate (conditional samples)."""
    return behaviour.velocity in spikes.covariates or behaviour.angle in spikes.covariates


def variable_length(spikes: SpikeData) -> bool:
    return bool(spikes.n_trials) and int(spikes.lengths.min()) != int(spikes.lengths.max())


def _direction_colour(label: int, directions: int) -> Any:
    from matplotlib import colormaps

    return colormaps["hsv"](label / max(directions, 1))


def _labels(spikes: SpikeData, behaviour: metrics.Behaviour) -> np.ndarray:
    angles = metrics.target_angles(spikes.covariates, spikes.lengths, behaviour)
    if angles is None:
        raise ValueError("no reach angle: the trials carry neither the angle nor the velocity covariate")
    return metrics.direction_labels(angles, behaviour.directions)


def direction_psth_figure(data: SpikeData, models: Mapping[str, SpikeData], behaviour: metrics.Behaviour,
                          n_neurons: int = 3) -> Figure:
    """PSTHs per reach direction (colour) of the ``n_neurons`` highest-rate neurons: data solid, the
    first sample set dashed; the title gives each set's Pearson r over every direction, bin and neuron."""
    unit = time_unit_of(data)
    width = data.bin_width_s if unit == "seconds" else 1.0
    sigma = metrics.sigma_in_bins(behaviour.sigma_ms, data.bin_width_s)
    groups = {"data": metrics.smoothed_condition_psth(data.counts, _labels(data, behaviour), data.lengths, sigma)}
    for name, spikes in models.items():
        groups[name] = metrics.smoothed_condition_psth(spikes.counts, _labels(spikes, behaviour), spikes.lengths, sigma)
    data_labels, data_psth = groups["data"]
    rs = []
    for name in models:
        labels, psth = groups[name]
        _, in_model, in_data = np.intersect1d(labels, data_labels, return_indices=True)
        time = min(psth.shape[1], data_psth.shape[1])
        rs.append(f"{name} r = {metrics.pearson_r(psth[in_model, :time], data_psth[in_data, :time]):.3f}")
    neurons = np.argsort(-np.nan_to_num(metrics.mean_rates(data.counts, data.lengths)))[:n_neurons]
    first = next(iter(models))
    model_labels, model_psth = groups[first]
    figure = _new_figure(3.4 * len(neurons) + 0.4, 3.0)
    axes = figure.subplots(1, len(neurons), squeeze=False)[0]
    for ax, neuron in zip(axes, neurons):
        for labels, psth, style in ((data_labels, data_psth, "-"), (model_labels, model_psth, "--")):
            for k, label in enumerate(labels):
                values = psth[k, :, neuron] / width
                ax.plot(np.arange(values.size) * width, values, ls=style, lw=1.2,
                        color=_direction_colour(int(label), behaviour.directions))
        ax.set_title(f"neuron {data.neuron_ids[neuron]}", fontsize=9)
        ax.set_xlabel(_time_label(unit))
    axes[0].set_ylabel(f"rate ({metrics.unit_label('rate', unit)})")
    figure.suptitle(f"PSTH per reach direction (colour); data solid, {first} dashed; " + ", ".join(rs), fontsize=9)
    return figure


def _paths(velocity: np.ndarray, lengths: np.ndarray, dt: float) -> list[np.ndarray]:
    """Hand paths (valid bins, 2): velocity integrated over each trial's valid bins, from the origin."""
    return [np.cumsum(velocity[i, :int(n)], axis=0) * dt for i, n in enumerate(lengths)]


def decoded_behaviour_figure(data: SpikeData, train: SpikeData, models: Mapping[str, SpikeData],
                             behaviour: metrics.Behaviour, n_trials: int = 6) -> Figure:
    """Decoded hand paths: real held-out trials (decoded solid, recorded dashed) and each sample set
    (decoded solid; the requested trajectory dashed, or an arrow along the requested direction)."""
    sigma = metrics.sigma_in_bins(behaviour.sigma_ms, train.bin_width_s)

    def features(spikes: SpikeData) -> np.ndarray:
        return metrics.smooth_time(spikes.counts, sigma, spikes.mask())

    decoder = metrics.fit_ridge_decoder(features(train), train.covariates[behaviour.velocity], train.lengths)
    dt = data.bin_width_s
    sets = {"data (held out)": data, **models}
    figure = _new_figure(3.3 * len(sets) + 0.4, 3.4)
    axes = figure.subplots(1, len(sets), squeeze=False)[0]
    for index, (ax, (name, spikes)) in enumerate(zip(axes, sets.items())):
        colour = DATA_COLOUR if index == 0 else model_colour(index - 1)
        shown = np.arange(min(n_trials, spikes.n_trials))
        guess = metrics.decode(decoder, features(spikes), spikes.lengths)  # (trials, T, 2)
        title = name
        if behaviour.velocity in spikes.covariates:
            target = np.asarray(spikes.covariates[behaviour.velocity], np.float64)
            r2 = metrics.pooled_r2(metrics.r2_sums(guess, target, spikes.lengths))
            title += f"\nvelocity R$^2$ = {r2:.3f}"
            for path in _paths(target[shown], spikes.lengths[shown], dt):
                ax.plot(path[:, 0], path[:, 1], color=colour, ls="--", lw=0.9, alpha=0.7)
        for path in _paths(guess[shown], spikes.lengths[shown], dt):
            ax.plot(path[:, 0], path[:, 1], color=colour, lw=1.3)
        if behaviour.velocity not in spikes.covariates:
            requested = metrics.target_angles(spikes.covariates, spikes.lengths, behaviour)
            reach = max((float(np.abs(p).max()) for p in _paths(guess[shown], spikes.lengths[shown], dt)), default=1.0)
            decoded_angle = metrics.angle_at(guess, behaviour.angle_bin, spikes.lengths, behaviour.angle_bins)
            error = metrics.angular_error_deg(decoded_angle, requested)
            title += f"\nmedian direction error {np.nanmedian(error):.1f}°"
            for angle in requested[shown]:
                ax.annotate("", xy=(reach * np.cos(angle), reach * np.sin(angle)), xytext=(0, 0),
                            arrowprops={"arrowstyle": "->", "color": "#888888", "lw": 1.0})
        ax.set_title(title, fontsize=9, color=colour)
        ax.set_xlabel("x (velocity units x s)")
        ax.set_aspect("equal", adjustable="datalim")
    axes[0].set_ylabel("y")
    figure.suptitle("Hand paths decoded from spikes (solid) against the behaviour asked for (dashed / arrows)",
                    fontsize=9)
    return figure


def length_bucket_figure(data: SpikeData, models: Mapping[str, SpikeData], n_buckets: int = 4) -> Figure:
    """Mean rate and mean pairwise correlation per bucket of trial lengths (edges from the data)."""
    unit = time_unit_of(data)
    width = data.bin_width_s if unit == "seconds" else 1.0
    edges = metrics.length_bucket_edges(data.lengths, n_buckets)
    sets = {"data": data, **models}
    figure = _new_figure(8.5, 3.0)
    axes = figure.subplots(1, 2)
    for index, (name, spikes) in enumerate(sets.items()):
        stats = metrics.bucket_statistics(spikes.counts, spikes.lengths, edges)
        colour = DATA_COLOUR if index == 0 else model_colour(index - 1)
        style = {"color": colour, "marker": "o", "lw": 2.0 if index == 0 else 1.3, "label": name}
        present = stats.trials > 0  # buckets this set has trials in
        axes[0].plot(edges[present], np.nanmean(stats.rates[present], axis=1) / width, **style)
        axes[1].plot(edges[present], np.nanmean(stats.correlations[present], axis=1), **style)
    axes[0].set_ylabel(f"mean rate ({metrics.unit_label('rate', unit)})")
    axes[1].set_ylabel("mean pairwise correlation")
    for ax in axes:
        ax.set_xlabel("trial length bucket (shortest length, bins)")
    axes[0].legend(fontsize=8)
    figure.suptitle("Statistics per bucket of trial lengths (buckets: quantiles of the data's lengths)", fontsize=9)
    return figure
