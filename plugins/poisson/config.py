"""Options of the ``poisson`` observation model, without torch (read when a spec is validated)."""

from __future__ import annotations

import attrs

from ldns_framework import option

__all__ = ["PoissonConfig"]


@attrs.frozen
class PoissonConfig:
    """Options of the Poisson observation model."""

    min_rate: float = option(1.0e-8, doc="Rates are clamped below at this value inside log_prob (avoids log 0).", gt=0)
