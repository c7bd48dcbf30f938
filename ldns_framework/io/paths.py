"""Output paths checked before any work is done: a long sampling run must not end in a path it cannot write.

A file to write must carry one of the expected suffixes (it is never added silently, so the
path printed is the path written), must not be a directory (nor exist at all, for the formats in
:data:`NEVER_REPLACED`), and its nearest existing ancestor
must be a writable directory (missing directories are created when the file is written). A
directory to write (a run) must not be a file or lie under one.
"""

from __future__ import annotations

import os
from pathlib import Path

from ldns_framework.errors import LdnsError, shorten, shown_path

__all__ = ["NEVER_REPLACED", "output_directory", "output_file"]

#: Suffixes of files that are never replaced: an NWB file is a dataset others may share and cite
#: (it carries its own identifier), so writing one where one exists is refused.
NEVER_REPLACED = (".nwb",)


def _check_ancestors(path: Path, option: str) -> None:
    """The nearest existing ancestor of ``path`` is a directory this process can write in."""
    for parent in path.absolute().parents:
        if not parent.exists():
            continue
        if not parent.is_dir():
            raise LdnsError(f"{option}: {shown_path(parent)} is a file, not a directory; choose another path")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise LdnsError(f"{option}: cannot write in {shown_path(parent)} (permission denied)")
        return


def output_file(path: str | os.PathLike, suffixes: tuple[str, ...], option: str = "--out") -> Path:
    """``path`` checked as a file to write with one of ``suffixes`` (e.g. ``(".npz",)``); returns it."""
    path = Path(path)
    expected = " or ".join(suffixes)
    if path.is_dir():
        raise LdnsError(f"{option}: {shown_path(path)} is a directory; expected a {expected} file name "
                        f"such as {shown_path(path / ('out' + suffixes[0]))}")
    if path.suffix not in suffixes:
        raise LdnsError(f"{option}: expected a file name ending in {expected}, got {shorten(path.name)!r}"
                        f" (for example {shorten(path.stem or 'out')}{suffixes[0]})")
    if path.suffix in NEVER_REPLACED and (path.exists() or path.is_symlink()):
        raise LdnsError(f"{option}: {shown_path(path)} already exists; choose another file name or remove it")
    _check_ancestors(path, option)
    return path


def output_directory(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` checked as a directory to create or continue (a run); returns it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LdnsError(f"{option}: {shown_path(path)} is a file; expected a directory")
    _check_ancestors(path, option)
    return path
