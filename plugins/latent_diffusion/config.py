"""Options of the ``latent-diffusion`` generator and of its samplers, without torch (read when a
spec is validated): :class:`LatentDiffusionConfig`, and :data:`GUIDED_SAMPLERS`, each sampler's
options class (options.py) with the classifier-free ``guidance`` scale added (guidance.py applies it)."""

from __future__ import annotations

import attrs

from ldns_framework import option
from ldns_plugins.latent_diffusion.options import SAMPLERS

__all__ = ["GUIDED_SAMPLERS", "NO_GUIDANCE", "LatentDiffusionConfig", "with_guidance"]


@attrs.frozen
class LatentDiffusionConfig:
    """Options of the latent diffusion model; defaults follow the paper's Lorenz denoiser (METHOD.md Sec. 3)."""

    hidden: int = option(64, doc="Hidden channels C of the denoiser, a multiple of 4 (reference: Lorenz 64, "
                                 "monkey 256, human 384).", ge=4, le=8192)
    blocks: int = option(4, doc="adaLN-Zero S4 blocks in the denoiser (reference: Lorenz 4, monkey and human 6).",
                         ge=1, le=256)
    state_size: int = option(64, doc="S4D state size, an even number (state_size/2 conjugate pairs).", ge=2, le=8192)
    train_steps: int = option(1000, doc="Diffusion timesteps of the forward process (reference 1000); the ddpm "
                                        "sampler runs all of them.", ge=2, le=100_000)
    beta_start: float = option(1.0e-4, doc="First beta of the linear noise schedule.", gt=0, lt=1)
    beta_end: float = option(0.02, doc="Last beta of the linear noise schedule.", gt=0, lt=1)
    prediction: str = option("v_prediction", doc="What the denoiser predicts: 'v_prediction' (default: at CPU "
                                                 "budgets its samples match the data where epsilon's are "
                                                 "over-dispersed, see benchmarks/README.md) or 'epsilon' (the reference).",
                             choices=("epsilon", "v_prediction"))
    loss: str = option("mse", doc="Loss on the predicted noise: 'mse' (reference Lorenz) or 'smooth_l1' "
                                  "(reference monkey and human).", choices=("mse", "smooth_l1"))
    smooth_l1_beta: float = option(0.04, doc="Beta of the SmoothL1 loss (reference 0.04, 0.05 conditional).", gt=0)
    ema_max_decay: float = option(0.9999, doc="Largest EMA decay; the decay warms up as 1-(1+step)^(-ema_power).",
                                  ge=0, le=1)
    ema_power: float = option(2.0 / 3.0, doc="Power of the EMA decay warm-up (diffusers EMAModel default 2/3).",
                              gt=0, le=100)
    mask_channel: bool = option(False, doc="Feed the validity mask as an extra denoiser channel (variable-length "
                                           "data, reference human); without centre the denoiser is also blind "
                                           "to padded bins.")
    centre: bool = option(False, doc="Centre each trial's latents in the training window (the longest batch "
                                     "seen) with edge-replicated padding, and let the denoiser see the whole "
                                     "window: the reference human setting (LDNS_NOTES 1.6); needs mask_channel.")
    condition_dropout: float = option(0.0, doc="Probability of replacing a trial's condition with a learned null "
                                               "token while training (classifier-free guidance; 0 = off, the "
                                               "reference); unconditional models have none to drop and ignore it.",
                                      ge=0, lt=1)
    x0_clip: float | None = option(None, doc="While sampling, clip the clean latents implied by each denoiser "
                                             "output to [-x0_clip, x0_clip] (thresholding to the training range; "
                                             "null = off, the reference).", gt=0)
    clamp: float | None = option(5.0, doc="Clamp the sampled normalised latents to [-clamp, clamp]; null = off "
                                          "(reference clamps Lorenz latents to [-5, 5]).", gt=0)

    def __attrs_post_init__(self) -> None:
        if self.hidden % 4:
            raise ValueError(f"hidden: expected a multiple of 4 (the embedding has hidden/4 channels), got {self.hidden}")
        if self.state_size % 2:
            raise ValueError(f"state_size: expected an even number (conjugate pairs), got {self.state_size}")
        if self.beta_start > self.beta_end:
            raise ValueError(f"beta_start: expected <= beta_end={self.beta_end}, got {self.beta_start}")
        if self.centre and not self.mask_channel:
            raise ValueError("centre: needs mask_channel: true (the denoiser must see where each trial lies)")


#: The guidance scale of the plain conditional model (and of every unconditional draw).
NO_GUIDANCE = 1.0


def with_guidance(options_class: type) -> type:
    """A frozen attrs subclass of a sampler's ``options_class`` with a ``guidance`` field (default 1)."""

    @attrs.frozen
    class Guided(options_class):
        guidance: float = option(NO_GUIDANCE, doc="Classifier-free guidance scale w: out = out_null + w (out_cond - "
                                                  "out_null); 1 = plain conditional (the reference), 0 = "
                                                  "unconditional, > 1 stronger conditioning. w != 1 needs a "
                                                  "conditional model trained with condition_dropout > 0.",
                                 ge=0, le=100)

    Guided.__name__ = Guided.__qualname__ = options_class.__name__
    Guided.__doc__ = f"{(options_class.__doc__ or '').strip()} With a classifier-free guidance scale."
    return Guided


#: Sampler name -> options class with ``guidance``; the schedule's order, so its default stays first.
GUIDED_SAMPLERS: dict[str, type] = {name: with_guidance(cls) for name, cls in SAMPLERS.items()}
