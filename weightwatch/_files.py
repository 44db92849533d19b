"""Crash-safe files: sha256 records, atomic writes, output directories checked before any work.

A finished directory (zoo shard, merged zoo) carries ``SHA256SUMS`` in the
format of ``sha256sum`` (``<hex>  <name>``, so ``sha256sum -c SHA256SUMS``
checks it by hand too), written last, like a wheel's ``RECORD``; readers
verify it before they trust or merge the files.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Iterable, Optional

from .errors import OutputPathError

SUMS = "SHA256SUMS"
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (\S+)$")


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_file(path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory, fsync, ``os.replace``."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def write_sums(directory, names: Iterable[str]) -> Path:
    """Write ``SHA256SUMS`` for the files ``names`` of ``directory`` (sorted, so it is deterministic)."""
    d = Path(directory)
    lines = [f"{sha256_file(d / n)}  {n}\n" for n in sorted(names)]
    path = d / SUMS
    path.write_text("".join(lines), encoding="utf-8")
    fsync_file(path)
    return path


def read_sums(path) -> dict:
    """``{name: sha256}`` from a ``SHA256SUMS`` file; ValueError naming the line if it is malformed."""
    out = {}
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        m = _SUM_LINE.match(line)
        if not m or os.path.basename(m.group(2)) != m.group(2) or m.group(2) in (".", ".."):
            raise ValueError(f"line {i} is not '<sha256>  <file name>': {line[:80]!r}")
        out[m.group(2)] = m.group(1)
    if not out:
        raise ValueError("it lists no files")
    return out


def verify_sums(directory, required: Iterable[str] = ()) -> Optional[str]:
    """None if ``directory/SHA256SUMS`` exists, lists ``required`` and every listed file matches; else the problem."""
    d = Path(directory)
    path = d / SUMS
    if not path.is_file():
        return f"{path} is missing (the directory was not finished)"
    try:
        sums = read_sums(path)
    except (OSError, ValueError) as exc:
        return f"{path} is unreadable: {exc}"
    for name in required:
        if name not in sums:
            return f"{path} does not list {name}"
    for name, digest in sums.items():
        f = d / name
        if f.is_symlink() or not f.is_file():
            return f"{f} is missing" if not f.is_symlink() else f"{f} is a symlink"
        if sha256_file(f) != digest:
            return f"{f} does not match its sha256 in {SUMS} (truncated or changed after it was written)"
    return None


def check_output_dir(path, what: str = "--out") -> Path:
    """Refuse an output directory that cannot be created or written, before any work is done.

    Every existing ancestor must be a directory, and the directory (or its
    nearest existing ancestor, if it does not exist yet) must accept a new
    file: a probe file is created and removed at once. Nothing else is
    written. Raises :class:`~weightwatch.errors.OutputPathError` naming the path.
    """
    p = Path(path)
    probe_dir = None
    for anc in (p, *p.parents):
        if anc.exists() or anc.is_symlink():
            if not anc.is_dir():
                if anc == p:
                    raise OutputPathError(f"{what} {p}: it exists and is a file, not a directory")
                raise OutputPathError(f"{what} {p}: {anc} is a file, so no directory can be created under it")
            probe_dir = anc
            break
    if probe_dir is None:  # pragma: no cover - a relative path always has '.'
        probe_dir = Path(".")
    probe = probe_dir / f".weightwatch-write-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        where = "" if probe_dir == p else f" (its parent {probe_dir} cannot be written)"
        reason = exc.strerror or type(exc).__name__
        raise OutputPathError(f"{what} {p}: not writable{where}: {reason}") from None
    probe.unlink(missing_ok=True)
    return p


def jsonable(obj, *, strict: bool = True, nan_to_none: bool = False, enum_as=None):
    """A copy of ``obj`` made of plain JSON types: dicts, lists, str, int, float, bool, None.

    numpy arrays and scalars, tuples, enums (their value, or ``enum_as(e)``),
    str subclasses and paths become their plain equivalents. An unknown type raises ``TypeError`` when
    ``strict``, else becomes its ``repr``; ``nan_to_none`` turns non-finite
    floats into ``None`` (for readers that reject ``NaN``).
    """
    import enum
    import math

    import numpy as np

    def conv(o):
        if isinstance(o, dict):
            return {str(k): conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if isinstance(o, np.ndarray):
            return conv(o.tolist())
        if isinstance(o, enum.Enum):
            return conv(o.value if enum_as is None else enum_as(o))
        if isinstance(o, np.generic):
            o = o.item()
        if isinstance(o, str):
            return str.__str__(o)
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        if isinstance(o, float) and nan_to_none and not math.isfinite(o):
            return None
        if o is None or isinstance(o, (bool, int, float)):
            return o
        if strict:
            raise TypeError(f"Value of type {type(o).__name__} is not JSON-serialisable: {o!r}")
        return repr(o)

    return conv(obj)


class DirLock:
    """An exclusive lock on a directory: the file ``directory/name`` holding the owner's pid, host and start time.

    The lock is a ``flock`` on that file, so the kernel releases it when the
    owner dies; the file's content only says who holds it. A lock file left
    by a process that died (``kill -9``) is taken over, with a warning naming
    the dead owner. A lock held by a live process raises
    :class:`~weightwatch.errors.LockedError` naming it. The file is removed on
    release. Use as a context manager.
    """

    def __init__(self, directory, name: str = "build.lock", *, what: str = "--out"):
        self.path = Path(directory) / name
        self.what = what
        self._fd = None
        self.taken_over = None  # the dead owner's record, when a stale lock was taken over

    def _owner(self, fd) -> dict:
        import json

        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        try:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return {"unreadable": raw[:80]}
        return data if isinstance(data, dict) else {"unreadable": raw[:80]}

    def acquire(self) -> "DirLock":
        import json
        import socket
        import time

        from .errors import LockedError

        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no kernel lock, the file alone decides
            fcntl = None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._owner(fd)
                os.close(fd)
                who = (f"pid {owner.get('pid')} on host {owner.get('host')}, since {owner.get('started')}"
                       if "pid" in owner else "another process")
                raise LockedError(f"{self.what} {self.path.parent} is in use by {who} ({self.path}); wait for it "
                                  "to finish, or use another directory") from None
            except OSError as exc:  # a file system without locks: refuse rather than risk two writers
                os.close(fd)
                raise OutputPathError(f"{self.what} {self.path.parent}: cannot lock {self.path} "
                                      f"({exc.strerror or exc}); use a local directory") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:  # the previous owner removed it between our open and flock
                same = False
            if same:
                break
            os.close(fd)
        owner = self._owner(fd)
        if owner:
            self.taken_over = owner
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlinked while still locked: a waiter sees the inode change
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
