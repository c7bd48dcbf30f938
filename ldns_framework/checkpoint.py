"""Weights and optimiser state in safetensors (no pickles: a run directory never holds code)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

import torch
from safetensors.torch import load, save

from ldns_framework.errors import LdnsError, shorten
from ldns_framework.rundir import write_bytes


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> str:
    """Write ``tensors`` atomically (contiguous CPU copies; shared storage is split); returns the
    file's sha256, which run manifests record so a damaged file is caught when it is loaded."""
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    data = save(plain, metadata=metadata)
    write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_tensors(path: str | os.PathLike, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; with ``sha256``, the file must have that checksum."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise LdnsError(f"{path}: weights file not found") from None
    except OSError as exc:
        raise LdnsError(f"{path}: cannot read the weights file ({exc.strerror})") from None
    if sha256 is not None:
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise LdnsError(f"{path}: checksum mismatch (sha256 {found[:16]}..., the run recorded {sha256[:16]}...); "
                            "the file was damaged or changed after it was written")
    try:
        return load(data)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise LdnsError(f"{path}: not a readable safetensors file ({shorten(str(exc), 120)})") from None


def load_module_weights(module: torch.nn.Module, path: str | os.PathLike, sha256: str | None = None) -> None:
    """Load the weights file ``path`` (checked against ``sha256`` when given) into ``module``
    (see :func:`load_weights`)."""
    load_weights(module, load_tensors(path, sha256), str(path))


def load_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load ``tensors`` into ``module`` through its own ``load_state_dict``, then check that they fit.

    The module's ``_load_from_state_dict`` hooks run first, so a module whose size comes from its
    weights (per-neuron parameters) resizes itself before anything is compared. What still does
    not fit is reported in one line naming ``source`` and the tensors: missing and unexpected
    keys, and shapes as stored vs as the module holds them.
    """
    try:
        result = module.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # raised once every key was tried, e.g. on a shape that still differs
        current = module.state_dict()
        wrong = [f"{key} {tuple(tensors[key].shape)} in the file, {tuple(current[key].shape)} in the model"
                 for key in sorted(set(current) & set(tensors)) if tensors[key].shape != current[key].shape]
        details = [_keys("missing", set(current) - set(tensors)), _keys("unexpected", set(tensors) - set(current)),
                   f"shape mismatch: {'; '.join(wrong[:3])}" if wrong else
                   " ".join(line.strip() for line in str(exc).splitlines()[1:])]
        raise _misfit(module, source, details) from None
    if result.missing_keys or result.unexpected_keys:
        raise _misfit(module, source, [_keys("missing", result.missing_keys),
                                       _keys("unexpected", result.unexpected_keys)])


def _keys(what: str, keys: Iterable[str]) -> str:
    return f"{what} {sorted(keys)[:3]}" if keys else ""


def _misfit(module: torch.nn.Module, source: str, details: list[str]) -> LdnsError:
    text = "; ".join(part for part in details if part)
    return LdnsError(f"{source}: weights do not fit this {type(module).__name__} ({text}); was the spec changed?")


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state into tensors (for safetensors) and JSON (param groups, scalars)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entries in info["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(json.dumps(info["param_groups"]))})
