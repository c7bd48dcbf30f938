"""ldns-ar1-generator: a closed-form AR(1) Gaussian latent generator for ldns-framework.

This module is what the ``ldns_framework`` entry point names; it stays light (no torch import)
and registers the component by import string.
"""

from ldns_framework import hookimpl

#: The plugin API version this package was written against (ldns-framework refuses newer ones).
LDNS_PLUGIN_API = 1


@hookimpl
def ldns_register_components(registrar):
    registrar.add("generator", "ar1", "ldns_ar1_generator.model:Ar1Gaussian",
                  summary="Independent AR(1) Gaussian processes per latent channel, fitted in closed form.")
