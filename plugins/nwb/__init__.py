"""The ``nwb`` data source plugin: spikes (and behaviour) from NWB files, cut into trials the
Neural Latents Benchmark way (or into fixed windows over a recording with no trials table)."""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("data", "nwb", "ldns_plugins.nwb.source:NwbSource",
                  config="ldns_plugins.nwb.config:NwbConfig",
                  summary="Spikes from NWB files (a file or a directory), binned and aligned as the Neural Latents "
                          "Benchmark does, with behaviour series as covariates; binned per batch when larger than "
                          "memory.",
                  file_suffixes=(".nwb",))
