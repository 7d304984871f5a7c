"""One writer per workdir: WORKDIR/jaxgan.lock, held with an exclusive `fcntl.flock` while a run trains.

The kernel drops the lock when its process ends, however it ends (kill -9 included), so a lock left by
a dead run is stale by construction: the next run takes it over and says so. The file holds the pid,
host and start time of the holder, which a refused second run names.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import warnings
from pathlib import Path

LOCK_FILE = "jaxgan.lock"


class WorkdirLockedError(ValueError):
    """Another process trains in this workdir."""


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (ValueError, KeyError, TypeError):
        return "unknown process"


class WorkdirLock:
    def __init__(self, workdir: str | os.PathLike):
        self.path = Path(workdir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "WorkdirLock":
        """Takes the lock or raises WorkdirLockedError naming the holder."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(os.pread(fd, 4096, 0).decode(errors="replace"))
                os.close(fd)
                raise WorkdirLockedError(
                    f"{self.path.parent} is in use by another jaxgan run ({holder}); wait for it to end or "
                    "stop it, or train in another --workdir") from None
            try:  # the holder may have removed the file between our open and our lock: retry
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if previous:
            warnings.warn(f"took over the stale lock {self.path} of a run that ended without releasing it "
                          f"({_describe(previous)})", stacklevel=2)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode() + b"\n", 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Removes the lock file (while still holding the lock) and drops the lock."""
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
