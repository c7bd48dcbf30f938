"""The time unit of spike data: seconds (rates in Hz) or bins (Lorenz, whose time has no seconds).

Data sources say which in their metadata (``isi_unit: bins``); metrics and report figures read
it here, so the convention lives in one place.
"""

from __future__ import annotations

from typing import Any, Mapping

#: Choices of a metric's ``time_unit`` option: ``auto`` reads the data's metadata.
TIME_UNITS = ("auto", "seconds", "bins")


def resolve_time_unit(choice: str, metadata: Mapping[str, Any]) -> str:
    """``"bins"`` or ``"seconds"``: ``auto`` gives bins when ``metadata["isi_unit"]`` says so, else seconds."""
    if choice not in TIME_UNITS:
        raise ValueError(f"time_unit: expected one of {', '.join(TIME_UNITS)}, got {choice!r}")
    if choice != "auto":
        return choice
    return "bins" if str(metadata.get("isi_unit", "")).lower() == "bins" else "seconds"


def unit_label(quantity: str, unit: str) -> str:
    """Label of a ``"time"`` or ``"rate"`` quantity in ``unit`` (``seconds``, ``bins``, or ``auto``: not yet known)."""
    labels = {"time": {"seconds": "s", "bins": "bins", "auto": "s or bins"},
              "rate": {"seconds": "Hz", "bins": "spikes/bin", "auto": "Hz or spikes/bin"}}
    return labels[quantity][unit]
