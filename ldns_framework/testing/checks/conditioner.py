"""Named property checks for conditioners: kind and dim, condition shapes, validation, state.

The conditioner is fitted on the training split of the kit's data (:func:`synthetic_spike_data`,
covariates ``vector`` (trials, 2), ``sequence`` (trials, time, 2) and ``condition`` (trials, 1) integer classes),
or of the data ``make_data`` returns (``ConditionerContract.make_data``), and then checked.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import torch

from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError
from ldns_framework.testing.core import KitSettings, Subject, fail, register_check
from ldns_framework.testing.reference import synthetic_spike_data

__all__ = ["ConditionerSubject"]

KINDS = (None, "vector", "sequence")


class ConditionerSubject(Subject):
    """A conditioner and the data it is fitted on."""

    kind = "conditioner"

    def __init__(self, factory: Callable[..., Any], settings: KitSettings, *,
                 data: Callable[[], SpikeData] | None = None, **where: Any) -> None:
        self.make_data = data or (lambda: synthetic_spike_data(seed=settings.seed))
        self._data: SpikeData | None = None
        super().__init__(factory, settings, **where)

    def data(self) -> SpikeData:
        if self._data is None:
            self._data = self.make_data()
        return self._data

    def prepare(self, component: Any) -> Any:
        data = self.data()
        component.fit(data, data.splits["train"])
        return component

    def condition(self, component: Any, indices: np.ndarray | None = None) -> torch.Tensor | None:
        data = self.data()
        return component.from_data(data, data.splits["train"] if indices is None else indices)


def _check(name: str, **kwargs: Any) -> Any:
    return register_check("conditioner", name, **kwargs)


@_check("kind_and_dim_agree")
def _kind_dim(subject: ConditionerSubject, name: str) -> None:
    """kind is None, "vector" or "sequence"; dim is an int, 0 exactly when kind is None."""
    model = subject.prepared()
    if model.kind not in KINDS:
        raise fail(name, f"kind must be None, 'vector' or 'sequence', got {model.kind!r}")
    dim = model.dim
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
        raise fail(name, f"dim must be an int >= 0, got {dim!r}")
    if (dim == 0) != (model.kind is None):
        raise fail(name, f"kind {model.kind!r} with dim {dim}: dim is 0 exactly when there is no condition")


@_check("from_data_has_the_declared_shape")
def _from_data(subject: ConditionerSubject, name: str) -> None:
    """from_data gives None (unconditional), (trials, dim) for vector or (trials, time, dim) for sequence, finite."""
    model, data = subject.component(), subject.data()
    indices = data.splits["train"]
    out = subject.condition(model)
    if model.kind is None:
        if out is not None:
            raise fail(name, f"kind is None but from_data returned {type(out).__name__}")
        return
    expected = (len(indices), model.dim) if model.kind == "vector" else (len(indices), data.n_time, model.dim)
    tensor = torch.as_tensor(out) if out is not None else None
    if tensor is None or tuple(tensor.shape) != expected:
        raise fail(name, f"from_data returned {None if tensor is None else tuple(tensor.shape)}, expected {expected} "
                         f"for a {model.kind} condition")
    if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
        raise fail(name, f"from_data must return finite floats, got dtype {tensor.dtype}")


@_check("from_data_follows_the_indices")
def _indices(subject: ConditionerSubject, name: str) -> None:
    """from_data(data, indices) is per trial: reversing the indices reverses the rows."""
    model, data = subject.component(), subject.data()
    indices = data.splits["train"]
    forward, backward = subject.condition(model, indices), subject.condition(model, indices[::-1].copy())
    if forward is None:
        return
    if not torch.allclose(torch.as_tensor(forward).flip(0), torch.as_tensor(backward)):
        raise fail(name, "from_data with the indices reversed did not give the rows reversed: row i must be trial indices[i]")


@_check("validate_accepts_its_own_conditions")
def _validate_own(subject: ConditionerSubject, name: str) -> None:
    """validate(from_data(...), n, length) returns the condition as a tensor of the same shape (None when unconditional)."""
    model, data = subject.component(), subject.data()
    own = subject.condition(model)
    n = len(data.splits["train"])
    try:
        checked = model.validate(None if own is None else torch.as_tensor(own).numpy(), n, data.n_time)
    except DataError as exc:
        raise fail(name, f"validate rejected the conditioner's own condition: {exc}") from None
    if own is None:
        if checked is not None:
            raise fail(name, f"unconditional, but validate(None, ...) returned {type(checked).__name__}")
        return
    if not isinstance(checked, torch.Tensor) or checked.shape != torch.as_tensor(own).shape:
        raise fail(name, f"validate must return a tensor shaped like the condition {tuple(torch.as_tensor(own).shape)}, "
                         f"got {type(checked).__name__} {tuple(getattr(checked, 'shape', ()))}")


def _wrong_conditions(model: Any, own: torch.Tensor | None, n: int, length: int) -> dict[str, Any]:
    if model.kind is None:
        return {"a condition given to an unconditional model": np.zeros((n, 1), np.float32)}
    good = own.numpy()
    wrong = {"one row too many": np.concatenate([good, good[:1]]),
             "one channel too many": np.concatenate([good, good[..., :1]], axis=-1)}
    if model.kind == "vector":
        wrong["a time axis"] = np.repeat(good[:, None], length, axis=1)
    else:
        wrong["no time axis"] = good[:, 0]
        wrong["another length"] = good[:, : max(1, length - 1)]
    return wrong


@_check("validate_rejects_wrong_shapes")
def _validate_wrong(subject: ConditionerSubject, name: str) -> None:
    """validate raises DataError for a condition with the wrong number of trials, channels or axes."""
    model, data = subject.component(), subject.data()
    own = subject.condition(model)
    own = None if own is None else torch.as_tensor(own)
    n = len(data.splits["train"])
    for label, condition in _wrong_conditions(model, own, n, data.n_time).items():
        try:
            model.validate(condition, n, data.n_time)
        except DataError:
            continue
        except Exception as exc:  # noqa: BLE001 - anything but a DataError is a crash, not a validation
            raise fail(name, f"{label} (shape {condition.shape}) raised {type(exc).__name__}: {exc}; raise a "
                             f"DataError naming the field and the expected shape") from None
        raise fail(name, f"{label} (shape {condition.shape}, expected for {n} trials of {data.n_time} bins) was "
                         f"accepted; raise a DataError")


@_check("state_round_trips")
def _state(subject: ConditionerSubject, name: str) -> None:
    """state() is JSON-ready, and a fresh conditioner given load_state(state) produces the same conditions."""
    model = subject.component()
    state = model.state()
    try:
        text = json.dumps(state)
    except (TypeError, ValueError) as exc:
        raise fail(name, f"state() must be JSON-ready (runs store it as JSON): {exc}") from None
    fresh = subject.build()
    fresh.load_state(json.loads(text))
    a, b = subject.condition(model), subject.condition(fresh)
    if (a is None) != (b is None) or (a is not None and not torch.allclose(torch.as_tensor(a), torch.as_tensor(b))):
        raise fail(name, "after load_state(state()), a fresh conditioner gives other conditions: the normalisation "
                         "statistics are not all in state()")
