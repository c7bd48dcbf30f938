"""The ``s4-autoencoder`` encoder plugin: the LDNS S4 autoencoder (Kapoor, Schulz et al. 2024, Sec. 3.1)."""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("encoder", "s4-autoencoder", "ldns_plugins.s4_autoencoder.model:S4Autoencoder",
                  config="ldns_plugins.s4_autoencoder.config:S4AutoencoderConfig",
                  summary="S4 autoencoder with a pointwise decoder and coordinated dropout (the LDNS reference).",
                  default=True)
