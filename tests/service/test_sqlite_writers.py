"""SQLite under write contention: writers of a process take turns, and a writer that cannot get
the write lock in time answers 503 with nothing saved (never a 500)."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from service.extensions import db
from service.models import LoginAttempt, utcnow
from service.sqlite_writers import WriterGate
from tests.conftest import Factory, api_token, sign_in


def _sqlite_path(app: Flask) -> str:
    return str(make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database)


@pytest.fixture
def busy_app(make_app: Any, app: Flask) -> Any:
    """`busy_app(timeout, **overrides)`: another app on the test database, its writers waiting
    `timeout` seconds for SQLite's write lock."""
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite's write lock: the embedded database only")
    return lambda timeout, **overrides: make_app(SQLITE_BUSY_TIMEOUT=timeout, **overrides)


@pytest.fixture
def sqlite_app(busy_app: Any) -> Flask:
    app: Flask = busy_app(0.3)
    return app


@contextmanager
def write_lock_held(app: Flask) -> Iterator[sqlite3.Connection]:
    """Another process's writer, as far as the app can tell: a connection of its own holding
    SQLite's write lock."""
    other = sqlite3.connect(_sqlite_path(app), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_filing_that_cannot_get_the_write_lock_answers_503_and_files_nothing(
    sqlite_app: Flask, demo_directory: Factory
) -> None:
    client = sqlite_app.test_client()
    headers = {"Authorization": f"Bearer {api_token(client, 'pacct')}"}
    body = {
        "kind": "establish_link",
        "console_id": "ACCT-01",
        "instance_id": "BETA",
        "reason": "please",
    }
    with write_lock_held(sqlite_app) as other:
        started = time.monotonic()
        refused = client.post("/api/v1/requests", json=body, headers=headers)
        waited = time.monotonic() - started
        # Reads do not queue for the write lock: the caller still sees its requests.
        listed = client.get("/api/v1/requests", headers=headers)
        (stored,) = other.execute("SELECT count(*) FROM requests").fetchone()
    assert refused.status_code == 503, refused.json
    assert refused.json["error"]["code"] == "unavailable"
    assert "nothing was saved" in refused.json["error"]["message"]
    assert refused.headers["Retry-After"] == "2"
    assert waited >= 0.3  # it waited its busy timeout first
    assert listed.status_code == 200 and listed.json["total"] == 0
    assert stored == 0


def test_a_page_post_that_cannot_get_the_write_lock_shows_a_503_page(
    sqlite_app: Flask, demo_directory: Factory
) -> None:
    client = sqlite_app.test_client()
    with write_lock_held(sqlite_app):
        page = sign_in(client, "pacct")  # a sign-in records the attempt: a write
    assert page.status_code == 503
    assert "too busy" in page.get_data(as_text=True)
    assert page.headers["Retry-After"] == "2"


def test_writers_of_one_process_take_turns_and_all_land(busy_app: Any) -> None:
    """Sixteen threads, each holding the write lock 20 ms a time: SQLite alone polls for the
    lock with sleeps of up to 100 ms, and a thread could lose every try for its busy timeout;
    queueing for the process's turn first, every write lands."""
    busy = busy_app(2.0)
    threads, each = 16, 8
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        start.wait()
        with busy.app_context():
            for i in range(each):
                try:
                    db.session.add(
                        LoginAttempt(
                            username=f"writer-{n}-{i}",
                            remote_addr="127.0.0.1",
                            succeeded=True,
                            at=utcnow(),
                        )
                    )
                    db.session.flush()  # BEGIN IMMEDIATE: the write lock is held from here
                    time.sleep(0.02)
                    db.session.commit()
                except Exception as exc:  # every failure is reported below
                    db.session.rollback()
                    failures.append(exc)

    running = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    assert failures == []
    with busy.app_context():
        written = db.session.scalar(
            select(func.count()).where(LoginAttempt.username.like("writer-%"))
        )
    assert written == threads * each


def test_a_connection_dropped_mid_write_gives_its_turn_back(busy_app: Any) -> None:
    busy = busy_app(0.5)
    with busy.app_context():
        connection = db.engine.connect()
        connection.begin()  # this thread's turn, and SQLite's write lock
        connection.invalidate()  # dropped without COMMIT or ROLLBACK of its own
        connection.close()
        db.session.add(
            LoginAttempt(username="after", remote_addr="127.0.0.1", succeeded=True, at=utcnow())
        )
        db.session.commit()  # within the busy timeout, so the turn was given back
        assert db.session.scalar(select(func.count()).where(LoginAttempt.username == "after")) == 1


# A worker process as far as SQLite can tell: eight threads writing back to back through a
# background app, each holding the write lock 5 ms, until the file named in argv[2] exists.
_BACKGROUND_WRITER = """
import json, os, sys, threading, time
from service import create_app
from service.sqlite_writers import WriterGate
from service.extensions import db
from service.models import LoginAttempt, utcnow

config = json.loads(sys.argv[1])
app = create_app({**config, "SQLITE_BACKGROUND_WRITER": True})

def write(n):
    with app.app_context():
        i = 0
        while not os.path.exists(sys.argv[2]):
            db.session.add(LoginAttempt(
                username=f"worker-{n}-{i}", remote_addr="127.0.0.1", succeeded=True, at=utcnow()
            ))
            db.session.flush()
            time.sleep(0.005)
            db.session.commit()
            i += 1

threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
for thread in threads:
    thread.start()
print("writing", flush=True)
for thread in threads:
    thread.join()
"""


def test_the_webs_writers_go_ahead_of_the_workers(
    busy_app: Any, base_config: dict[str, Any], tmp_path: Path
) -> None:
    """The worker's threads hand the write lock to one another with no gap, and SQLite's own
    wait (sleeps of up to 100 ms) would leave a web writer behind them; through the writer
    gate each web write begins within a few of the worker's transactions."""
    web = busy_app(2.0)
    stop = tmp_path / "stop"
    waits: list[float] = []
    with subprocess.Popen(
        [sys.executable, "-c", _BACKGROUND_WRITER, json.dumps(base_config), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    ) as worker:
        try:
            assert worker.stdout is not None and worker.stdout.readline() == "writing\n"
            time.sleep(0.2)  # the worker's threads are all queued for the lock
            with web.app_context():
                for i in range(40):
                    started = time.monotonic()
                    db.session.add(
                        LoginAttempt(
                            username=f"web-{i}", remote_addr="::1", succeeded=True, at=utcnow()
                        )
                    )
                    db.session.flush()  # BEGIN IMMEDIATE
                    waits.append(time.monotonic() - started)
                    db.session.commit()
                    time.sleep(0.01)
        finally:
            stop.touch()
            assert worker.wait(timeout=30) == 0
    with web.app_context():
        by_worker = db.session.scalar(
            select(func.count()).where(LoginAttempt.username.like("worker-%"))
        )
        by_web = db.session.scalar(select(func.count()).where(LoginAttempt.username.like("web-%")))
    assert by_web == 40
    assert by_worker > 40  # the worker wrote all along, between the web's writes
    waits.sort()
    assert waits[len(waits) // 2] < 0.02, waits  # median: about one worker transaction
    assert waits[-1] < 0.2, waits


def test_the_workers_writer_is_not_starved_by_the_web(busy_app: Any, app: Flask) -> None:
    """Web writers overlapping without a gap keep the gate held: the worker's writer waits for
    it at most `WriterGate.BACKGROUND_WAIT`, then writes anyway."""
    worker = busy_app(2.0, SQLITE_BACKGROUND_WRITER=True)
    gate = os.open(f"{_sqlite_path(app)}-writers", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(gate, fcntl.LOCK_SH)  # as a web writer of another process would
        with worker.app_context():
            started = time.monotonic()
            db.session.add(
                LoginAttempt(username="worker", remote_addr="::1", succeeded=True, at=utcnow())
            )
            db.session.commit()
            waited = time.monotonic() - started
    finally:
        os.close(gate)
    assert WriterGate.BACKGROUND_WAIT <= waited < WriterGate.BACKGROUND_WAIT + 0.5
