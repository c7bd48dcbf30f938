"""A third-party plugin as its authors would write it: hookimpls here, the model in its own module."""

from ldns_framework import hookimpl

LDNS_PLUGIN_API = 1


@hookimpl
def ldns_register_components(registrar):
    registrar.add("observation", "test-bernoulli", "ldns_test_plugin.bernoulli:BernoulliObservation",
                  summary="Binary spikes with P(spike) = 1 - exp(-rate) (test plugin).")
