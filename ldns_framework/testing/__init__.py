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

_CHECKS = "ldns_framework.testing.checks"
_STRATEGIES = "ldns_framework.testing.strategies"
_CONTRACT = "ldns_framework.testing.contract"
#: Everything is imported on first use: the pytest plugin (loaded by every pytest run in an
#: environment with ldns-framework) imports this package and must not pull in torch.
_LAZY = {
    "CHECKS": _CHECKS,
    "Check": _CHECKS,
    "CheckFailed": _CHECKS,
    "CheckResult": _CHECKS,
    "CheckSkipped": _CHECKS,
    "KitSettings": _CHECKS,
    "check_observation_model": _CHECKS,
    "format_results": _CHECKS,
    "run_checks": _CHECKS,
    "synthetic_data": _CHECKS,
    "ObservationModelContract": _CONTRACT,
    "parametrize_with_checks": _CONTRACT,
    "strategies": _STRATEGIES,
    "conditions": _STRATEGIES,
    "lengths": _STRATEGIES,
    "masks": _STRATEGIES,
    "observation_batches": _STRATEGIES,
    "rates": _STRATEGIES,
    "spike_counts": _STRATEGIES,
    "spike_data": _STRATEGIES,
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ldns_framework.testing' has no attribute {name!r}")
