"""The machinery shared by every kind's checks: results, settings, the subject, registration, running.

A *check* is one small named function ``check(subject, name)`` that raises :class:`CheckFailed`
(the message starts with the check's name) when the component violates the property, or
:class:`CheckSkipped` when it cannot run on this component (reported as skipped, never as passed).
Checks register per component kind with :func:`register_check`; a check that does not apply to a
component (by its tags or declared attributes) says why through its ``applies`` function, and is
listed as skipped with that reason.
"""

from __future__ import annotations

import copy
import inspect
import time
import unittest
from typing import Any, Callable, Iterable, Mapping

import attrs
import torch

__all__ = [
    "KINDS",
    "CHECKS",
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "CheckSpec",
    "KitSettings",
    "Subject",
    "call_factory",
    "fail",
    "format_results",
    "format_row",
    "format_summary",
    "register_check",
    "run_check_list",
]

KINDS = ("encoder", "observation", "generator", "conditioner", "data", "metric")


class CheckFailed(AssertionError):
    """A component violated a property; the message starts with the check's name."""


class CheckSkipped(unittest.SkipTest):
    """A check cannot run on this component (pytest reports it as skipped, ``ldns check`` as SKIP)."""


STATUSES = ("passed", "failed", "skipped")


@attrs.frozen
class CheckResult:
    """One row of a kit run: the check's name, its status and why it failed or was skipped."""

    name: str
    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"


@attrs.frozen
class KitSettings:
    """Sizes and thresholds of the checks (the defaults take a few seconds per component on one core)."""

    n_neurons: int = 3  # neurons in the inputs, unless the component fixes its own number
    n_time: int = 6  # bins of the sampler-vs-log_prob test
    n_draws: int = 2000  # draws per distribution compared
    n_count_draws: int = 20000  # entries drawn over a wide range of rates by samples_are_counts
    max_count: int = 30  # the grid of counts 0..max_count per neuron (pmf sums, conditionals)
    grid_neurons: int = 3  # joint grids over more neurons than this are skipped ((K+1)^N rows)
    min_rate: float = 0.05
    max_rate: float = 2.0
    extreme_rate: float = 200.0  # the largest rate samples_are_counts draws at
    z_threshold: float = 5.0  # |z| above this fails the sampler tests
    p_threshold: float = 1.0e-6  # chi-square p-values below this fail
    normalisation_tolerance: float = 2.0e-3
    rtol: float = 1.0e-4  # comparisons of outputs (batching, padding, permutations, causality)
    atol: float = 1.0e-3
    latent_dim: int = 3  # latent channels of generators under test
    length: int = 12  # bins of encoder and generator inputs
    n_trials: int = 4  # trials of encoder and generator inputs
    integration_epochs: int = 2  # epochs of each trained stage in the integration check
    seed: int = 0


Factory = Callable[..., Any]


def call_factory(factory: Factory, **context: Any) -> Any:
    """``factory(**context)``, passing only the keywords its signature takes (all of them with ``**kwargs``).

    The pipeline builds encoders with ``n_neurons``, generators with ``latent_dim``, ``condition_kind``
    and ``condition_dim``: a component class is a factory, and so is ``lambda: MyModel(config)``.
    """
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return factory(**context)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return factory(**context)
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return factory(**{k: v for k, v in context.items() if k in names})


def accepts(factory: Factory, keyword: str) -> bool:
    """Whether ``factory`` takes ``keyword`` (or any keyword)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or p.name == keyword for p in parameters)


def fail(name: str, message: str) -> CheckFailed:
    return CheckFailed(f"{name}: {message}")


class Subject:
    """The component under test: its factory, the context it is built with, and where it is registered.

    ``prepared()`` builds it once (a kind's subclass may fit it); ``component()`` is a fresh deep
    copy for each check. ``registry`` and ``name`` (the registered name, with ``options``) let the
    integration check build it from a spec.
    """

    kind = ""

    def __init__(self, factory: Factory, settings: KitSettings, *, registry: Any = None, name: str | None = None,
                 options: Mapping[str, Any] | None = None) -> None:
        self.factory = factory
        self.settings = settings
        self.registry = registry
        self.registered_name = name
        self.options = dict(options or {})
        self.probe = self.build()
        self.name = type(self.probe).__name__
        self.tags = frozenset(getattr(self.probe, "tags", ()) or ())
        self._prepared: Any = None

    def context(self) -> dict[str, Any]:
        """Keywords the pipeline passes when it builds this kind."""
        return {}

    def build(self, **context: Any) -> Any:
        return call_factory(self.factory, **{**self.context(), **context})

    def prepare(self, component: Any) -> Any:
        """What a kind does to a fresh component before checks use it (e.g. fit it)."""
        return component

    def prepared(self) -> Any:
        if self._prepared is None:
            self._prepared = self.prepare(self.build())
        return self._prepared

    def component(self) -> Any:
        """A fresh copy of the prepared component."""
        return copy.deepcopy(self.prepared())

    def data(self) -> Any:
        """The data this kind's checks use (conditioners, metrics: ``make_data``'s); None: the kit's own."""
        return None

    def generator(self, offset: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.settings.seed * 1000 + offset)


Applies = Callable[[Subject], "str | None"]


def always(_subject: Subject) -> str | None:
    return None


@attrs.frozen
class CheckSpec:
    """A registered check: its name, first docstring line, function and applicability test."""

    kind: str
    name: str
    doc: str
    function: Callable[[Subject, str], None]
    applies: Applies = always  # returns why the check does not apply, or None


#: kind -> {check name -> spec}, in the order they run.
CHECKS: dict[str, dict[str, CheckSpec]] = {kind: {} for kind in KINDS}


def register_check(kind: str, name: str, *, applies: Applies = always
                   ) -> Callable[[Callable[[Subject, str], None]], Callable[[Subject, str], None]]:
    """Decorator: register ``function(subject, name)`` as the check ``name`` of ``kind``."""

    def register(function: Callable[[Subject, str], None]) -> Callable[[Subject, str], None]:
        doc = (function.__doc__ or name).strip().splitlines()[0]
        CHECKS[kind][name] = CheckSpec(kind, name, doc, function, applies)
        return function

    return register


class Check:
    """One named property check bound to a subject; call it to run (raises CheckFailed / CheckSkipped)."""

    def __init__(self, spec: CheckSpec, subject: Subject, reason: str | None = None) -> None:
        self.spec = spec
        self.subject = subject
        self.reason = reason  # set when the check does not apply: calling it skips with this reason

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def description(self) -> str:
        return self.spec.doc

    @property
    def model_name(self) -> str:
        return self.subject.name

    @property
    def applicable(self) -> bool:
        return self.reason is None

    def __call__(self) -> None:
        if self.reason is not None:
            raise CheckSkipped(f"{self.name}: not applicable ({self.reason})")
        self.spec.function(self.subject, self.spec.name)

    def __repr__(self) -> str:
        return f"<Check {self.kind} {self.subject.name}:{self.spec.name}>"


def bind_checks(kind: str, subject: Subject, *, include_inapplicable: bool) -> list[Check]:
    """The checks of ``kind`` for ``subject``; inapplicable ones carry their reason (or are left out)."""
    checks = []
    for spec in CHECKS[kind].values():
        reason = spec.applies(subject)
        if reason is None or include_inapplicable:
            checks.append(Check(spec, subject, reason))
    return checks


def run_check_list(checks: Iterable[Check], only: Iterable[str] | None = None) -> list[CheckResult]:
    """Run each check; a crash inside a check is a failure naming the check, a skip is a skip."""
    selected = set(only) if only is not None else None
    results = []
    for check in checks:
        if selected is not None and check.name not in selected:
            continue
        started = time.perf_counter()
        try:
            check()
        except CheckSkipped as exc:
            status, message = "skipped", str(exc)
        except CheckFailed as exc:
            status, message = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a crash fails the property being checked
            status, message = "failed", f"{check.name}: raised {type(exc).__name__}: {exc}"
        else:
            status, message = "passed", ""
        results.append(CheckResult(check.name, status, message, time.perf_counter() - started))
    return results


_LABELS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def format_row(result: CheckResult, width: int = 0) -> str:
    """One table line: PASS, FAIL with the message, or SKIP with the reason (the row names the check,
    so the message's own ``name: `` prefix is left out)."""
    message = result.message.removeprefix(f"{result.name}: ")
    detail = f"  {message}" if message else ""
    return f"{_LABELS[result.status]}  {result.name:<{width}}  {result.seconds:5.2f}s{detail}"


def format_summary(results: list[CheckResult]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped" if results else "no checks ran"


def format_results(results: list[CheckResult]) -> str:
    """A plain-text table, one line per check, and a summary line."""
    width = max((len(r.name) for r in results), default=10)
    return "\n".join([format_row(r, width) for r in results] + [format_summary(results)])


def weights_round_trip(name: str, trained: torch.nn.Module, fresh: torch.nn.Module) -> None:
    """Save ``trained``'s weights as a run does and load them into ``fresh`` through the run's own loader."""
    import tempfile
    from pathlib import Path

    from ldns_framework.checkpoint import load_module_weights, save_tensors

    state = trained.state_dict()
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise fail(name, "state_dict values must all be tensors (runs store them as safetensors)")
    if not state:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.safetensors"
        save_tensors(path, state)
        try:
            load_module_weights(fresh, path)
        except Exception as exc:  # noqa: BLE001 - reported as the failure
            raise fail(name, f"a fresh component cannot load the trained weights through the run directory's loader "
                             f"({type(exc).__name__}: {exc}); a run rebuilds it from its config and then loads "
                             f"the weights") from None


def seeds_reproduce(name: str, draw: Callable[[int], torch.Tensor]) -> None:
    """``draw(seed)`` must give equal draws for equal seeds and other draws for another seed: a
    component draws only from the ``torch.Generator`` it is given."""
    a, b, c = draw(7), draw(7), draw(8)
    if not torch.equal(a, b):
        raise fail(name, "two draws with generators seeded alike differ: sample must draw only from its generator")
    if torch.equal(a, c):
        raise fail(name, "draws with different seeds are identical: sample ignores its generator")


def tensors_close(a: torch.Tensor, b: torch.Tensor, settings: KitSettings) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=settings.rtol, atol=settings.atol)


def finite_figures(name: str, what: str, figures: Any) -> None:
    """``figures`` must be a dict of names -> finite numbers (JSON-ready), as fit methods return."""
    import math

    if not isinstance(figures, Mapping):
        raise fail(name, f"{what} must return a dict of figures (empty when there are none), got {type(figures).__name__}")
    for key, value in figures.items():
        if not isinstance(key, str) or not isinstance(value, (int, float)):
            raise fail(name, f"{what}'s figures must map names to numbers (JSON-ready), got {key!r}: {value!r}")
        if not math.isfinite(value):
            raise fail(name, f"{what}'s figure {key!r} is {value}")
