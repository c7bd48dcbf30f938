"""Options of the ``s4-autoencoder`` encoder, without torch (read when a spec is validated)."""

from __future__ import annotations

import attrs

from ldns_framework import option
from ldns_framework.nn import INITS

__all__ = ["NORMS", "S4AutoencoderConfig"]

NORMS = ("instance", "causal")


@attrs.frozen
class S4AutoencoderConfig:
    """Options of the S4 autoencoder; defaults follow the paper's Lorenz autoencoder at half width."""

    hidden: int = option(128, doc="Hidden channels C of the encoder and decoder (reference 256).", ge=1, le=8192)
    latent_dim: int = option(8, doc="Latent channels D; must divide hidden (the bottleneck is grouped by latent).",
                             ge=1, le=8192)
    blocks: int = option(4, doc="Residual S4 blocks in the encoder.", ge=0, le=256)
    decoder_blocks: int = option(0, doc="Residual S4 blocks in the decoder; 0 keeps it pointwise in time (reference).",
                                 ge=0, le=256)
    bidirectional: bool = option(True, doc="Bidirectional S4 kernels; false gives backward-only kernels (reference for "
                                           "variable-length and monkey data).")
    norm: str = option("instance", doc="Normalisation in every block: 'instance' (the reference: statistics over the "
                                       "trial's valid bins) or 'causal' (running statistics over bins <= t); "
                                       "'causal' with bidirectional: false makes the autoencoder causal.",
                       choices=NORMS)
    state_size: int = option(64, doc="S4D state size, an even number (state_size/2 conjugate pairs).", ge=2, le=8192)
    dt_min: float = option(1.0e-3, doc="Lower end of the log-uniform S4 step-size init.", gt=0)
    dt_max: float = option(1.0e-1, doc="Upper end of the log-uniform S4 step-size init.", gt=0)
    s4_init: str = option("lin", doc="Init of the imaginary part of A: 'lin' (S4D-Lin, pi n) or 'inv' (S4D-Inv).",
                          choices=INITS)
    dropout_prob: float = option(0.2, doc="Coordinated-dropout probability p per (trial, bin, neuron); 0 disables it.",
                                 ge=0, lt=1)
    beta_l2: float = option(0.01, doc="Weight of the latent L2 penalty (Eq. 1), per input entry B*T*N.", ge=0)
    beta_td: float = option(0.01, doc="Weight of the latent temporal-smoothness penalty (Eq. 1), per input entry.", ge=0)
    calibrate_rates: bool = option(False, doc="After training, shift each neuron's decoder output bias so that its "
                                              "mean rate over the training trials equals its mean count (eval-mode "
                                              "rates otherwise come out 1-3% high). Off by default: that bias offsets "
                                              "the ODE samplers' shrinkage of the latents, so generated rates come "
                                              "out 2-3% low with it unless sampled with sde: true.")
    td_lags: int = option(5, doc="Largest lag K of the temporal-smoothness penalty (lag k weighted 1/(1+k)).",
                          ge=0, le=10_000)

    def __attrs_post_init__(self) -> None:
        if self.hidden % self.latent_dim:
            raise ValueError(f"hidden: expected a multiple of latent_dim={self.latent_dim} (the bottleneck conv is "
                             f"grouped by latent channel), got {self.hidden}")
        if self.state_size % 2:
            raise ValueError(f"state_size: expected an even number (conjugate pairs), got {self.state_size}")
        if self.dt_min > self.dt_max:
            raise ValueError(f"dt_min: expected <= dt_max={self.dt_max}, got {self.dt_min}")
