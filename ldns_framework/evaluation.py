"""Evaluation: generated samples against real trials, with folds, a data floor and a Poisson baseline.

METHOD.md section 7 and LDNS_NOTES.md section 3.4. For every split of real data given
(``train``, ``test``) and every metric, :func:`evaluate` reports three numbers, each a mean
and a spread (``np.std``, ddof 0, as the paper) over ``folds`` folds:

* ``value``: the model samples against the real split;
* ``floor``: real data against real data, two disjoint random halves of the split, so every
  number has a scale (what sampling noise alone gives);
* ``baseline``: a homogeneous Poisson process with the split's per-neuron mean rates,
  constant over time, with as many trials and the same lengths as the samples (seeded) — what
  a model that knows only the rates gets.

How folds are drawn (``protocol``):

* ``"bootstrap"`` (the paper's Table 1): each fold resamples the samples with replacement (N
  of N; the baseline with the same indices, as the paper uses one index set for every method)
  and compares them with the *whole* real split. The floor of a fold splits the real trials
  into random halves A and B and compares a bootstrap resample of B with A. The floor is thus
  measured with half as many trials per side as the value: for metrics limited by sampling
  noise (correlation RMSE, ISI RMSE) a perfect model scores below the floor (by about
  1/sqrt(2) for RMSEs). Read it as the scale of the noise, not as a bound.
* ``"matched"``: each fold draws halves A and B of the real split; the model (and baseline)
  are ``|A|`` samples drawn without replacement, compared with A; the floor is B against A.
  All three numbers then have equal sizes and the same reference, so the floor is what a
  perfect model would score.
* ``"full"``: no resampling of the model: all samples against the whole split (spread 0);
  the floor is B against A over ``folds`` random halvings.

Speed: metrics that are a :class:`~ldns_framework.interfaces.PooledMetric` (``prepare`` /
``trial_statistics`` / ``pool`` / ``compare_statistics``) compute per-trial statistics once
per set of trials and re-weight them per fold; a fold is a vector of trial multiplicities.
Other metrics are called as ``metric.compute(model_subset, data_subset)`` for every fold.

Records (:data:`RECORD_FIELDS`) are flat dicts, one per (split, metric value); NaN marks an
undefined number (written as ``null`` by :func:`write_metrics`).

Metrics that learn something from real data (a behaviour decoder) define ``fit(train)``: it is
called once with the real training trials (``train=``) before any split is compared. A metric
that returns no values for the samples in every fold does not apply to them (e.g. a decoding
metric on unconditional samples): it gets no records, and :func:`not_applicable` names it
(``metrics.json`` meta ``not_applicable``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import attrs
import numpy as np

from ldns_framework import metrics as _metrics
from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError
from ldns_framework.interfaces import Metric, PooledMetric
from ldns_framework.io.samples import Samples, latest_samples, read_samples
from ldns_framework.rundir import read_json, write_text
from ldns_framework.structure import unstructure_config

__all__ = [
    "FIELD_DOCS",
    "PROTOCOLS",
    "RECORD_FIELDS",
    "blas_limit",
    "single_blas_thread",
    "evaluate",
    "evaluate_run",
    "evaluate_samples",
    "format_table",
    "metrics_from_registry",
    "not_applicable",
    "poisson_baseline",
    "read_metrics",
    "write_metrics",
]

PROTOCOLS = ("bootstrap", "matched", "full")

#: Every field of a record, with its meaning (also written into metrics.json).
FIELD_DOCS = {
    "metric": "name of the value, e.g. correlation_rmse",
    "component": "the metric component that computed it, e.g. pairwise-correlation",
    "model": "name of the evaluated sample set",
    "split": "real data split compared against (train, test)",
    "value": "model vs data: mean over folds (NaN/null when undefined)",
    "spread": "model vs data: std over folds (ddof 0)",
    "floor": "data vs data (two disjoint halves of the split): mean over folds",
    "floor_spread": "data vs data: std over folds",
    "baseline": "homogeneous Poisson with the split's per-neuron mean rates vs data: mean over folds",
    "baseline_spread": "baseline: std over folds",
    "n_model": "model trials per fold (with repeats under bootstrap)",
    "n_data": "real trials each fold's model value is compared with",
    "n_floor": "real trials on each side of the floor comparison",
    "folds": "number of folds",
    "protocol": "how folds are drawn: bootstrap (the paper's), matched or full",
    "unit": "unit of value, floor and baseline ('' for unitless)",
    "better": "'lower' or 'higher' is better ('' when unknown)",
}
RECORD_FIELDS = tuple(FIELD_DOCS)

#: Covariates with a time axis and more channels than this (per-neuron arrays such as true
#: rates) are dropped before resampling: no metric compares them, and copying them per fold costs.
_MAX_COVARIATE_CHANNELS = 16


# -- metric adapter -----------------------------------------------------------------------------
class _Adapter:
    """One metric behind the pooled protocol; plain metrics are resampled and called per fold."""

    def __init__(self, name: str, metric: Metric) -> None:
        self.name = name
        self.metric = metric
        self.pooled = isinstance(metric, PooledMetric)

    def prepare(self, data: SpikeData) -> Any:
        return self.metric.prepare(data) if self.pooled else None

    def trial_statistics(self, spikes: SpikeData, context: Any) -> Any:
        return self.metric.trial_statistics(spikes, context) if self.pooled else spikes

    def pool(self, per_trial: Any, weights: np.ndarray, context: Any) -> Any:
        if self.pooled:
            return self.metric.pool(per_trial, weights, context)
        return per_trial if np.all(weights == 1) else per_trial.subset(np.repeat(np.arange(weights.size), weights))

    def compare(self, model: Any, data: Any, context: Any) -> dict[str, float]:
        values = self.metric.compare_statistics(model, data, context) if self.pooled else self.metric.compute(model, data)
        return {str(k): float(v) for k, v in dict(values).items()}

    def describe(self, context: Any) -> dict[str, dict[str, str]]:
        return dict(self.metric.describe(context))


# -- folds ----------------------------------------------------------------------------------------
@attrs.frozen
class _Fold:
    """Trial multiplicities of one fold: model/baseline vs reference, and the floor's two sides."""

    model: np.ndarray  # (n_model,)
    reference: np.ndarray  # (n_real,)
    floor: np.ndarray  # (n_real,)
    floor_reference: np.ndarray  # (n_real,)


def _indicator(indices: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(indices, minlength=size).astype(np.int64)


def _fold_plan(protocol: str, folds: int, n_model: int, n_real: int, rng: np.random.Generator) -> list[_Fold]:
    half = n_real // 2
    plan = []
    for _ in range(folds):
        order = rng.permutation(n_real)
        side_a, side_b = order[:half], order[half:2 * half]
        if protocol == "bootstrap":
            model = _indicator(rng.integers(0, n_model, n_model), n_model)
            reference = np.ones(n_real, dtype=np.int64)
            floor = _indicator(side_b[rng.integers(0, half, half)], n_real) if half else np.zeros(n_real, np.int64)
        elif protocol == "matched":
            take = min(half, n_model)
            model = _indicator(rng.choice(n_model, take, replace=False), n_model)
            reference = _indicator(side_a, n_real)
            floor = _indicator(side_b, n_real)
        else:  # full
            model = np.ones(n_model, dtype=np.int64)
            reference = np.ones(n_real, dtype=np.int64)
            floor = _indicator(side_b, n_real)
        plan.append(_Fold(model, reference, floor, _indicator(side_a, n_real)))
    return plan


# -- data preparation -----------------------------------------------------------------------------
def _lean(spikes: SpikeData) -> SpikeData:
    """The trials in memory (metrics need every trial at once), without splits and without large
    per-neuron time covariates (see module constant)."""
    spikes = spikes.in_memory()
    covariates = {k: v for k, v in spikes.covariates.items()
                  if not (v.ndim == 3 and v.shape[2] > _MAX_COVARIATE_CHANNELS)}
    return SpikeData(spikes.counts, lengths=spikes.lengths, covariates=covariates, bin_width_s=spikes.bin_width_s,
                     neuron_ids=spikes.neuron_ids, metadata=spikes.metadata)


def poisson_baseline(data: SpikeData, n_trials: int, lengths: np.ndarray | None = None, n_time: int | None = None,
                     seed: int | Sequence[int] = 0) -> SpikeData:
    """Homogeneous Poisson spikes with ``data``'s per-neuron mean rates, constant over time.

    ``n_trials`` trials of ``n_time`` bins (default: the data's), valid up to ``lengths``
    (default: full length; padding is 0). Seeded: the same arguments give the same counts.
    """
    n_time = int(n_time if n_time is not None else data.n_time)
    lengths = np.full(n_trials, n_time, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
    rates = _metrics.mean_rates(data.counts, data.lengths)  # spikes per bin, (neurons,)
    rates = np.nan_to_num(rates, nan=0.0)
    rng = np.random.default_rng(seed)
    counts = np.empty((n_trials, n_time, data.n_neurons), dtype=np.int32)
    step = max(1, 4_000_000 // max(1, n_time * data.n_neurons))
    for start in range(0, n_trials, step):
        part = slice(start, min(start + step, n_trials))
        counts[part] = rng.poisson(rates, size=(part.stop - part.start, n_time, data.n_neurons))
    counts *= (np.arange(n_time)[None, :] < lengths[:, None])[:, :, None]
    return SpikeData(counts, lengths=lengths, bin_width_s=data.bin_width_s,
                     metadata={"generated": True, "baseline": "homogeneous Poisson, per-neuron mean rates"})


def blas_limit(threads: int | None = 1) -> Any:
    """A context capping BLAS threads (threadpoolctl), or doing nothing when unavailable or ``None``.

    Multi-threaded OpenBLAS spin-waits for its threads: on a machine whose cores are busy, the
    correlation matrices of this module ran 25x slower with 2 BLAS threads than with 1.
    """
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(threads), user_api="blas")


def single_blas_thread(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run ``function`` under :func:`blas_limit` (one BLAS thread)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with blas_limit(1):
            return function(*args, **kwargs)

    return wrapper


def _split_seed(seed: int, split: str) -> list[int]:
    return [int(seed), zlib.crc32(split.encode("utf-8"))]


# -- the evaluation -----------------------------------------------------------------------------
class _PooledCache:
    """Pooled statistics keyed by (source, metric, weights), computed once each (thread-safe)."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str, bytes], Any] = {}
        self._locks: dict[tuple[str, str, bytes], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: tuple[str, str, bytes], compute: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = compute()
            return self._values[key]


def evaluate(samples: SpikeData, reference: Mapping[str, SpikeData], metrics: Mapping[str, Any], *, folds: int = 5,
             seed: int = 0, progress: bool = True, protocol: str = "bootstrap", baseline: bool = True,
             model_name: str = "model", workers: int = 1, blas_threads: int | None = 1,
             train: SpikeData | None = None) -> list[dict[str, Any]]:
    """Every metric of ``samples`` against every split in ``reference``, with floor and baseline.

    ``reference`` maps a split name to its real trials; ``metrics`` maps a component name to a
    :class:`~ldns_framework.interfaces.Metric` instance. ``protocol`` (module docstring) picks
    how the ``folds`` folds are drawn; ``seed`` fixes the folds and the baseline's spikes (per
    split). ``workers`` threads share the folds (numpy releases the GIL in most of the work).
    ``blas_threads`` caps the BLAS threads while evaluating (through ``threadpoolctl`` when
    installed; ``None`` leaves them alone): the matrix products here are small, and on a busy
    machine multi-threaded OpenBLAS spin-waits, measured 25x slower than one thread.
    ``train``: the real training trials, given to every metric defining ``fit(train)`` first.
    Returns one flat record per (split, value) with the fields of :data:`RECORD_FIELDS`.
    """
    if protocol not in PROTOCOLS:
        raise LdnsError(f"protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if int(folds) < 1:
        raise LdnsError(f"folds: expected at least 1, got {folds}")
    if not metrics:
        raise LdnsError("no metrics to evaluate (is the metrics plugin installed? see `ldns plugins`)")
    if samples.n_trials < 1:
        raise DataError("samples", "expected at least one generated trial")
    for split, real in reference.items():
        if real.n_neurons != samples.n_neurons:
            raise DataError(f"reference[{split!r}]", f"expected {samples.n_neurons} neurons like the samples, "
                                                    f"got {real.n_neurons}")
        if real.n_trials < 1:
            raise DataError(f"reference[{split!r}]", "expected at least one real trial")
    if int(workers) < 1:
        raise LdnsError(f"workers: expected at least 1 thread, got {workers}")
    adapters = [_Adapter(name, metric) for name, metric in metrics.items()]
    model = _lean(samples)
    records = []
    with blas_limit(blas_threads):
        if train is not None:
            _fit_metrics(metrics, _lean(train))
        for split, real in reference.items():
            records += _evaluate_split(model, _lean(real), split, adapters, folds=int(folds), seed=seed,
                                       progress=progress, protocol=protocol, baseline=baseline,
                                       model_name=model_name, workers=int(workers))
    return records


def _fit_metrics(metrics: Mapping[str, Any], train: SpikeData) -> None:
    """Let every metric learn what it needs from the real training trials (``Metric.fit``)."""
    for metric in metrics.values():
        metric.fit(train)


def not_applicable(records: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> list[str]:
    """Names of the metrics that produced no record (they do not apply to these samples or data)."""
    present = {record["component"] for record in records}
    return [name for name in metrics if name not in present]


def _evaluate_split(model: SpikeData, real: SpikeData, split: str, adapters: list[_Adapter], *, folds: int,
                    seed: int, progress: bool, protocol: str, baseline: bool, model_name: str,
                    workers: int) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    rng = np.random.default_rng(_split_seed(seed, split))
    plan = _fold_plan(protocol, folds, model.n_trials, real.n_trials, rng)
    sources = {"model": model, "real": real}
    if baseline:
        sources["baseline"] = poisson_baseline(real, model.n_trials, model.lengths, model.n_time,
                                               seed=_split_seed(seed, split) + [1])
    contexts = {a.name: a.prepare(real) for a in adapters}
    bar = tqdm(total=len(sources) * len(adapters) + folds, desc=f"evaluate vs {split}", unit="step",
               disable=not progress)
    per_trial: dict[tuple[str, str], Any] = {}

    def trial_task(source: str, adapter: _Adapter) -> None:
        per_trial[source, adapter.name] = adapter.trial_statistics(sources[source], contexts[adapter.name])
        bar.update(1)

    cache = _PooledCache()

    def pooled(source: str, adapter: _Adapter, weights: np.ndarray) -> Any:
        def compute() -> Any:
            return adapter.pool(per_trial[source, adapter.name], weights, contexts[adapter.name])

        if not adapter.pooled and not np.all(weights == 1):
            return compute()  # a resampled copy of the trials: used once, not worth keeping
        return cache.get((source, adapter.name, weights.tobytes()), compute)

    def fold_task(fold: _Fold) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {"value": {}, "floor": {}, "baseline": {}}
        for adapter in adapters:
            context = contexts[adapter.name]
            reference = pooled("real", adapter, fold.reference)
            out["value"][adapter.name] = adapter.compare(pooled("model", adapter, fold.model), reference, context)
            if baseline:
                out["baseline"][adapter.name] = adapter.compare(pooled("baseline", adapter, fold.model), reference,
                                                                context)
            if fold.floor.any() and fold.floor_reference.any():
                out["floor"][adapter.name] = adapter.compare(pooled("real", adapter, fold.floor),
                                                             pooled("real", adapter, fold.floor_reference), context)
        bar.update(1)
        return out

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: trial_task(*job), [(s, a) for s in sources for a in adapters]))
        results = list(pool.map(fold_task, plan))
    bar.close()

    sizes = {"n_model": int(plan[0].model.sum()), "n_data": int(plan[0].reference.sum()),
             "n_floor": int(plan[0].floor_reference.sum())}
    records = []
    for adapter in adapters:
        if not any(result["value"].get(adapter.name) for result in results):
            continue  # no value for the samples in any fold: the metric does not apply to them
        described = adapter.describe(contexts[adapter.name])
        names: dict[str, None] = {}
        for result in results:
            for part in result.values():
                names.update(dict.fromkeys(part.get(adapter.name, {})))
        for name in names:
            record: dict[str, Any] = {"metric": name, "component": adapter.name, "model": model_name, "split": split}
            for part, prefix in (("value", "value"), ("floor", "floor"), ("baseline", "baseline")):
                values = [r[part][adapter.name].get(name, math.nan) for r in results if adapter.name in r[part]]
                mean, spread = _mean_spread(values)
                record[prefix] = mean
                record["spread" if part == "value" else f"{prefix}_spread"] = spread
            info = described.get(name, {})
            record.update(sizes, folds=folds, protocol=protocol, unit=str(info.get("unit", "")),
                          better=str(info.get("better", "")))
            records.append({field: record[field] for field in RECORD_FIELDS})
    return records


def _mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and std (ddof 0) over the finite values; NaN for both when there is none."""
    finite = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if not finite.size:
        return math.nan, math.nan
    return float(finite.mean()), float(finite.std())


# -- files ----------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-ready: NaN and infinities become None, numpy scalars and arrays become Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_metrics(path: str | Path, records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> Path:
    """Write ``{"meta": ..., "fields": ..., "records": [...]}`` to ``path`` atomically (NaN -> null).

    ``meta`` should say what was evaluated: run, samples file, folds, seed, sampler; the time
    and the package version are added.
    """
    from ldns_framework import __version__

    meta = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "ldns_framework": __version__,
            **dict(meta)}
    path = Path(path)
    content = {"meta": _plain(meta), "fields": FIELD_DOCS, "records": _plain(list(records))}
    write_text(path, json.dumps(content, indent=2, allow_nan=False, default=str) + "\n")  # strict JSON, record order
    return path


def read_metrics(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records, meta) of a metrics.json; null numbers come back as NaN."""
    content = read_json(path)
    if not isinstance(content, dict) or "records" not in content:
        raise LdnsError(f"{path}: not a metrics file (expected an object with 'records')")
    numeric = {"value", "spread", "floor", "floor_spread", "baseline", "baseline_spread"}
    records = [{k: (math.nan if k in numeric and v is None else v) for k, v in r.items()} for r in content["records"]]
    return records, dict(content.get("meta", {}))


# -- one call for the CLI and the trained model ---------------------------------------------------
def metrics_from_registry(registry: Any, names: Sequence[str] | None = None) -> dict[str, Metric]:
    """Build metric components by name (default: every registered metric, in the registry's
    report order) with default options."""
    names = list(names) if names else list(registry.names("metric"))
    return {name: registry.build("metric", {"type": name}, path=f"metrics.{name}") for name in names}


def reference_splits(data: SpikeData, against: str) -> dict[str, SpikeData]:
    """The real splits named by ``against`` (``train``, ``test`` or ``both``), each non-empty."""
    choices = {"train": ("train",), "test": ("test",), "both": ("train", "test")}
    if against not in choices:
        raise LdnsError(f"--against: expected train, test or both, got {against!r}")
    reference = {}
    for split in choices[against]:
        if split not in data.splits or not len(data.splits[split]):
            raise DataError("splits", f"the run's data has no {split!r} trials to evaluate against; "
                                      f"available: {', '.join(data.splits)}")
        reference[split] = data.split(split)
    return reference


def evaluate_samples(samples: Samples, data: SpikeData, metrics: Mapping[str, Metric], *, against: str = "both",
                     folds: int = 5, seed: int = 0, protocol: str = "bootstrap", progress: bool = True,
                     workers: int = 1, model_name: str = "model") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records, meta): :func:`evaluate` of generated ``samples`` against ``data``'s ``against`` splits,
    and the meta block of ``metrics.json`` (what was compared, how the samples were drawn)."""
    reference = reference_splits(data, against)
    train = data.split("train") if len(data.splits.get("train", ())) else None
    started = time.perf_counter()
    records = evaluate(samples.to_spike_data(data.bin_width_s), reference, metrics, folds=folds, seed=seed,
                       progress=progress, protocol=protocol, workers=workers, model_name=model_name, train=train)
    meta = {"n_samples": samples.n_trials, "against": against, "not_applicable": not_applicable(records, metrics),
            "splits": {s: r.n_trials for s, r in reference.items()}, "folds": folds, "seed": seed,
            "protocol": protocol, "sampler": samples.info(), "seconds": round(time.perf_counter() - started, 2),
            "metrics": {name: _describe_component(metric) for name, metric in metrics.items()}}
    return records, meta


def evaluate_run(run_dir: str | Path | None, data: SpikeData, metrics: Mapping[str, Metric], *,
                 samples: Samples | str | Path | None = None, against: str = "both", folds: int = 5, seed: int = 0,
                 protocol: str = "bootstrap", out: str | Path | None = None, progress: bool = True,
                 workers: int = 1) -> list[dict[str, Any]]:
    """Evaluate a run's samples against its real ``data`` and write ``metrics.json``; returns the records.

    ``samples``: in memory, a samples file, or None for the newest ``RUN/samples`` file;
    ``against``: ``train``, ``test`` or ``both``; ``metrics``: name -> Metric (see
    :func:`metrics_from_registry`). ``out`` defaults to ``RUN/metrics.json`` (nothing is
    written when there is neither ``out`` nor a run directory).
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    if samples is None:
        if run_dir is None:
            raise LdnsError("evaluate: no samples given and no run directory to find them in")
        samples = latest_samples(run_dir)
    path = None if isinstance(samples, Samples) else Path(samples)
    loaded = samples if path is None else read_samples(path)
    records, meta = evaluate_samples(loaded, data, metrics, against=against, folds=folds, seed=seed,
                                     protocol=protocol, progress=progress, workers=workers,
                                     model_name="model" if path is None else path.stem)
    out = out if out is not None else (run_dir / "metrics.json" if run_dir is not None else None)
    if out is not None:
        write_metrics(out, records, {"run": str(run_dir) if run_dir else None,
                                     "samples": str(path) if path else "(in memory)", **meta})
    return records


def _describe_component(metric: Metric) -> dict[str, Any]:
    return {"class": f"{type(metric).__module__}.{type(metric).__qualname__}",
            "options": unstructure_config(metric.config)}


def format_table(records: Sequence[Mapping[str, Any]], not_applicable: Sequence[str] = ()) -> str:
    """The records as a plain-text table (metric, split, value +- spread, floor, baseline, unit), and a
    line naming the metrics that do not apply (:func:`not_applicable`, meta ``not_applicable``)."""
    header = ("metric", "split", "value", "+-", "floor", "baseline", "unit")
    rows = [header]
    for r in records:
        rows.append((str(r["metric"]), str(r["split"]), _fmt(r["value"]), _fmt(r["spread"]), _fmt(r["floor"]),
                     _fmt(r["baseline"]), str(r.get("unit", ""))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i in (0, 1, 6) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    if not_applicable:
        lines.append(f"not applicable to these samples (no values): {', '.join(not_applicable)}")
    return "\n".join(line.rstrip() for line in lines)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"
