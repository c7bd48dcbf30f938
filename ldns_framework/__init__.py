"""ldns-framework: plugin-based generative models of neural spiking data (LDNS).

The public API for users and plugin authors. Names that need torch (the interfaces and
:class:`Batch`) are imported on first use, so that plugin discovery stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ldns_framework._markers import PLUGIN_API_VERSION, PROJECT_NAME, hookimpl, hookspec
from ldns_framework.config import NoOptions, option
from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError, PluginError, SpecError

__version__ = "0.1.0"

_LAZY = {
    "limits": "ldns_framework.limits",
    "metrics": "ldns_framework.metrics",
    "nn": "ldns_framework.nn",
    "Batch": "ldns_framework.batch",
    "Conditioner": "ldns_framework.interfaces",
    "DataSource": "ldns_framework.interfaces",
    "Interrupted": "ldns_framework.training",
    "NpzFile": "ldns_framework.io.npz",
    "read_counts": "ldns_framework.io.lazy",
    "ConcatenatedRows": "ldns_framework.io.lazy",
    "LazyCounts": "ldns_framework.io.lazy",
    "lazy_option": "ldns_framework.io.lazy",
    "memory_limit_bytes": "ldns_framework.io.lazy",
    "memory_limit_option": "ldns_framework.io.lazy",
    "Encoder": "ldns_framework.interfaces",
    "LatentGenerator": "ldns_framework.interfaces",
    "Metric": "ldns_framework.interfaces",
    "ObservationModel": "ldns_framework.interfaces",
    "PooledMetric": "ldns_framework.interfaces",
    "Unconditional": "ldns_framework.interfaces",
}

__all__ = [
    "PLUGIN_API_VERSION",
    "PROJECT_NAME",
    "DataError",
    "LdnsError",
    "NoOptions",
    "PluginError",
    "SpecError",
    "SpikeData",
    "__version__",
    "hookimpl",
    "hookspec",
    "option",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ldns_framework' has no attribute {name!r}")
