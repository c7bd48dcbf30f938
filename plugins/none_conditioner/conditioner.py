"""The ``none`` conditioner: the generator sees no condition."""

from __future__ import annotations

from ldns_framework import Unconditional


class NoCondition(Unconditional):
    """Unconditional models: no condition tensor, and none accepted at sampling time."""
