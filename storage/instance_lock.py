"""One bot process per database: a lock held for the process's lifetime.

Two processes on one database each poll SMSC, each re-alert and together break SMSC's request
budget. On SQLite a second process therefore refuses to start (on PostgreSQL replicas share
the database and elect a leader instead: `storage.election`, `SharedDatabase` here). The lock
is an OS file lock (`flock`) on `<database>.lock` next to the database: the kernel drops it
when the process dies, however it dies, and it holds across containers sharing the volume. Not
on the database file itself: SQLite's own locks are POSIX record locks, which some network
filesystems implement with the same machinery as `flock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from .db import StorageError


class AnotherInstanceError(StorageError):
    """Another process holds the database."""


class InstanceLock(Protocol):
    """Exclusive use of the database by this process (the interface leader election fills)."""

    def acquire(self) -> None:
        """Take the lock now or raise AnotherInstanceError; never wait."""
        ...

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        ...


class FileInstanceLock:
    """`flock` on a file next to the database; see the module docstring."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now or raise AnotherInstanceError (StorageError if it cannot be made)."""
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot create the lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise AnotherInstanceError(
                f"another bot process is already running on {self.database} "
                f"(it holds {self.path.name}); only one may run at a time"
            ) from exc
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot lock {self.path}: {exc.strerror}") from exc
        # For whoever looks: which process holds it (only meaningful in its own PID namespace).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Unlock and close (the file stays: removing it would race a starting process)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class SharedDatabase:
    """PostgreSQL: any number of processes share the database; they elect a leader instead."""

    def acquire(self) -> None:
        """Nothing to take: see `storage.election`."""

    def release(self) -> None:
        """Nothing to give up."""


def instance_lock(database: Path | str) -> InstanceLock:
    """The lock that keeps a second process off `database` (a path or a DATABASE_URL)."""
    if isinstance(database, str):
        if database.startswith(("postgresql://", "postgres://")):
            return SharedDatabase()
        database = Path(database.removeprefix("sqlite:///"))
    return FileInstanceLock(database)
