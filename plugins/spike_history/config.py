"""Options of the ``spike-history`` observation model, without torch (read when a spec is validated)."""

from __future__ import annotations

import attrs

from ldns_framework import option

__all__ = ["LINKS", "SpikeHistoryConfig", "SpikeHistoryFitConfig"]

LINKS = ("softplus", "exp")


@attrs.frozen
class SpikeHistoryFitConfig:
    """How :meth:`SpikeHistory.fit` optimises (full-batch AdamW, as the reference)."""

    lr: float = option(0.1, doc="AdamW learning rate (reference 0.1).", gt=0, le=10)
    weight_decay: float = option(0.01, doc="AdamW decoupled weight decay on all parameters (reference 0.01).", ge=0)
    max_iter: int = option(500, doc="Most full-batch iterations (the reference runs 3000 epochs without a stopping rule).",
                           ge=1, le=10_000_000)
    tol: float = option(1.0e-6, doc="Converged when the relative change of the mean NLL between iterations stays "
                                    "<= tol for 3 iterations in a row; 0 = always run max_iter.", ge=0)
    progress: bool = option(True, doc="Show a progress bar with the current NLL.")

    def __attrs_post_init__(self) -> None:
        if self.lr * self.weight_decay >= 1:
            raise ValueError(f"weight_decay: expected lr x weight_decay < 1 (AdamW scales the weights by "
                             f"1 - lr x weight_decay each step), got {self.lr:g} x {self.weight_decay:g}")


@attrs.frozen
class SpikeHistoryConfig:
    """Options of the ``spike-history`` observation model (METHOD.md section 5)."""

    history: int = option(20, doc="H, past bins of the neuron's own spikes in its intensity (reference 20 = 100 ms "
                                  "at 5 ms bins).", ge=1, le=10_000)
    link: str = option("softplus", doc="Link from the linear drive to the intensity: softplus (reference) or exp "
                                       "(then a = 1, b = 0, w = 0 is exactly the Poisson model of the rates).",
                       choices=LINKS)
    max_spikes: int | None = option(5, doc="Cap: a count is min(Poisson, max_spikes), and the pmf lumps the tail mass "
                                           "P(X >= cap) at the cap (reference 5); null = uncapped.", ge=1, le=1_000_000)
    bernoulli: bool = option(False, doc="Binary spikes, P(spike) = 1 - exp(-lambda): the Poisson capped at 1 "
                                        "(overrides max_spikes).")
    min_rate: float = option(1.0e-8, doc="Rates are clamped below at this value before log r.", gt=0)
    encoder_observation: str = option("poisson", doc="Observation model the encoder is trained with when this one is "
                                                     "the spec's (this one is fitted on the trained encoder's rates, "
                                                     "so it cannot train the encoder; the reference trains with Poisson).")
    fit: SpikeHistoryFitConfig = option(factory=SpikeHistoryFitConfig, doc="Fitting options.")
