"""LinkDesk's local state is readable by its own user alone: the state directory (`VAR_DIR`)
and what it holds (the secret key, the SQLite databases, logs, lock files) are owner-only.

Modes are set explicitly after creation, so they do not depend on the umask of whoever
started LinkDesk; files another user owns are left as they are (they cannot be changed).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

# What SQLite and LinkDesk keep beside a database file (see service.sqlite_writers.WriterGate).
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal", "-writers")


def private_dir(path: Path) -> Path:
    """Create the directory (and its parents) if needed and make it owner-only."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _restrict(path, PRIVATE_DIR)
    return path


def open_private(path: Path | str, flags: int) -> int:
    """Open a file, creating it owner-only if it does not exist; returns the descriptor."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    try:
        info = os.fstat(fd)
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_sqlite(database: Path) -> None:
    """Make a SQLite database file owner-only before SQLite opens it.

    An absent file is created empty, which SQLite takes as a new database; SQLite gives the
    journal and shared-memory files it creates later the mode of the database file.
    """
    if not database.parent.is_dir():
        return  # SQLite says what is wrong with the path when it opens it
    os.close(open_private(database, os.O_RDONLY))
    for suffix in SQLITE_COMPANIONS:
        _restrict(Path(f"{database}{suffix}"), PRIVATE_FILE)


def tighten(var_dir: Path) -> None:
    """Make an existing state directory and everything under it owner-only."""
    private_dir(var_dir)
    for root, dirs, files in os.walk(var_dir):
        for name in dirs:
            _restrict(Path(root, name), PRIVATE_DIR)
        for name in files:
            _restrict(Path(root, name), PRIVATE_FILE)


def _restrict(path: Path, mode: int) -> None:
    """Set the mode of a path this user owns; a symbolic link or a missing path is left."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        return
    if stat.S_IMODE(info.st_mode) != mode:
        path.chmod(mode)
