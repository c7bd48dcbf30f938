"""The ``arrays`` data source plugin: spike counts from a ``.npz`` or ``.npy`` file, in memory or read per batch."""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("data", "arrays", "ldns_plugins.arrays.source:ArraysSource",
                  config="ldns_plugins.arrays.config:ArraysConfig",
                  summary="Binned counts from an .npz file (counts, optional lengths and covariate/<name>) or a "
                          ".npy file; left in the file and read per batch when larger than memory.",
                  file_suffixes=(".npz", ".npy"))
