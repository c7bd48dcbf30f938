"""The ``lorenz`` data source: synthetic spikes driven by a 3-d Lorenz attractor (METHOD.md section 6).

Latents z (trials, time, 3) are Lorenz trajectories from the standard initial condition plus
N(0, init_noise^2) noise, after ``burn_in`` discarded bins, z-scored per trial and dimension; rates
are softplus_beta(C z + log mean_rate) with unit-norm readout rows C ~ N(0, 1); counts ~ Poisson.
True latents and rates are kept as the covariates ``latents_true`` and ``rates_true``.

With ``history_filter`` (refractory, bursting or mixed; default none, the reference) the counts
depend on each neuron's own recent spikes as well: s_t ~ Poisson(r_t exp(sum_k h_k s_{t-k}))
with known per-neuron filters h (N, 20), drawn bin by bin (``system.history_spikes``). That is
the spike-history model with the exp link, so its fit can be checked against the truth:
``LorenzSource(cfg).history_filters()``, also stored in ``metadata["history_filters"]``;
``rates_true`` stays the latent-driven r. The default output is unchanged by this option.

Lorenz time is in model units, not seconds: ``bin_width_s`` is nominal, and ISI statistics for
this data set are read in bins (the reference uses dt = 1 bin).

Usage::

    from ldns_plugins.lorenz.source import LorenzConfig, LorenzSource

    data = LorenzSource(LorenzConfig(n_trials=200, length=128, seed=0)).load()
    data.counts.shape                          # (200, 128, 128) int32, (trials, time, neurons)
    data.covariates["latents_true"].shape      # (200, 128, 3) float32, z-scored per trial
    data.covariates["rates_true"].shape        # (200, 128, 128) float32, expected counts per bin
    train = data.split("train")                # 140 trials; "val" 20, "test" 40

In a spec: ``data: {type: lorenz, n_trials: 5000, n_neurons: 128, length: 256}`` (the reference);
``data: {type: lorenz, history_filter: refractory, history_strength: 1.0}`` adds spike history.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import attrs
import numpy as np

from ldns_framework import DataError, DataSource, SpikeData, limits
from ldns_plugins.lorenz.config import LorenzConfig
from ldns_plugins.lorenz.system import (
    HISTORY_BINS,
    history_filters,
    history_spikes,
    initial_states,
    integrate_lorenz,
    rates_from_latents,
    readout_matrix,
    zscore_per_trial,
)

#: Size of a block of trials (in trials x bins x neurons) whose spikes share one child seed.
_ELEMENTS_PER_BLOCK = 1 << 21


def split_indices(n_trials: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Disjoint train/val/test trial indices covering all trials (sorted within each split).

    Boundaries are the rounded cumulative fractions, so sizes never exceed ``n_trials``;
    5000 trials at (0.7, 0.1, 0.2) give the reference's 3500 / 500 / 1000.
    """
    order = rng.permutation(n_trials)
    bounds = np.rint(np.cumsum(fractions)[:2] * n_trials).astype(int)
    parts = np.split(order, bounds)
    return {name: np.sort(part) for name, part in zip(("train", "val", "test"), parts)}


class LorenzSource(DataSource):
    """Generates the Lorenz data set; the same config (seed included) gives identical arrays."""

    config_class = LorenzConfig

    def load(self) -> SpikeData:
        cfg = self.config
        self.check_memory()
        ic_seed, readout_seed, spike_seed, split_seed = np.random.SeedSequence(cfg.seed).spawn(4)
        latents = self._latents(np.random.default_rng(ic_seed))  # (n, T, 3)
        readout = readout_matrix(np.random.default_rng(readout_seed), cfg.n_neurons)  # (N, 3)
        filters = self.history_filters() if self._has_history else None  # (N, H)
        rates, counts = self._rates_and_counts(latents, readout, spike_seed, filters)  # (n, T, N) each
        metadata = {"source": "lorenz", "generator": "Lorenz attractor -> softplus readout -> Poisson",
                    "parameters": _plain(attrs.asdict(cfg)), "time_units_per_bin": cfg.dt * cfg.steps_per_bin,
                    "isi_unit": "bins"}
        if filters is not None:
            metadata["generator"] = ("Lorenz attractor -> softplus readout -> Poisson with rate "
                                     "r_t exp(min(sum_k h_k s_(t-k), 2)) (rates_true is r)")
            metadata["history_filters"] = filters.tolist()
        return SpikeData(
            counts=counts,
            covariates={"latents_true": latents, "rates_true": rates},
            bin_width_s=cfg.bin_width_s,
            splits=split_indices(cfg.n_trials, cfg.split, np.random.default_rng(split_seed)),
            metadata=metadata,
        )

    def check_memory(self) -> None:
        """Raise before allocating when the arrays of this config would not fit in memory: counts and
        rates, 4 bytes each per (trial, bin, neuron) plus validation temporaries; the float64
        trajectories, integrated in RK4 (four stages) per (trial, bin incl. burn-in, latent dim)."""
        cfg = self.config
        limits.check_array("data", {"n_trials": cfg.n_trials, "length": cfg.length, "n_neurons": cfg.n_neurons}, 12)
        limits.check_array("data", {"n_trials": cfg.n_trials, "burn_in + length": cfg.burn_in + cfg.length},
                           3 * 8 * 6)

    @property
    def _has_history(self) -> bool:
        return self.config.history_filter != "none" and self.config.history_strength > 0

    def history_filters(self) -> np.ndarray:
        """The true per-neuron history filters (N, 20) of this config (zeros for ``history_filter: none``).

        Column k - 1 weighs the neuron's count k bins back: the spike-history model with the exp
        link, rate gain 1, bias 0 and these weights generated the counts (up to the drive clip at 2).
        """
        cfg = self.config
        if not self._has_history:
            return np.zeros((cfg.n_neurons, HISTORY_BINS))
        filter_seed = np.random.SeedSequence(cfg.seed).spawn(5)[4]  # the first four seed the reference arrays
        return history_filters(cfg.history_filter, cfg.n_neurons, cfg.history_strength,
                               np.random.default_rng(filter_seed))

    def _latents(self, rng: np.random.Generator) -> np.ndarray:
        """Lorenz trajectories after the burn-in, z-scored per trial and dimension: (n, T, 3) float32."""
        cfg = self.config
        start = initial_states(rng, cfg.n_trials, cfg.init_noise)  # (n, 3)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below, once
            raw = integrate_lorenz(start, cfg.burn_in + cfg.length, dt=cfg.dt, steps_per_bin=cfg.steps_per_bin,
                                   sigma=cfg.sigma, rho=cfg.rho, beta=cfg.lorenz_beta)[:, cfg.burn_in:]  # (n, T, 3)
        if not np.isfinite(raw).all():
            raise DataError("data.dt", f"the Lorenz integration diverged with dt={cfg.dt}; use a smaller dt")
        return zscore_per_trial(raw).astype(np.float32)

    def _rates_and_counts(self, latents: np.ndarray, readout: np.ndarray, seed: np.random.SeedSequence,
                          filters: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """True rates and counts, latents (n, T, 3) -> two (n, T, N) arrays.

        Counts are Poisson given the rates, or, with history ``filters`` (N, H), drawn bin by bin
        with the rate modulated by each neuron's own recent spikes (:func:`history_spikes`).

        Trials are cut into fixed blocks, each with its own child seed and filled on its own
        thread (numpy releases the GIL), so the result depends on the config alone, never on
        the thread count, and memory for temporaries stays bounded.
        """
        n_trials, length, _ = latents.shape
        shape = (n_trials, length, readout.shape[0])
        rates = np.empty(shape, dtype=np.float32)
        counts = np.empty(shape, dtype=np.int32)
        block = max(1, _ELEMENTS_PER_BLOCK // (length * readout.shape[0]))
        starts = range(0, n_trials, block)

        def fill(start: int, block_seed: np.random.SeedSequence) -> None:
            part = slice(start, start + block)
            rates[part] = rates_from_latents(latents[part], readout, self.config.mean_rate, self.config.softplus_beta)
            rng = np.random.default_rng(block_seed)
            counts[part] = rng.poisson(rates[part]) if filters is None else history_spikes(rates[part], filters, rng)

        with ThreadPoolExecutor() as pool:
            list(pool.map(fill, starts, seed.spawn(len(starts))))
        return rates, counts


def _plain(value: object) -> object:
    """JSON-ready copy of a config dict (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, tuple) else value
