"""The conformance kit for plugin authors (DESIGN.md section 8), for every component kind.

- :mod:`.checks`: named property checks per kind (encoder, observation, generator, conditioner,
  data, metric), each kind ending with an integration check (a tiny spec with the component
  swapped in trains, saves, reloads and samples), usable imperatively::

      from ldns_framework.testing import check_component, format_results, run_checks

      for check in check_component("observation", MyObservation):  # a factory: the class will do
          check()                                                   # raises CheckFailed naming the property
      print(format_results(run_checks(MyEncoder, kind="encoder", registry=registry)))

- :func:`parametrize_with_checks`: the same checks as pytest parameters, with an explicit
  ``expected_failed_checks`` mapping (as scikit-learn's)::

      @parametrize_with_checks([MyObservation], kind="observation")
      def test_conformance(check):
          check()

- Contract classes to subclass (``def make_model(self, ...)``): :class:`ObservationModelContract`,
  :class:`EncoderContract`, :class:`GeneratorContract`, :class:`ConditionerContract`,
  :class:`DataSourceContract`, :class:`MetricContract`.
- :mod:`.reference`: the kit's tiny reference components (``kit-linear-encoder``, ...).
- :mod:`.command`: ``run_check_command``, what ``ldns check KIND NAME`` runs.
- :mod:`.strategies`: hypothesis strategies (``spike_counts``, ``rates``, ``masks``, ``lengths``,
  ``conditions``, ``observation_batches``, ``spike_data``).
- :mod:`.pytest_plugin`: fixtures (``isolated_registry``, ...), loaded through the ``pytest11``
  entry point.

Only :mod:`.checks` (and :mod:`.command`) is needed at run time; the rest imports pytest and
hypothesis (the ``test`` extra) on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_CHECKS = "ldns_framework.testing.checks"
_STRATEGIES = "ldns_framework.testing.strategies"
_CONTRACT = "ldns_framework.testing.contract"
_COMMAND = "ldns_framework.testing.command"
_REFERENCE = "ldns_framework.testing.reference"
#: Everything is imported on first use: the pytest plugin (loaded by every pytest run in an
#: environment with ldns-framework) imports this package and must not pull in torch.
_LAZY = {
    "CHECKS": _CHECKS,
    "KINDS": _CHECKS,
    "Check": _CHECKS,
    "CheckFailed": _CHECKS,
    "CheckResult": _CHECKS,
    "CheckSkipped": _CHECKS,
    "KitSettings": _CHECKS,
    "check_component": _CHECKS,
    "check_conditioner": _CHECKS,
    "check_data_source": _CHECKS,
    "check_encoder": _CHECKS,
    "check_generator": _CHECKS,
    "check_metric": _CHECKS,
    "check_observation_model": _CHECKS,
    "format_results": _CHECKS,
    "run_checks": _CHECKS,
    "synthetic_data": _CHECKS,
    "run_check_command": _COMMAND,
    "ConditionerContract": _CONTRACT,
    "DataSourceContract": _CONTRACT,
    "EncoderContract": _CONTRACT,
    "GeneratorContract": _CONTRACT,
    "MetricContract": _CONTRACT,
    "ObservationModelContract": _CONTRACT,
    "parametrize_with_checks": _CONTRACT,
    "reference": _REFERENCE,
    "synthetic_spike_data": _REFERENCE,
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
