"""The report's figures, one function per figure, each returning a matplotlib ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot, no global state, no
GUI backend); :func:`save_figure` renders PNG through the Agg canvas and writes atomically.
Colours are fixed across figures: the real data black, each model sample set its own colour
in :data:`MODEL_COLOURS` order, the Poisson baseline grey and dashed. Times are in seconds
(``bin_width_s`` per bin), or in bins when the data's metadata says ``isi_unit: bins``
(Lorenz time has no seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ldns_framework import metrics
from ldns_framework.data import SpikeData
from ldns_framework.rundir import atomic_path

__all__ = [
    "BASELINE_COLOUR",
    "DATA_COLOUR",
    "MODEL_COLOURS",
    "autocorrelation_figure",
    "latent_figure",
    "model_colour",
    "population_count_figure",
    "raster_figure",
    "save_figure",
    "statistics_figure",
    "time_unit_of",
    "training_curves_figure",
]

DATA_COLOUR = "#222222"
MODEL_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
BASELINE_COLOUR = "#8c8c8c"
TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"
#: Scatter points drawn per panel at most (a random subset beyond; statistics use every point).
MAX_POINTS = 20_000


def model_colour(index: int) -> str:
    """Colour of the ``index``-th model sample set (the same in every figure)."""
    return MODEL_COLOURS[index % len(MODEL_COLOURS)]


def time_unit_of(data: SpikeData) -> str:
    """``"bins"`` when the data says its time is in bins (Lorenz), else ``"seconds"``."""
    return metrics.resolve_time_unit("auto", data.metadata)


def _time_label(unit: str, what: str = "time") -> str:
    return f"{what} ({metrics.unit_label('time', unit)})"


def _rate_label(unit: str) -> str:
    return f"mean rate ({metrics.unit_label('rate', unit)})"


def save_figure(figure: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Render ``figure`` as PNG to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    FigureCanvasAgg(figure)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return path


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _fmt_r(r: float) -> str:
    return f"{r:.3f}" if np.isfinite(r) else "n/a"


# -- rasters ----------------------------------------------------------------------------------------
def raster_figure(sets: Mapping[str, SpikeData], n_trials: int = 3, seed: int = 0) -> Figure:
    """Spike rasters: one column per set (real data first), ``n_trials`` random trials each.

    Each panel is a trial as an image of counts (neurons x time), darker = more spikes; the
    colour scale is shared by all panels and capped at the 99.5th percentile of the non-zero counts.
    """
    names = list(sets)
    unit = time_unit_of(next(iter(sets.values())))
    rng = np.random.default_rng(seed)
    chosen = {name: np.sort(rng.choice(s.n_trials, size=min(n_trials, s.n_trials), replace=False))
              for name, s in sets.items()}
    rows = max(len(v) for v in chosen.values())
    nonzero = np.concatenate([sets[n].counts[chosen[n]][sets[n].counts[chosen[n]] > 0].ravel() for n in names])
    vmax = max(1.0, float(np.percentile(nonzero, 99.5))) if nonzero.size else 1.0
    figure = _new_figure(3.2 * len(names) + 0.6, 2.2 * rows + 0.6)
    axes = figure.subplots(rows, len(names), squeeze=False, sharey=True)
    image = None
    for column, name in enumerate(names):
        spikes = sets[name]
        colour = DATA_COLOUR if column == 0 else model_colour(column - 1)
        for row in range(rows):
            ax = axes[row, column]
            if row >= len(chosen[name]):
                ax.set_axis_off()
                continue
            trial = int(chosen[name][row])
            length = int(spikes.lengths[trial])
            width = spikes.bin_width_s if unit == "seconds" else 1.0
            image = ax.imshow(spikes.counts[trial, :length].T, aspect="auto", interpolation="nearest", cmap="Greys",
                              vmin=0, vmax=vmax, origin="lower", extent=(0, length * width, -0.5, spikes.n_neurons - 0.5))
            ax.set_title(f"{name}: trial {trial}", color=colour, fontsize=10)
            if row == rows - 1:
                ax.set_xlabel(_time_label(unit))
            if column == 0:
                ax.set_ylabel("neuron")
    if image is not None:
        figure.colorbar(image, ax=axes, shrink=0.6, label="spikes per bin")
    figure.suptitle("Spike rasters: real trials and generated samples")
    return figure


# -- per-neuron statistics ------------------------------------------------------------------------
def _scatter_panel(ax: Any, data_values: np.ndarray, model_values: Mapping[str, np.ndarray], title: str,
                   label: str, rng: np.random.Generator) -> None:
    """Data (x) against each model (y), identity line, Pearson r per model in the title and legend."""
    lows, highs, rs = [], [], []
    for index, (name, values) in enumerate(model_values.items()):
        keep = np.isfinite(data_values) & np.isfinite(values)
        x, y = data_values[keep], values[keep]
        r = metrics.pearson_r(x, y)
        rs.append(f"{name} {_fmt_r(r)}")
        if x.size > MAX_POINTS:
            pick = rng.choice(x.size, MAX_POINTS, replace=False)
            x, y = x[pick], y[pick]
        ax.scatter(x, y, s=6, alpha=0.5, color=model_colour(index), label=f"{name} (r = {_fmt_r(r)})",
                   linewidths=0)
        if x.size:
            lows += [x.min(), y.min()]
            highs += [x.max(), y.max()]
    if lows:
        low, high = min(lows), max(highs)
        pad = 0.03 * (high - low if high > low else 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color=DATA_COLOUR, lw=1, ls="--", label="identity")
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
    ax.set_title(f"{title}\nr: " + ", ".join(rs), fontsize=10)
    ax.set_xlabel(f"data: {label}")
    ax.set_ylabel(f"model: {label}")
    ax.set_box_aspect(1)  # square panel; with equal limits the identity line is the diagonal
    ax.legend(fontsize=8, loc="upper left")


def statistics_figure(data: SpikeData, models: Mapping[str, SpikeData], seed: int = 0) -> Figure:
    """Per-neuron mean rate, mean ISI and std ISI, and pairwise correlations: data vs each model set."""
    unit = time_unit_of(data)
    width = data.bin_width_s if unit == "seconds" else None
    rng = np.random.default_rng(seed)

    def rates(s: SpikeData) -> np.ndarray:
        return metrics.mean_rates(s.counts, s.lengths, width)

    def isi(s: SpikeData) -> Any:
        return metrics.isi_statistics(s.counts, s.lengths, width, min_isis=2)

    def pairs(s: SpikeData) -> np.ndarray:
        return metrics.lower_triangle(metrics.correlation_matrix(s.counts, s.lengths))

    data_isi = isi(data)
    model_isi = {name: isi(s) for name, s in models.items()}
    figure = _new_figure(17, 5.0)
    axes = figure.subplots(1, 4)
    _scatter_panel(axes[0], rates(data), {n: rates(s) for n, s in models.items()}, "per-neuron mean rate",
                   _rate_label(unit), rng)
    _scatter_panel(axes[1], data_isi.mean, {n: v.mean for n, v in model_isi.items()}, "per-neuron mean ISI",
                   _time_label(unit, "mean ISI"), rng)
    _scatter_panel(axes[2], data_isi.std, {n: v.std for n, v in model_isi.items()}, "per-neuron std ISI",
                   _time_label(unit, "std ISI"), rng)
    _scatter_panel(axes[3], pairs(data), {n: pairs(s) for n, s in models.items()}, "pairwise correlation (unique pairs)",
                   "correlation", rng)
    figure.suptitle("Spike statistics: real data (x) against generated samples (y)")
    return figure


# -- population counts ------------------------------------------------------------------------------
def population_count_figure(data: SpikeData, models: Mapping[str, SpikeData], baseline: SpikeData | None = None) -> Figure:
    """Population spike-count densities (Gaussian KDE, Scott bandwidth): data, each model, the baseline.

    Left linear, right logarithmic (the tails). The legend gives KL(model || data) in nats.
    """
    sets: dict[str, SpikeData] = {"data": data, **models}
    if baseline is not None:
        sets["Poisson baseline"] = baseline
    populations = {name: metrics.population_counts(s.counts, s.lengths) for name, s in sets.items()}
    grid = metrics.count_grid(*populations.values())
    log_density = {name: metrics.log_population_density(p, grid) for name, p in populations.items()}
    figure = _new_figure(12, 4.2)
    axes = figure.subplots(1, 2)
    for name, log_p in log_density.items():
        if name == "data":
            style = {"color": DATA_COLOUR, "lw": 2.2, "label": "data"}
        else:
            kl = metrics.kl_divergence(log_p, log_density["data"])
            if name == "Poisson baseline":
                style = {"color": BASELINE_COLOUR, "lw": 1.6, "ls": "--"}
            else:
                style = {"color": model_colour(list(models).index(name)), "lw": 1.6}
            style["label"] = f"{name} (KL {kl:.2g} nats)"
        for ax in axes:
            ax.plot(grid, np.exp(log_p), **style)
    for ax, scale in zip(axes, ("linear", "log")):
        ax.set_yscale(scale)
        ax.set_xlabel("population spike count per bin (sum over neurons)")
        ax.set_ylabel("probability")
    peak = max(float(np.nanmax(np.exp(log_p))) for log_p in log_density.values())
    axes[1].set_ylim(max(1e-8, float(np.exp(log_density["data"]).min()) / 10), 2 * peak)
    axes[0].set_title("population spike count density")
    axes[1].set_title("the same, log scale")
    axes[0].legend(fontsize=8)
    figure.suptitle("Population spike counts: data vs model vs homogeneous Poisson with the data's rates")
    return figure


# -- temporal correlations -----------------------------------------------------------------------------
def autocorrelation_figure(data: SpikeData, models: Mapping[str, SpikeData], max_lag: int = 30,
                           n_groups: int = 4) -> Figure:
    """Mean auto-correlation per neuron group (groups by summed squared correlation, from the data).

    Lag 0 (the variance) is left out; the curve is symmetric, so lags 1..max_lag are shown.
    """
    unit = time_unit_of(data)
    width = data.bin_width_s if unit == "seconds" else 1.0
    groups = metrics.neuron_groups(data.counts, data.lengths, n_groups)
    lags = np.arange(1, max_lag + 1)
    summaries = {"data": metrics.temporal_correlation_summary(data.counts, groups, data.lengths, max_lag)}
    summaries.update({name: metrics.temporal_correlation_summary(s.counts, groups, s.lengths, max_lag)
                      for name, s in models.items()})
    figure = _new_figure(3.6 * len(groups) + 0.5, 3.6)
    axes = figure.subplots(1, len(groups), squeeze=False)[0]
    for g, ax in enumerate(axes):
        for index, (name, summary) in enumerate(summaries.items()):
            values = summary.auto[g, max_lag + 1:]  # lags 1..max_lag
            if name == "data":
                ax.plot(lags * width, values, color=DATA_COLOUR, lw=2.2, label="data")
            else:
                ax.plot(lags * width, values, color=model_colour(index - 1), lw=1.5, label=name)
        ax.axhline(0.0, color=BASELINE_COLOUR, lw=0.8)
        ax.set_title(f"group {g + 1} ({len(groups[g])} neurons)", fontsize=10)
        ax.set_xlabel(_time_label(unit, "lag"))
        if g == 0:
            ax.set_ylabel("auto-covariance (counts$^2$)")
            ax.legend(fontsize=8)
    figure.suptitle("Auto-correlation by neuron group (groups from the data, most correlated first; lag 0 omitted)")
    return figure


# -- training curves ------------------------------------------------------------------------------------
def training_curves_figure(logs: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    """Training and validation loss against epoch, one panel per stage (``log.jsonl`` records)."""
    stages = [s for s in logs if logs[s]]
    figure = _new_figure(max(4.5, 4.5 * len(stages)), 3.6)
    axes = figure.subplots(1, max(1, len(stages)), squeeze=False)[0]
    for ax, stage in zip(axes, stages):
        records = logs[stage]
        positive = True
        for key, colour, marker in (("train_loss", TRAIN_COLOUR, None), ("val_loss", VAL_COLOUR, "o")):
            points = [(r["epoch"], r[key]) for r in records if key in r and r[key] is not None and "epoch" in r]
            if not points:
                continue
            epochs, values = np.asarray(points, dtype=np.float64).T
            positive = positive and bool(np.all(values > 0))
            ax.plot(epochs, values, color=colour, marker=marker, ms=3, lw=1.5,
                    label="validation" if key == "val_loss" else "training")
        if positive:
            ax.set_yscale("log")
        ax.set_title(f"{stage}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" + (" (log scale)" if positive else ""))
        ax.legend(fontsize=8)
    if not stages:
        axes[0].text(0.5, 0.5, "no training logs", ha="center", va="center")
        axes[0].set_axis_off()
    figure.suptitle("Training curves per stage")
    return figure


# -- latents ------------------------------------------------------------------------------------------
def _trajectory_axes(figure: Figure, position: tuple[int, int, int], dims: int) -> Any:
    return figure.add_subplot(*position, projection="3d") if dims >= 3 else figure.add_subplot(*position)


def _plot_trajectories(ax: Any, trajectories: np.ndarray, lengths: np.ndarray | None, colour: str,
                       n: int, labels: Sequence[str]) -> None:
    dims = min(3, trajectories.shape[2])
    for i in range(min(n, trajectories.shape[0])):
        end = int(lengths[i]) if lengths is not None else trajectories.shape[1]
        points = trajectories[i, :end, :dims]
        if dims >= 3:
            ax.plot(points[:, 0], points[:, 1], points[:, 2], color=colour, lw=0.7, alpha=0.8)
        elif dims == 2:
            ax.plot(points[:, 0], points[:, 1], color=colour, lw=0.7, alpha=0.8)
        else:
            ax.plot(np.arange(end), points[:, 0], color=colour, lw=0.7, alpha=0.8)
    if dims >= 3:
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.set_zlabel(labels[2])
    elif dims == 2:
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
    else:
        ax.set_xlabel("time (bins)")
        ax.set_ylabel(labels[0])


def latent_figure(inferred: np.ndarray | None, lengths: np.ndarray | None = None, true_latents: np.ndarray | None = None,
                  generated: np.ndarray | None = None, generated_lengths: np.ndarray | None = None,
                  n_trajectories: int = 12) -> Figure:
    """Latent trajectories: the true state (when known), inferred latents and generated latents.

    The true state and the inferred latents (real trials) are drawn in the data colour, the
    generated latents in the first model colour. Inferred latents (trials, T, D) are projected on their first 3 principal components
    (fitted on every valid bin); generated latents on the same components. With true latents
    of the same trials, the title gives the R^2 of a linear map inferred -> true, fitted on the
    first half of the trials and scored on the second.
    """
    if generated is not None and (inferred is None or generated.shape[2] != inferred.shape[2]):
        generated = None  # generated latents are shown on the inferred latents' PCs only
    panels = [p for p in (true_latents, inferred, generated) if p is not None]
    figure = _new_figure(5.2 * max(1, len(panels)), 4.8)
    position = 1
    if true_latents is not None:
        ax = _trajectory_axes(figure, (1, len(panels), position), true_latents.shape[2])
        _plot_trajectories(ax, true_latents, lengths, DATA_COLOUR, n_trajectories, ("z1", "z2", "z3"))
        ax.set_title("true latent state (latents_true)", fontsize=10)
        position += 1
    if inferred is not None:
        rows = metrics.valid_bins(inferred, lengths).astype(np.float64)
        mean = rows.mean(axis=0)
        _, singular, components = np.linalg.svd(rows - mean, full_matrices=False)
        k = min(3, components.shape[0])
        explained = (singular[:k] ** 2).sum() / max((singular ** 2).sum(), 1e-300)
        project = components[:k].T  # (D, k)
        pcs = (inferred - mean) @ project  # (trials, T, k)
        ax = _trajectory_axes(figure, (1, len(panels), position), k)
        _plot_trajectories(ax, pcs, lengths, DATA_COLOUR, n_trajectories, ("PC1", "PC2", "PC3"))
        title = f"inferred latents, first {k} PCs ({100 * explained:.0f}% variance)"
        if true_latents is not None and inferred.shape[0] >= 4:
            half = inferred.shape[0] // 2
            split_lengths = (None, None) if lengths is None else (lengths[:half], lengths[half:])
            r2 = metrics.latent_recovery_r2(inferred[:half], true_latents[:half], inferred[half:], true_latents[half:],
                                            *split_lengths)
            title += f"\nlinear readout of the true state: R$^2$ = {r2:.3f} (held-out trials)"
        ax.set_title(title, fontsize=10)
        position += 1
        if generated is not None:
            ax = _trajectory_axes(figure, (1, len(panels), position), k)
            _plot_trajectories(ax, (generated - mean) @ project, generated_lengths, model_colour(0), n_trajectories,
                               ("PC1", "PC2", "PC3"))
            ax.set_title("generated latents on the same PCs", fontsize=10)
    figure.suptitle("Latent trajectories")
    return figure
