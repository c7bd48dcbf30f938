"""Run directories: everything a run needs to be resumed or sampled again, written atomically.

Every file is written to a temporary name beside its target and renamed into place, so a run
killed mid-write never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import yaml

#: The stages of a fit, in order; each trained stage writes ``RUN/<stage>/`` (``--until`` takes any).
STAGES = ("data", "encoder", "observation", "latents", "generator")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``, else delete it.

    The temporary name keeps ``target``'s suffix, for writers that insist on one (``np.savez``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_yaml(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def append_jsonl(target: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one line; a line is written whole or not at all from a reader's point of view."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=_json_default) + "\n"
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(line)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


_REPORTED_PACKAGES = ("ldns-framework", "torch", "numpy", "scipy", "pluggy", "attrs", "cattrs", "pyyaml",
                      "lightning-fabric", "safetensors", "diffusers", "pynwb")


def environment_record(seed: int, device: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions of Python and the packages that shape results, plus seed and device."""
    versions = {}
    for name in _REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": sys.version.split()[0], "platform": platform.platform(), "seed": seed,
            "device": device, "packages": versions, **(extra or {})}
