"""The samplers' options classes, in a module without torch: the registry reads them to validate
the ``sample`` section of a spec (``ldns validate``) without importing the model (schedule.py
re-exports them with the samplers themselves)."""

from __future__ import annotations

import attrs

from ldns_framework import option

__all__ = ["SAMPLERS", "DdimOptions", "DdpmOptions", "DpmSolverOptions"]


@attrs.frozen
class DpmSolverOptions:
    """Multistep DPM-Solver++ of order 2 (Lu et al. 2022): few steps, the fast default."""

    steps: int = option(25, doc="Solver steps (denoiser evaluations), at most the generator's train_steps.", ge=1)
    sde: bool = option(False, doc="Solve the SDE instead of the probability-flow ODE (SDE-DPM-Solver++): fresh "
                                  "noise every step, which counters the ODE's shrinkage of the latents' spread "
                                  "under an imperfect denoiser.")


@attrs.frozen
class DdimOptions:
    """DDIM with trailing timestep spacing (Song et al. 2021; Lin et al. 2024): deterministic at eta 0."""

    steps: int = option(25, doc="DDIM steps (denoiser evaluations), at most the generator's train_steps.", ge=1)
    eta: float = option(0.0, doc="Noise added at each step, as a fraction of DDPM's: 0 is deterministic (the "
                                 "probability-flow ODE; an imperfect denoiser's samples come out slightly "
                                 "under-dispersed), 1 is ancestral like DDPM (needs more steps).", ge=0, le=1)


@attrs.frozen
class DdpmOptions:
    """Ancestral DDPM over every training step (the reference; Ho et al. 2020): nothing to choose."""


#: Sampler name -> options class; the first is the default (the generator's ``samplers``).
SAMPLERS: dict[str, type] = {"dpm-solver++": DpmSolverOptions, "ddim": DdimOptions, "ddpm": DdpmOptions}
