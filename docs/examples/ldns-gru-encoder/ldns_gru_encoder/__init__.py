"""ldns-gru-encoder: a causal GRU autoencoder for ldns-framework.

This module is what the ``ldns_framework`` entry point names. Discovery imports it, so it stays
light: it registers an *import string*; the model module (which needs torch) is imported only
when a spec or ``ldns plugins --verbose`` asks for the component.
"""

from ldns_framework import hookimpl

#: The plugin API version this package was written against (ldns-framework refuses newer ones).
LDNS_PLUGIN_API = 1


@hookimpl
def ldns_register_components(registrar):
    registrar.add("encoder", "gru", "ldns_gru_encoder.model:GruAutoencoder",
                  summary="Causal GRU encoder and pointwise softplus decoder, trained with coordinated dropout.")
