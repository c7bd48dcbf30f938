"""The ``none`` conditioner: the generator sees no condition."""

from __future__ import annotations

from typing import Any

import numpy as np

from ldns_framework import Conditioner, DataError, SpikeData


class NoCondition(Conditioner):
    """Unconditional models: no condition tensor, and none accepted at sampling time."""

    kind = None

    @property
    def dim(self) -> int:
        return 0

    def from_data(self, data: SpikeData, indices: np.ndarray) -> None:
        return None

    def validate(self, condition: Any, n: int, length: int) -> None:
        if condition is not None:
            raise DataError("condition", "this model is unconditional (conditioner 'none'); do not pass a condition")
        return None
