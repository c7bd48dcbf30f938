"""The ``none`` conditioner plugin: unconditional generation."""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("conditioner", "none", "ldns_plugins.none_conditioner.conditioner:NoCondition",
                  config="ldns_framework.config:NoOptions",
                  summary="Unconditional generation (no condition tensor).", default=True)
