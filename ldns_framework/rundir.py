"""Run directories: everything a run needs to be resumed or sampled again, written atomically.

Every file is written to a temporary name beside its target, flushed to disk and renamed into
place, so a run killed mid-write never leaves a half-written file behind (a temporary left by a
kill is removed by :func:`clean_temporaries` when the run resumes). A run directory is created
whole (:func:`create_run_dir`): its first files are written in a hidden directory beside it,
which is then renamed. One process at a time writes a run: it holds ``RUN/.lock``
(:class:`RunLock`). Files and directories get the modes the user's umask gives.

Test hook (for crash tests only): with ``LDNS_TEST_KILL_AT_WRITE=N`` in the environment, the
process sends itself SIGKILL at its N-th write point (``N:TERM`` or ``N:INT`` sends that signal
instead, which stops training at its next safe point). The write points are: a temporary written
but not yet renamed, the rename done, a line appended to a log, a file deleted, a log truncated,
and a new run directory about to be renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from ldns_framework.errors import LdnsError, shorten

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks, runs are not protected against a second writer
    fcntl = None  # type: ignore[assignment]

#: The stages of a fit, in order; each trained stage writes ``RUN/<stage>/`` (``--until`` takes any).
STAGES = ("data", "encoder", "observation", "latents", "generator")

#: The lock file of a run directory, held by the process writing it.
LOCK_NAME = ".lock"

KILL_AT_WRITE_ENV = "LDNS_TEST_KILL_AT_WRITE"
_writes_done = 0

# What atomic_path's tempfile.mkstemp names look like: .<target name>.<8 random chars>.tmp<target suffix>
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>\.[^.]*)?$")


def write_point() -> None:
    """Count one write point; the test hook (module docstring) kills the process at the chosen one."""
    global _writes_done
    target = os.environ.get(KILL_AT_WRITE_ENV)
    if not target:
        return
    _writes_done += 1
    count, _, name = target.partition(":")
    if _writes_done == int(count):
        os.kill(os.getpid(), getattr(signal, f"SIG{name or 'KILL'}"))


def _umask() -> int:
    """The process umask, read without changing it where the system tells it (Linux)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from the user's umask (what ``open`` would give it)."""
    return 0o666 & ~_umask()


def directory_mode() -> int:
    return 0o777 & ~_umask()


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success flush it to disk and rename it onto
    ``target`` (with the umask's mode), else delete it.

    The temporary name keeps ``target``'s suffix, for writers that insist on one (``np.savez``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, file_mode())  # mkstemp makes it 0600
        write_point()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)
    write_point()


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json_text(obj))


def yaml_text(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def write_yaml(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, yaml_text(obj))


def read_json(path: str | os.PathLike, kind: type | None = None) -> Any:
    """The JSON in ``path``; a missing, unreadable or malformed file (or, with ``kind``, a value
    of another type) is an :class:`LdnsError` naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        raise LdnsError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LdnsError(f"{path}: not a readable JSON file ({shorten(str(exc), 120)})") from None
    if kind is not None and not isinstance(value, kind):
        raise LdnsError(f"{path}: expected a JSON {'object' if kind is dict else kind.__name__}, "
                        f"got {type(value).__name__}")
    return value


def append_jsonl(target: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one line (a resumed run first truncates the log to its checkpoint, see :func:`truncate`)."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=_json_default) + "\n"
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(line)
    write_point()


def truncate(path: str | os.PathLike, size: int) -> None:
    """Cut ``path`` back to its first ``size`` bytes (nothing to do when it is missing or shorter)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > size:
        with open(path, "r+b") as handle:
            handle.truncate(size)
        write_point()


def remove(path: str | os.PathLike) -> None:
    """Delete a file of the run (nothing to do when it is already gone)."""
    if Path(path).is_file():
        os.unlink(path)
        write_point()


def clean_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporaries :func:`atomic_path` left in ``directory`` when a process was killed
    mid-write (only names of that exact form); returns them."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in directory.iterdir():
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and (match["suffix"] or "") == Path(match["name"]).suffix:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class RunLock:
    """An exclusive ``flock`` on ``RUN/.lock``, held while a process writes the run.

    A second writer (``ldns train --resume`` twice on one run) fails at once with a message
    naming the holder's process id. The lock goes with the process: a killed writer leaves no
    stale lock behind.
    """

    def __init__(self, directory: Path, fd: int | None) -> None:
        self.directory = directory
        self._fd = fd

    @classmethod
    def acquire(cls, directory: str | os.PathLike) -> "RunLock":
        directory = Path(directory)
        if fcntl is None:
            return cls(directory, None)
        path = directory / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise LdnsError(f"{path}: cannot open the run's lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise LdnsError(f"{directory}: {who} is writing this run (it holds {path}); wait for it to finish "
                            "or stop it, then resume") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        return cls(directory, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def create_run_dir(run_dir: str | os.PathLike, files: Mapping[str, str]) -> RunLock:
    """Create ``run_dir`` holding ``files`` (name -> text), all or nothing, and return its lock.

    The files are written in a hidden directory beside ``run_dir`` that is renamed into place
    (an empty ``run_dir`` is replaced; anything else there is refused, never overwritten). A
    hidden directory left by a creation that was killed is removed first.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not (run_dir.is_dir() and not any(run_dir.iterdir())):
        what = "a directory that is not a run directory (no spec.yaml)" if run_dir.is_dir() else "not a directory"
        raise LdnsError(f"{run_dir}: exists and is {what}; choose a new --out")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_creations(run_dir, set(files))
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".new", dir=run_dir.parent))
    lock = None
    try:
        os.chmod(tmp, directory_mode())  # mkdtemp makes it 0700
        lock = RunLock.acquire(tmp)
        for name, text in files.items():
            write_text(tmp / name, text)
        write_point()
        try:
            os.rename(tmp, run_dir)
        except OSError as exc:
            lock.release()
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise LdnsError(f"{run_dir}: was created by another process meanwhile; choose a new --out") from None
            raise LdnsError(f"{run_dir}: cannot create the run directory ({exc.strerror})") from None
    except BaseException:
        if lock is not None:
            lock.release()  # idempotent
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_directory(run_dir.parent)
    lock.directory = run_dir
    return lock


def _remove_abandoned_creations(run_dir: Path, names: set[str]) -> None:
    """Hidden creation directories of ``run_dir`` whose creator died (their lock is free) and
    that hold only what a creation writes."""
    allowed = names | {LOCK_NAME}
    for candidate in run_dir.parent.glob(f".{glob.escape(run_dir.name)}.*.new"):
        entries = list(candidate.iterdir()) if candidate.is_dir() and not candidate.is_symlink() else None
        if entries is None or not all(e.is_file() and (e.name in allowed or _TEMPORARY.match(e.name)) for e in entries):
            continue
        try:
            lock = RunLock.acquire(candidate)
        except LdnsError:
            continue  # its creator is alive
        lock.release()
        shutil.rmtree(candidate, ignore_errors=True)


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
