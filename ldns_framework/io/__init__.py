"""File formats of the framework's products, one module each, so that every reader and writer
agrees on the keys: :mod:`ldns_framework.io.samples` (generated trials) and
:mod:`ldns_framework.io.encodings` (latents and rates inferred from real trials). Beneath them,
:mod:`ldns_framework.io.npz` reads ``.npz``/``.npy`` files safely (only the arrays asked for, each
size-checked before it is decompressed, never a pickle) and :mod:`ldns_framework.io.paths`
checks output paths before any work is done."""
