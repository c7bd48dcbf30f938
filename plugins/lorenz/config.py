"""Options of the ``lorenz`` data source, without torch (read when a spec is validated)."""

from __future__ import annotations

import attrs

from ldns_framework import option
from ldns_plugins.lorenz.system import HISTORY_FILTERS

__all__ = ["LorenzConfig"]


@attrs.frozen
class LorenzConfig:
    """Options of the ``lorenz`` data source; defaults follow METHOD.md section 6 except n_trials."""

    n_trials: int = option(1000, doc="Number of trials (the reference uses 5000); n_trials x length x n_neurons "
                                     "must fit in memory (checked when the data are generated).", ge=1, le=10_000_000)
    n_neurons: int = option(128, doc="Number of neurons read out from the 3-d latent.", ge=1, le=100_000)
    length: int = option(256, doc="Bins per trial, after the burn-in.", ge=2, le=1_000_000)
    mean_rate: float = option(0.3, doc="Sets the readout bias log(mean_rate); the softplus link makes "
                                       "the realised mean count per bin lower (~0.14 for 0.3).", gt=0, le=1000)
    softplus_beta: float = option(2.0, doc="Sharpness beta of the rate link log(1 + exp(beta x)) / beta.",
                                  ge=0.01, le=100)
    init_noise: float = option(2.0, doc="Std of the Gaussian noise added to the standard initial condition.",
                               ge=0, le=1000)
    burn_in: int = option(100, doc="Bins integrated and discarded before each trial starts.", ge=0, le=100_000)
    sigma: float = option(10.0, doc="Lorenz parameter sigma.", gt=0)
    rho: float = option(28.0, doc="Lorenz parameter rho.", gt=0)
    lorenz_beta: float = option(8.0 / 3.0, doc="Lorenz parameter beta (not the softplus beta).", gt=0)
    dt: float = option(0.005, doc="RK4 integration step in Lorenz time units.", gt=0, le=0.02)
    steps_per_bin: int = option(3, doc="RK4 steps per bin; dt x steps_per_bin = 0.015 time units per bin "
                                       "matches the reference's sampling (100 points per 1.5-unit period).",
                                 ge=1, le=1000)
    split: tuple[float, float, float] = option((0.7, 0.1, 0.2), doc="Train/val/test fractions, summing to 1.",
                                               ge=0, le=1)
    seed: int = option(42, doc="Seed of initial conditions, readout, spikes and split.", ge=0, le=2**32 - 1)
    bin_width_s: float = option(0.01, doc="Nominal bin width in seconds (Lorenz time is in bins; "
                                          "read ISI statistics in bins).", gt=0)
    history_filter: str = option("none", doc="Spike-history dependence on top of the latent-driven rates: none "
                                             "(the reference: Poisson), refractory, bursting, or mixed (each neuron "
                                             "one of the two); the filters are in metadata['history_filters'].",
                                 choices=HISTORY_FILTERS)
    history_strength: float = option(1.0, doc="Scale of the history filters (0 = none).", ge=0, le=100)

    @split.validator
    def _split_sums_to_one(self, _attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
        if len(value) != 3 or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError(f"expected three fractions (train, val, test) summing to 1, got {list(value)}")
