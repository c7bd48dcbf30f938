"""Classifier-free guidance (Ho & Salimans 2022), an option the LDNS reference lacks.

Training drops each trial's condition with probability ``condition_dropout`` (the denoiser then
sees a learned null token), so one network learns both eps(z_t, t, c) and eps(z_t, t, null).
Sampling combines the two with the guidance scale w:

    out = out_null + w (out_cond - out_null)

so w = 1 is the plain conditional model (the unconditional pass is then skipped: exactly the
unguided path), w = 0 the unconditional one, and w > 1 pushes samples towards the condition.
(Some papers write out_cond + w' (out_cond - out_null); their w' is our w - 1.) With
v-prediction the same combination applies to v: for a given z_t, v is affine in eps with the
same coefficients for both passes, so guiding v equals guiding eps.

Every sampler of the generator gets a ``guidance`` option: :data:`GUIDED_SAMPLERS` (built in
config.py, without torch, so a spec validates without it) maps each
name of the schedule's samplers to a subclass of its options class with that one field added,
so ``sample.guidance`` in a spec, ``guidance=`` in Python and ``ldns sample --guidance`` set it,
and it is recorded with the samples like the sampler's other options.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ldns_plugins.latent_diffusion.config import GUIDED_SAMPLERS, NO_GUIDANCE, with_guidance

__all__ = ["GUIDED_SAMPLERS", "NO_GUIDANCE", "guidance_of", "guided", "with_guidance"]


def guidance_of(options: Any) -> float:
    """The guidance scale of sampler ``options``: its ``guidance`` field, or 1 for a schedule options
    object without one (a caller passing ``DdimOptions(steps=10)`` asks for no guidance)."""
    return float(getattr(options, "guidance", NO_GUIDANCE))


def guided(output: Callable[[torch.Tensor], torch.Tensor], batch: int, scale: float,
           device: torch.device | str = "cpu") -> torch.Tensor:
    """out_null + w (out_cond - out_null) from one denoiser call on the doubled batch.

    ``output(dropped)`` runs the denoiser on 2 x ``batch`` trials, the first half conditioned and the
    second with the null condition, ``dropped`` (2B,) bool marking the second half -> (2B, T, D).
    """
    dropped = torch.arange(2 * batch, device=device) >= batch  # (2B,)
    conditioned, unconditioned = output(dropped).chunk(2)  # 2 x (B, T, D)
    return unconditioned + scale * (conditioned - unconditioned)
