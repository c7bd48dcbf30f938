"""ldns_registry: plugin discovery, the component catalogue and building components from specs.

Only the composition root (the CLI, ``Pipeline.from_spec``) imports this package.
"""

from ldns_registry.catalogue import KINDS, Catalogue, ComponentEntry, Conflict, Provider, Registrar
from ldns_registry.registry import ENTRY_POINT_GROUP, PluginFailure, Registry

__all__ = ["ENTRY_POINT_GROUP", "KINDS", "Catalogue", "ComponentEntry", "Conflict", "PluginFailure",
           "Provider", "Registrar", "Registry"]
