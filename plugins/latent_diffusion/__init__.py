"""The ``latent-diffusion`` generator plugin: the LDNS S4 denoiser with DDPM training and fast samplers
(Kapoor, Schulz et al. 2024, Sec. 3.2; METHOD.md Sec. 3-4)."""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("generator", "latent-diffusion", "ldns_plugins.latent_diffusion.model:LatentDiffusion",
                  config="ldns_plugins.latent_diffusion.config:LatentDiffusionConfig",
                  samplers="ldns_plugins.latent_diffusion.config:GUIDED_SAMPLERS",
                  summary="DDPM on normalised latents with a bidirectional S4 adaLN-Zero denoiser, EMA weights, "
                          "and dpm-solver++ / ddim / ddpm samplers (the LDNS reference).",
                  default=True)
