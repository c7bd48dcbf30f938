"""The names of the S4D inits of Im A, apart from the layer (which needs torch), so that a
component's config can offer them as choices while a spec is validated without torch."""

from __future__ import annotations

__all__ = ["INITS"]

#: Inits of Im A that :class:`ldns_framework.nn.S4D` accepts: S4D-Lin and S4D-Inv.
INITS = ("lin", "inv")
