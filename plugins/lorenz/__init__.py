"""The ``lorenz`` data source plugin: synthetic spikes driven by a Lorenz attractor (METHOD.md section 6)."""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("data", "lorenz", "ldns_plugins.lorenz.source:LorenzSource",
                  config="ldns_plugins.lorenz.config:LorenzConfig",
                  summary="Synthetic Poisson spikes from a 3-d Lorenz attractor, with true latents and rates.",
                  default=True)
