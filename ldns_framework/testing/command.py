"""``ldns check KIND NAME``: the conformance kit on an installed component of any kind.

The CLI calls :func:`run_check_command`; it builds the component through the registry exactly as
a spec section ``{type: NAME, <overrides>}`` would, runs every check of the kind (the integration
check included, with the kit's reference components registered beside it) and prints one line
per check: PASS, FAIL with the property and what was seen, SKIP with the reason.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

from ldns_framework.config import did_you_mean
from ldns_framework.data import SpikeData
from ldns_framework.errors import SpecError
from ldns_framework.spec import apply_overrides
from ldns_framework.testing.checks import check_component
from ldns_framework.testing.core import KINDS, KitSettings, format_row, format_summary, run_check_list

__all__ = ["run_check_command"]


def run_check_command(kind: str, name: str, overrides: Sequence[str], registry: Any, progress: bool = True, *,
                      settings: KitSettings | None = None, data: Callable[[], SpikeData] | None = None) -> int:
    """Check the installed component ``name`` of ``kind`` with ``--set key=value`` ``overrides``.

    Returns 0 when no check failed (skips are listed with their reason), 1 otherwise. An unknown
    kind or option raises :class:`SpecError`, an unknown name :class:`PluginError` (both
    :class:`LdnsError`, exit status 2 in the CLI). ``progress`` prints each line as its check ends.
    """
    if kind not in KINDS:
        raise SpecError("kind", f"unknown component kind {kind!r}{did_you_mean(kind, KINDS)}; kinds: {', '.join(KINDS)}")
    registry.component_class(kind, name)  # an unknown name fails here, listing the known ones
    options = apply_overrides({}, list(overrides))
    if "type" in options:
        raise SpecError("--set type", f"the component is named on the command line ({name!r}); drop --set type=...")
    registry.structure_component(kind, options, name, kind)  # a bad option fails here, naming kind.<key>

    def factory(**context: Any) -> Any:
        return registry.build(kind, {"type": name, **options}, path=kind, **context)

    checks = list(check_component(kind, factory, settings=settings, registry=registry, name=name, options=options,
                                  data=data, include_inapplicable=True))
    width = max(len(check.name) for check in checks)
    print(f"ldns check {kind} {name}: {len(checks)} checks", flush=True)
    results = []
    for check in checks:
        [result] = run_check_list([check])
        results.append(result)
        if progress:
            print(format_row(result, width), flush=True)
    if not progress:
        print("\n".join(format_row(r, width) for r in results))
    print(format_summary(results))
    sys.stdout.flush()
    return 1 if any(r.failed for r in results) else 0
