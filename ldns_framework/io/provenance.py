"""Where samples and encodings came from: the run's spec, package versions and data description.

Arrays alone do not say which recording they imitate; a samples or encodings file written as NWB
needs the bin width, the unit ids and held-out count of the training data, and the spec and
versions that produced them. :func:`run_provenance` collects them from a run directory
(``spec.yaml``, ``environment.json``, ``data/summary.json``) as one JSON-ready mapping:

=================  =============================================================================
``run``            the run directory
``spec``           the resolved spec (YAML text)
``packages``       versions of the packages that shape results, as recorded when the run began
``bin_width_s``    bin width of the training data
``unit_ids``       the data's unit ids, when its source recorded them (``metadata.unit_ids``)
``n_heldin``       held-in units (the first ones), when the source recorded it
``align_event``,   how the source cut its trials, when it aligned them on an event
``align_range_ms``
=================  =============================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldns_framework.rundir import read_json

__all__ = ["run_provenance"]

_DATA_KEYS = ("unit_ids", "n_heldin", "align_event", "align_range_ms")


def run_provenance(run_dir: str | Path) -> dict[str, Any]:
    """The provenance of products of the run in ``run_dir`` (the keys above; absent ones left out)."""
    run_dir = Path(run_dir)
    summary = read_json(run_dir / "data" / "summary.json", dict)
    environment = read_json(run_dir / "environment.json", dict)
    metadata = summary.get("metadata") if isinstance(summary.get("metadata"), dict) else {}
    record: dict[str, Any] = {"run": str(run_dir), "spec": (run_dir / "spec.yaml").read_text(encoding="utf-8"),
                              "packages": dict(environment.get("packages") or {}),
                              "bin_width_s": summary.get("bin_width_s")}
    record.update({key: metadata[key] for key in _DATA_KEYS if metadata.get(key) is not None})
    return {k: v for k, v in record.items() if v is not None}
