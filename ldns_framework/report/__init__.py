"""The visual report of a run: ``RUN/report/index.html`` with its figures beside it.

:func:`build_report` takes arrays (real trials, one or several named sets of generated
trials, metrics records, training logs, latents) and writes the page; :func:`report_run`
gathers them from a run directory, given the run's loaded data and trained model (what
``ldns report RUN`` and ``ldns demo`` call; nothing is rebuilt from ``spec.yaml``).

The page is self-contained: inline CSS, no scripts, no network resources, PNG figures
referenced by relative file name. Every file is written atomically (temporary file, then
rename), the page last, so a reader never sees a page whose figures are missing. A figure
that cannot be drawn (degenerate data) leaves a one-line note in its place instead of failing
the whole report.

Usage::

    from ldns_framework.report import build_report

    page = build_report("runs/lorenz", {"LDNS": samples, "LDNS + spike history": samples_sh},
                        data=test, metrics_records=records, latents=encoded.latents)
    # runs/lorenz/report/index.html, rasters.png, statistics.png, ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError
from ldns_framework.evaluation import poisson_baseline, single_blas_thread
from ldns_framework.metrics import Behaviour
from ldns_framework.rundir import STAGES, write_text

__all__ = ["STAGE_ORDER", "build_report", "read_training_logs", "report_run"]

#: Stages shown first, in pipeline order; other stage directories with a log.jsonl follow.
STAGE_ORDER = STAGES


def read_training_logs(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``{stage: [epoch records]}`` from every ``RUN/<stage>/log.jsonl`` (unreadable lines skipped)."""
    run_dir = Path(run_dir)
    found = sorted(p.parent.name for p in run_dir.glob("*/log.jsonl"))
    order = [s for s in STAGE_ORDER if s in found] + [s for s in found if s not in STAGE_ORDER]
    logs = {}
    for stage in order:
        records = []
        for line in (run_dir / stage / "log.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a killed run
            if isinstance(record, dict):
                records.append(record)
        logs[stage] = records
    return logs


@single_blas_thread  # the products here are small; see ldns_framework.evaluation.blas_limit
def build_report(run_dir: str | Path, samples: SpikeData | Mapping[str, SpikeData], data: SpikeData,
                 metrics_records: Sequence[Mapping[str, Any]] | None = None, *,
                 meta: Mapping[str, Any] | None = None,
                 training_logs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                 latents: np.ndarray | None = None, true_latents: np.ndarray | None = None,
                 generated_latents: np.ndarray | None = None, baseline: bool = True,
                 out_dir: str | Path | None = None, title: str | None = None, raster_trials: int = 3,
                 seed: int = 0, train: SpikeData | None = None, behaviour: Behaviour | None = None) -> Path:
    """Write the report page and its figures; returns the path of ``index.html``.

    ``samples``: generated trials, one set or several named sets (e.g. ``{"LDNS": a, "LDNS +
    spike history": b}``); each is drawn in its own colour in every figure. ``data``: the real
    trials compared against (the test split). ``metrics_records``: from
    :func:`ldns_framework.evaluation.evaluate` or ``metrics.json``; ``meta``: that file's meta
    block. ``training_logs``: ``{stage: records}``, read from ``RUN/<stage>/log.jsonl`` when None.
    ``latents``: inferred latents of ``data``'s trials (trials, T, D); ``true_latents``
    defaults to ``data``'s ``latents_true`` covariate; ``generated_latents``: the first sample
    set's latents. ``baseline`` adds a homogeneous-Poisson set (the data's per-neuron rates) to
    the population-count figure. ``out_dir`` defaults to ``RUN/report``.

    Conditional section (:mod:`ldns_framework.report.conditional`): when a sample set carries
    behaviour (``behaviour`` names the covariates; default :class:`~ldns_framework.metrics.Behaviour`),
    PSTHs per reach direction and decoded hand paths, with the decoder fitted on ``train`` (the
    real training trials; default ``data``); when the data has trials of several lengths,
    statistics per length bucket.
    """
    from ldns_framework.report import conditional, figures
    from ldns_framework.report.html import Section, metrics_table, render_page

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    models = {"model": samples} if isinstance(samples, SpikeData) else dict(samples)
    if not models:
        raise LdnsError("build_report: no sample set given")
    for name, spikes in models.items():
        if spikes.n_neurons != data.n_neurons:
            raise LdnsError(f"build_report: samples {name!r} have {spikes.n_neurons} neurons, the data {data.n_neurons}")
    logs = read_training_logs(run_dir) if training_logs is None else dict(training_logs)
    if true_latents is None:
        true_latents = data.covariates.get("latents_true")
    first = next(iter(models.values()))
    poisson = (poisson_baseline(data, first.n_trials, first.lengths, first.n_time, seed=[seed, 7])
               if baseline else None)
    unit = figures.time_unit_of(data)
    time_text = "seconds" if unit == "seconds" else "bins (the data's time unit)"

    sections: list[Section] = []
    if metrics_records is not None:
        sections.append(Section(
            "metrics", "Metrics", body_html=metrics_table(metrics_records),
            caption="value: samples against the real split (mean ± std over folds); floor: real data against real "
                    "data (two disjoint halves); baseline: homogeneous Poisson spikes with the split's per-neuron "
                    "rates, which match mean rates by construction. vs floor: value / floor for lower-is-better "
                    "numbers; green = at or beyond the floor, red = no better than the baseline."))

    def figure_section(anchor: str, title_text: str, caption: str, draw: Callable[[], Any]) -> None:
        file_name = f"{anchor}.png"
        try:
            figures.save_figure(draw(), out / file_name)
        except Exception as exc:  # one bad figure must not sink the report
            sections.append(Section(anchor, title_text, caption=caption, error=f"{type(exc).__name__}: {exc}"))
            return
        sections.append(Section(anchor, title_text, image=file_name, caption=caption))

    figure_section("rasters", "Spike rasters",
                   f"Random real trials (left) and generated samples; time in {time_text}, darker = more spikes.",
                   lambda: figures.raster_figure({"data": data, **models}, raster_trials, seed))
    figure_section("statistics", "Per-neuron statistics and pairwise correlations",
                   "Each point is a neuron (mean rate, mean and std inter-spike interval) or a neuron pair "
                   "(correlation of spike counts over all bins); x = real data, y = samples; dashed = identity; "
                   "r = Pearson correlation.",
                   lambda: figures.statistics_figure(data, models, seed))
    figure_section("population", "Population spike counts",
                   "Density of the number of spikes of all neurons in one bin (Gaussian KDE, Scott bandwidth); "
                   "KL(model || data) in the legend.",
                   lambda: figures.population_count_figure(data, models, poisson))
    figure_section("auto-correlation", "Auto-correlation by neuron group",
                   "Mean auto-covariance of the neurons of each group (groups by summed squared correlation, "
                   "computed on the data), per-trial mean removed, biased normalisation.",
                   lambda: figures.autocorrelation_figure(data, models))
    if latents is not None or true_latents is not None:
        figure_section("latents", "Latent trajectories",
                       "Trajectories of single trials: the true latent state where the data has one, the latents the "
                       "encoder infers from real trials (first principal components) and the generated latents on "
                       "the same components.",
                       lambda: figures.latent_figure(latents, data.lengths, true_latents, generated_latents,
                                                     first.lengths))
    behaviour = behaviour or Behaviour()
    conditioned = {name: spikes for name, spikes in models.items() if conditional.has_behaviour(spikes, behaviour)}
    if conditioned and behaviour.velocity in data.covariates:
        last_bin = behaviour.angle_bin + behaviour.angle_bins - 1
        figure_section("conditional-psth", "Conditional: PSTH per reach direction",
                       f"Trials grouped into {behaviour.directions} reach directions (real trials: the direction of "
                       f"the recorded velocity over bins {behaviour.angle_bin}..{last_bin}; samples: the direction "
                       f"they were generated for), PSTHs smoothed with a {behaviour.sigma_ms:g} ms Gaussian; r over "
                       f"every direction, bin and neuron.",
                       lambda: conditional.direction_psth_figure(data, conditioned, behaviour))
        figure_section("conditional-decoding", "Conditional: decoded behaviour",
                       "A ridge decoder (smoothed spikes to velocity) fitted on the real training trials; paths are "
                       "velocity integrated over time. Real held-out trials against their recorded paths, samples "
                       "against the trajectory (dashed) or direction (arrows) they were generated for.",
                       lambda: conditional.decoded_behaviour_figure(data, train if train is not None else data,
                                                                    conditioned, behaviour))
    if conditional.variable_length(data):
        figure_section("conditional-lengths", "Conditional: statistics per trial length",
                       "Trials bucketed by length (quantiles of the real trials' lengths): mean rate and mean "
                       "pairwise correlation of each bucket, data against each sample set.",
                       lambda: conditional.length_bucket_figure(data, models))
    if any(logs.values()):
        figure_section("training", "Training curves", "Mean training loss per epoch and validation loss where "
                                                      "evaluated, per stage (from RUN/<stage>/log.jsonl).",
                       lambda: figures.training_curves_figure(logs))

    meta = dict(meta or {})
    summary: list[tuple[str, Any]] = [("run", str(run_dir)),
                                      ("real trials", f"{data.n_trials} x {data.n_time} bins x {data.n_neurons} neurons, "
                                                      f"bin {data.bin_width_s:g} s")]
    for name, spikes in models.items():
        summary.append((f"samples: {name}", f"{spikes.n_trials} x {spikes.n_time} bins"
                                            + (f" ({spikes.metadata['file']})" if "file" in spikes.metadata else "")))
    for key in ("samples", "sampler", "against", "folds", "protocol", "seed", "created", "not_applicable"):
        if key in meta:
            summary.append((f"metrics {key}", json.dumps(meta[key]) if isinstance(meta[key], (dict, list)) else meta[key]))
    legend = [("data", figures.DATA_COLOUR)] + [(n, figures.model_colour(i)) for i, n in enumerate(models)]
    if poisson is not None:
        legend.append(("Poisson baseline", figures.BASELINE_COLOUR))
    page = render_page(title or f"Report: {run_dir.name or run_dir}", summary, sections, legend)
    write_text(out / "index.html", page)
    return out / "index.html"


def report_run(run_dir: str | Path, data: SpikeData, model: Any = None, *, samples_path: str | Path | None = None,
               metrics_path: str | Path | None = None, extra_samples: Mapping[str, str | Path] | None = None,
               split: str | None = None) -> Path:
    """Build ``RUN/report/index.html`` from a run directory, its loaded ``data`` and trained ``model``.

    Real trials: the ``split`` of ``data`` (None: test, or train when the data has no test trials). Samples:
    ``samples_path``, else the file named in the metrics' meta, else the newest
    ``RUN/samples`` file; ``extra_samples`` adds named sets (e.g. ``{"spike history": path}``).
    Metrics: ``metrics_path``, else ``RUN/metrics.json`` when it exists. Latents: ``model``
    (a :class:`~ldns_framework.model.TrainedModel`) applied to the real trials; None leaves
    them out.
    """
    from ldns_framework.evaluation import read_metrics
    from ldns_framework.io.samples import latest_samples, read_samples

    run_dir = Path(run_dir)
    if split is None:
        split = "test" if len(data.splits.get("test", ())) else "train"
    if not len(data.splits.get(split, ())):
        raise DataError("splits", f"expected real trials in split {split!r} for the report; "
                                  f"splits with trials: {', '.join(k for k, v in data.splits.items() if len(v))}")
    real = data.split(split)

    records, meta = None, {}
    metrics_file = Path(metrics_path) if metrics_path is not None else run_dir / "metrics.json"
    if metrics_file.is_file():
        records, meta = read_metrics(metrics_file)
    elif metrics_path is not None:
        raise LdnsError(f"{metrics_file}: no such metrics file")
    if samples_path is None and meta.get("samples") and Path(meta["samples"]).is_file():
        samples_path = meta["samples"]
    path = Path(samples_path) if samples_path is not None else latest_samples(run_dir)
    samples = read_samples(path)
    sets = {"model": samples.to_spike_data(data.bin_width_s, {**real.metadata, "file": str(path)})}
    for name, extra in (extra_samples or {}).items():
        sets[str(name)] = read_samples(extra).to_spike_data(data.bin_width_s, {**real.metadata, "file": str(extra)})
    latents = model.encode(real, progress=False).latents if model is not None else None
    meta = {**meta, "split": split}
    train = data.split("train") if len(data.splits.get("train", ())) else None
    return build_report(run_dir, sets, real, records, meta=meta, latents=latents, generated_latents=samples.latents,
                        train=train)
