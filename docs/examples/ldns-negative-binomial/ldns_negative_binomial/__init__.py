"""ldns-negative-binomial: a negative-binomial observation model for ldns-framework.

This module is what the ``ldns_framework`` entry point names. Discovery imports it, so it stays
light: it registers an *import string*, and the model module (which needs torch) is imported
only when a spec or ``ldns plugins --verbose`` asks for the component.
"""

from ldns_framework import hookimpl

#: The plugin API version this package was written against (ldns-framework refuses newer ones).
LDNS_PLUGIN_API = 1


@hookimpl
def ldns_register_components(registrar):
    registrar.add("observation", "negative-binomial", "ldns_negative_binomial.model:NegativeBinomialObservation",
                  summary="Gamma-Poisson (negative-binomial) counts with mean = rate and a global or "
                          "per-neuron dispersion, fitted after the encoder.")
