"""ldns-csv-spikes: spike times from a CSV file (trial,neuron,time rows), binned into SpikeData.

This module is what the ``ldns_framework`` entry point names; it stays light (no numpy import).
The registration declares the file suffix the source reads, so ``ldns encode RUN --data
session.csv`` (and anything else given a bare file) finds this source by the file's name.
"""

from ldns_framework import hookimpl

#: The plugin API version this package was written against (ldns-framework refuses newer ones).
LDNS_PLUGIN_API = 1


@hookimpl
def ldns_register_components(registrar):
    registrar.add("data", "csv-spikes", "ldns_csv_spikes.source:CsvSpikes", file_suffixes=(".csv",),
                  summary="Spike times from a CSV of trial,neuron,time rows (seconds from trial start), binned.")
