"""How well velocity-conditioned samples follow the trajectories they were conditioned on (issue 11).

On synthetic MC_Maze-structured files (``--preset mc_maze-mini`` by default), trains the CPU-sized
velocity-conditioned spec (docs/specs/mc_maze-velocity-synthetic.yaml), conditions samples on the
hand velocities of real held-out trials (val + test: trajectories the model never saw), and decodes
velocity from the samples with a ridge regression fitted on the real training trials:

    features: ``spikes``: counts smoothed with a Gaussian (``--sigma-bins``, 6 bins = 30 ms at 5 ms, as
              the reference's PCA figures); ``rates``: the reference's protocol (LDNS_NOTES.md 3.7), the
              autoencoder's inferred rates of real trials and the decoded rates of samples; per bin.
    target:   the hand velocity of that bin (already lagged 100 ms by the data source).
    decoder:  sklearn ``Ridge``, fitted on every valid bin of the training split; R^2 = ``r2_score``
              over all bins, averaged over x and y (the reference's).

Figures printed (and written to ``--json``):

- ``real held-out``: the decoder on the real held-out trials against their own velocity (its ceiling);
- ``samples vs their conditions``: samples against the velocity trace each was conditioned on;
- ``samples vs other conditions``: the same samples against another held-out trial's trace (chance);
- ``samples vs their conditions (seen)``: samples conditioned on training trials' traces;

each for both feature kinds.

    python benchmarks/conditioning.py                       # about 10 min on 2 CPU cores
    python benchmarks/conditioning.py --run runs/vel --samples-per-condition 20 --set train.generator.epochs=300

Self-contained: uses only the public API (Pipeline, the run's conditioner) and scikit-learn.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from ldns_framework.nwb.synthetic import write_synthetic_mc_maze
from ldns_framework.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "docs" / "specs" / "mc_maze-velocity-synthetic.yaml"


def smoothed(counts: np.ndarray, sigma_bins: float) -> np.ndarray:
    """counts (trials, time, neurons) -> Gaussian-smoothed along time, same shape (float64)."""
    return gaussian_filter1d(counts.astype(np.float64), sigma_bins, axis=1, mode="nearest")


def bins(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(trials, time, dim) -> (valid bins, dim), trial by trial."""
    return np.concatenate([v[:length] for v, length in zip(values, lengths)])


def r2(decoder: Ridge, features: np.ndarray, velocity: np.ndarray, lengths: np.ndarray) -> float:
    """R^2 of the velocity decoded from ``features`` against ``velocity`` (trials, time, 2), over valid bins."""
    return float(r2_score(bins(velocity, lengths), decoder.predict(bins(features, lengths))))


def trained_pipeline(args: argparse.Namespace) -> Pipeline:
    """The run at ``--run`` when its generator is trained, else the spec trained into it (on new files)."""
    run = Path(args.run)
    if (run / "generator" / "state.json").is_file():
        print(f"using the trained run {run}", file=sys.stderr)
        return Pipeline.load(run)
    data_dir = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="ldns-conditioning-"))
    if not (data_dir / "000128").is_dir():
        write_synthetic_mc_maze(data_dir, args.preset, args.seed)
    pipeline = Pipeline.from_spec(args.spec, [f"data.path={data_dir}", *args.set])
    start = time.perf_counter()
    pipeline.fit(run_dir=run, progress=False)
    print(f"trained {run} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return pipeline


def measure(pipeline: Pipeline, args: argparse.Namespace) -> dict[str, float]:
    data = pipeline.load_data()
    conditioner = pipeline.model.conditioner
    velocity, lengths = data.covariates[conditioner.config.covariate], data.lengths
    train = data.splits["train"]
    held = np.concatenate([data.splits.get("val", np.zeros(0, np.int64)), data.splits["test"]])
    seen = np.random.default_rng(args.seed).choice(train, size=min(held.size, train.size), replace=False)
    k = args.samples_per_condition
    features = {  # name -> (features of real trials by index, features of samples)
        "spikes": (lambda idx: smoothed(data.counts[idx], args.sigma_bins),
                   lambda samples: smoothed(np.asarray(samples.counts), args.sigma_bins)),
        "rates": (lambda idx: pipeline.encode(data.subset(idx), progress=False).rates,
                  lambda samples: np.asarray(samples.rates)),
    }
    target = bins(velocity[train], lengths[train])  # (bins, 2)
    decoders = {name: Ridge(alpha=args.alpha).fit(bins(real(train), lengths[train]), target)
                for name, (real, _) in features.items()}
    figures: dict[str, float] = {"held_out_trials": int(held.size), "samples_per_condition": k}
    for name, (real, _) in features.items():
        figures[f"{name}: real held-out"] = r2(decoders[name], real(held), velocity[held], lengths[held])
    for label, trials in (("their conditions", held), ("their conditions (seen)", seen)):
        traces = np.repeat(conditioner.user_conditions(data, trials), k, axis=0)  # (trials * k, time, 2) data units
        start = time.perf_counter()
        samples = pipeline.sample(len(traces), condition=traces, seed=args.seed, progress=False)
        figures[f"sampling s ({label})"] = round(time.perf_counter() - start, 1)
        sampled = np.asarray(samples.lengths)
        for name, (_, of_samples) in features.items():
            figures[f"{name}: samples vs {label}"] = r2(decoders[name], of_samples(samples), traces, sampled)
            if trials is held:  # each sample against the next held-out trial's trace: chance
                figures[f"{name}: samples vs other conditions"] = r2(decoders[name], of_samples(samples),
                                                                     np.roll(traces, k, axis=0), sampled)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(SPEC), help="velocity-conditioned spec (data.path is set here)")
    parser.add_argument("--run", default=str(Path(tempfile.gettempdir()) / "ldns-conditioning-run"),
                        help="run directory: reused when its generator is trained, else trained into")
    parser.add_argument("--data", help="directory with (or for) the synthetic files (default: a new temporary one)")
    parser.add_argument("--preset", default="mc_maze-mini", help="synthetic preset (mc_maze-mini or mc_maze)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the files, the samples and the seen trials")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="spec override")
    parser.add_argument("--samples-per-condition", type=int, default=10)
    parser.add_argument("--sigma-bins", type=float, default=6.0, help="Gaussian smoothing of spikes, in bins")
    parser.add_argument("--alpha", type=float, default=1.0, help="ridge penalty")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    figures = measure(trained_pipeline(args), args)
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
