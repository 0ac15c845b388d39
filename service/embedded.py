"""`linkdesk up`: the whole product on one machine, on its embedded defaults.

Starts, in order, the Temporal development server (state in `var/temporal.sqlite3`, Web UI
included), the Temporal worker as its own process, and the web app under gunicorn; migrates
and seeds the demo data on first start; prints the URLs and demo sign-ins; and on Ctrl-C (or
SIGTERM) stops every child in reverse order. A second `linkdesk up` on the same `var/` says
so instead of colliding on ports.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from service.private_files import open_private, private_dir, tighten

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    """The loopback ports of the embedded stack."""

    web: int
    temporal: int
    temporal_ui: int

    @classmethod
    def from_env(cls) -> Ports:
        """Ports from LINKDESK_WEB_PORT, LINKDESK_TEMPORAL_PORT, LINKDESK_TEMPORAL_UI_PORT."""
        try:
            return cls(
                web=int(os.environ.get("LINKDESK_WEB_PORT", "8000")),
                temporal=int(os.environ.get("LINKDESK_TEMPORAL_PORT", "7233")),
                temporal_ui=int(os.environ.get("LINKDESK_TEMPORAL_UI_PORT", "8233")),
            )
        except ValueError as exc:
            raise StartupError(f"a LINKDESK_*_PORT variable is not a number: {exc}") from None


class StartupError(RuntimeError):
    """The stack cannot start; the message tells the person what to do."""


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived."""


def _on_signal(_signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Interrupted


@dataclass
class Child:
    """A child process of the embedded stack."""

    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)


def _say(message: str) -> None:
    print(f"[linkdesk] {message}", flush=True)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _binary(name: str) -> str:
    """A console script of this environment (the venv's bin), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise StartupError(f"'{name}' is not installed; run 'make run' to set up the venv.")
    return found


def _lock(var_dir: Path) -> IO[str]:
    """Hold `var/linkdesk.lock` for the life of this process; refuse a second stack."""
    handle = open(var_dir / "linkdesk.lock", "a+", opener=open_private)  # noqa: SIM115 (held)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "unknown"
        raise StartupError(
            f"LinkDesk is already running from {var_dir} (process {pid}). "
            "Use that one, or stop it with Ctrl-C in its terminal first."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _secret_key(var_dir: Path) -> str:
    """A per-installation secret kept in var/, so sessions survive a restart."""
    path = var_dir / "secret_key"
    if not path.exists():
        with open(path, "w", opener=open_private) as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _wait_for(check_name: str, probe: Callable[[], bool], child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise StartupError(
                f"{child.name} exited during start-up (code {child.process.returncode}); "
                f"see {child.log.name}"
            )
        if probe():
            return
        time.sleep(0.2)
    raise StartupError(f"{check_name} did not come up within {timeout:.0f}s; see {child.log.name}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _prepare_database() -> list[str]:
    """Migrate, seed the demo data on first start, and return the lines to print."""
    from flask_migrate import upgrade

    from service import create_app
    from service.demo import directory as demo

    app = create_app(serving=False)
    with app.app_context():
        upgrade()
        created = demo.seed()
        lines = [f"{'first start: demo data written' if created else 'demo data present'}"]
        lines += [f"  {s.username:<15} {s.role:<15} {s.scope}" for s in demo.sign_ins()]
        lines.append(f"  password for every demo sign-in: {demo.DEMO_PASSWORD}")
    return lines


def temporal_command(var_dir: Path, ports: Ports) -> list[str]:
    """The Temporal dev server, its state in `var/temporal.sqlite3` (it survives a restart)."""
    return [
        _binary("temporal"), "server", "start-dev",
        "--ip", HOST,
        "--port", str(ports.temporal),
        "--ui-port", str(ports.temporal_ui),
        "--db-filename", str(var_dir / "temporal.sqlite3"),
        # As LinkDesk's own SQLite: WAL, fsync at checkpoints rather than every commit
        # (safe across process crashes and restarts); 2-3x the throughput of the default.
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn",
        "--ui-disable-news-fetch",
    ]  # fmt: skip


def worker_command() -> list[str]:
    """The Temporal worker, as production runs it."""
    return [sys.executable, "-m", "worker"]


def web_command(port: int) -> list[str]:
    """The web app under gunicorn, as production runs it, on a loopback port."""
    return [
        sys.executable, "-m", "gunicorn",
        "--config", "python:service.gunicorn_conf",
        "--bind", f"{HOST}:{port}",
        "service:create_app()",
    ]  # fmt: skip


class Stack:
    """The running children, stopped together."""

    def __init__(self, var_dir: Path, env: dict[str, str]) -> None:
        self.var_dir = var_dir
        self.env = env
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str]) -> Child:
        # Closed in `stop`, once the child that writes to it has exited.
        log = open(self.var_dir / "log" / f"{name}.log", "ab", opener=open_private)  # noqa: SIM115
        process = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            # What the children create in var/ (the Temporal dev server's database among it)
            # is owner-only, whatever the umask `linkdesk up` was started with.
            umask=0o077,
        )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                _say(f"stopping {child.name}")
                os.killpg(child.process.pid, signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=30)  # the worker lets activities finish (20 s)
            except subprocess.TimeoutExpired:
                _say(f"{child.name} did not stop in time; killing it")
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            child.log.close()

    def exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)


def run() -> int:
    """Run the embedded stack until interrupted; the exit code says how it ended."""
    var_dir = Path(os.environ.get("LINKDESK_VAR_DIR", "var")).resolve()
    tighten(private_dir(var_dir))  # a var/ from before, or made under a lax umask
    private_dir(var_dir / "log")
    try:
        ports = Ports.from_env()
        lock = _lock(var_dir)
    except StartupError as exc:
        _say(str(exc))
        return 1

    env = dict(os.environ)
    env.setdefault("LINKDESK_VAR_DIR", str(var_dir))
    env.setdefault("LINKDESK_SECRET_KEY", _secret_key(var_dir))
    env["LINKDESK_TEMPORAL_ADDRESS"] = f"{HOST}:{ports.temporal}"
    env["LINKDESK_TEMPORAL_UI_URL"] = f"http://{HOST}:{ports.temporal_ui}"
    os.environ.update({k: env[k] for k in env if k.startswith("LINKDESK_")})

    stack = Stack(var_dir, env)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        busy = [p for p in (ports.web, ports.temporal, ports.temporal_ui) if _port_in_use(p)]
        if busy:
            raise StartupError(
                f"port(s) {', '.join(map(str, busy))} on {HOST} are taken by another program; "
                "free them or choose others with LINKDESK_WEB_PORT, LINKDESK_TEMPORAL_PORT "
                "and LINKDESK_TEMPORAL_UI_PORT."
            )
        _say("migrating the database")
        seed_lines = _prepare_database()

        _say(f"starting the Temporal dev server on {HOST}:{ports.temporal}")
        temporal = stack.start("temporal", temporal_command(var_dir, ports))
        _wait_for("Temporal", lambda: _port_in_use(ports.temporal), temporal, 60)

        _say("starting the worker")
        stack.start("worker", worker_command())

        _say(f"starting the web app on http://{HOST}:{ports.web}")
        web = stack.start("web", web_command(ports.web))
        _wait_for("the web app", lambda: _http_ok(f"http://{HOST}:{ports.web}/readyz"), web, 90)

        print(
            "\n".join(
                [
                    "",
                    "LinkDesk is running. Press Ctrl-C to stop everything.",
                    f"  Web app         http://{HOST}:{ports.web}/",
                    f"  API docs        http://{HOST}:{ports.web}/api/v1/docs",
                    f"  Temporal Web UI http://{HOST}:{ports.temporal_ui}/",
                    f"  Logs            {var_dir / 'log'}",
                    "",
                    *seed_lines,
                    "",
                ]
            ),
            flush=True,
        )
        while True:
            crashed = stack.exited()
            if crashed is not None:
                raise StartupError(
                    f"{crashed.name} exited unexpectedly (code {crashed.process.returncode}); "
                    f"see {crashed.log.name}"
                )
            time.sleep(0.3)
    except _Interrupted:
        _say("shutting down")
        return 0
    except StartupError as exc:
        _say(f"error: {exc}")
        return 1
    finally:
        stack.stop()
        lock.close()
