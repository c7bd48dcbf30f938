"""The conformance kit for plugin authors (DESIGN.md section 8).

- :mod:`.checks`: named property checks for observation models, usable imperatively::

      from ldns_framework.testing import check_observation_model, run_checks

      for check in check_observation_model(MyObservation):   # a factory: MyObservation() builds one
          check()                                           # raises CheckFailed naming the property
      run_checks(MyObservation)                             # -> [CheckResult(name, passed, message), ...]

- :func:`parametrize_with_checks`: the same checks as pytest parameters, with an explicit
  ``expected_failed_checks`` mapping (as scikit-learn's)::

      @parametrize_with_checks([MyObservation, lambda: MyObservation(MyConfig(dispersion=3.0))])
      def test_conformance(check):
          check()

- :class:`ObservationModelContract`: a test class to subclass (``def make_model(self)``).
- :mod:`.strategies`: hypothesis strategies (``spike_counts``, ``rates``, ``masks``, ``lengths``,
  ``conditions``, ``observation_batches``, ``spike_data``).
- :mod:`.pytest_plugin`: fixtures (``isolated_registry``, ...), loaded through the ``pytest11``
  entry point.

Only :mod:`.checks` is needed at run time (``ldns check observation NAME``); the rest imports
pytest and hypothesis (the ``test`` extra) on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ldns_framework.testing.checks import (
    CHECKS,
    Check,
    CheckFailed,
    CheckResult,
    CheckSkipped,
    KitSettings,
    check_observation_model,
    format_results,
    run_checks,
    synthetic_data,
)

_LAZY = {
    "ObservationModelContract": "ldns_framework.testing.contract",
    "parametrize_with_checks": "ldns_framework.testing.contract",
    "strategies": "ldns_framework.testing.strategies",
    "conditions": "ldns_framework.testing.strategies",
    "lengths": "ldns_framework.testing.strategies",
    "masks": "ldns_framework.testing.strategies",
    "observation_batches": "ldns_framework.testing.strategies",
    "rates": "ldns_framework.testing.strategies",
    "spike_counts": "ldns_framework.testing.strategies",
    "spike_data": "ldns_framework.testing.strategies",
}

__all__ = [
    "CHECKS",
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "KitSettings",
    "check_observation_model",
    "format_results",
    "run_checks",
    "synthetic_data",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ldns_framework.testing' has no attribute {name!r}")
