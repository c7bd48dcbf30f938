"""File formats of the framework's products, one module each, so that every reader and writer
agrees on the keys: :mod:`ldns_framework.io.samples` (generated trials) and
:mod:`ldns_framework.io.encodings` (latents and rates inferred from real trials)."""
