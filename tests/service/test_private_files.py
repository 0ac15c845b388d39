"""LinkDesk's local state is owner-only: var/ 0700, its files (SQLite among them) 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.vocabulary import ConsoleType
from service import embedded
from service.extensions import db
from service.models import Console
from service.private_files import tighten


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """Create files under a umask that takes nothing away, as a careless shell might."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("lax_umask")
def test_an_app_on_a_fresh_var_dir_keeps_its_sqlite_files_owner_only(
    tmp_path: Path, make_app: Any
) -> None:
    var_dir = tmp_path / "var"
    app = make_app(VAR_DIR=str(var_dir), DATABASE_URL=None)
    database = var_dir / "linkdesk.sqlite3"
    assert app.config["DATABASE_URL"] == f"sqlite:///{database}"
    with app.app_context():
        db.create_all()
        db.session.add(Console(code="c1", name="C1 firm", type=ConsoleType.ACCOUNTANT))
        db.session.commit()
        # While a connection is open, SQLite keeps its write-ahead log and shared memory.
        files = [database, *(Path(f"{database}{end}") for end in ("-wal", "-shm", "-writers"))]
        assert all(path.exists() for path in files), list(var_dir.iterdir())
        assert mode(var_dir) == 0o700
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        db.session.remove()
        db.engine.dispose()


def test_an_app_tightens_an_existing_var_dir_and_database(tmp_path: Path, make_app: Any) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o755)
    var_dir.chmod(0o755)
    database = var_dir / "linkdesk.sqlite3"
    for path in (database, Path(f"{database}-writers")):
        path.touch()
        path.chmod(0o644)
    make_app(VAR_DIR=str(var_dir), DATABASE_URL=None)
    assert mode(var_dir) == 0o700
    assert mode(database) == 0o600
    assert mode(Path(f"{database}-writers")) == 0o600


def test_tighten_makes_everything_under_var_owner_only(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    (var_dir / "log").mkdir(parents=True)
    for path in (var_dir, var_dir / "log"):
        path.chmod(0o755)
    for name in ("temporal.sqlite3", "secret_key", "log/web.log"):
        (var_dir / name).write_text("x")
        (var_dir / name).chmod(0o644)
    tighten(var_dir)
    assert mode(var_dir) == mode(var_dir / "log") == 0o700
    assert {mode(var_dir / n) for n in ("temporal.sqlite3", "secret_key", "log/web.log")} == {0o600}


@pytest.mark.usefixtures("lax_umask")
def test_up_writes_its_secret_key_and_lock_owner_only(tmp_path: Path) -> None:
    key = embedded._secret_key(tmp_path)
    assert key and mode(tmp_path / "secret_key") == 0o600
    lock = embedded._lock(tmp_path)
    try:
        assert mode(tmp_path / "linkdesk.lock") == 0o600
        assert (tmp_path / "linkdesk.lock").read_text() == str(os.getpid())
    finally:
        lock.close()
