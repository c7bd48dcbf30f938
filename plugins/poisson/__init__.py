"""The ``poisson`` observation model plugin: independent Poisson counts given the rates."""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("observation", "poisson", "ldns_plugins.poisson.model:PoissonObservation",
                  config="ldns_plugins.poisson.config:PoissonConfig",
                  summary="Independent Poisson counts per neuron and bin (exact pmf).", default=True)
