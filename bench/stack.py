"""The stacks under benchmark, and a small keep-alive JSON client for their API.

`EmbeddedStack` runs `linkdesk up` exactly as `make run` does, on a fresh state directory and
free loopback ports, waits for "LinkDesk is running", and stops it (Ctrl-C, as a person would)
when the benchmark ends, however it ends.

`SupervisedStack` runs the same three processes with the same command lines, but as a process
supervisor would (production's systemd units, see deploy/): each one is started again when it
dies, on SQLite or on another database such as PostgreSQL. `linkdesk up` can do neither: it
stops everything when one of its children exits, and seeds the demo data on SQLite only.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from service.embedded import Ports, temporal_command, web_command, worker_command

HOST = "127.0.0.1"
LINKDESK = str(Path(sys.executable).with_name("linkdesk"))
READY_LINE = "LinkDesk is running"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.append(child)
                    frontier.append(child)
    return found


def cmdline(pid: int) -> str:
    """The command line of a process, or '' when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def runs_module(command: str, module: str) -> bool:
    """Whether a command line is `python -m <module>`."""
    return any(a == "-m" and b == module for a, b in itertools.pairwise(command.split()))


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (VmRSS of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class OperatedStack:
    """What both stacks offer the benchmarks: LinkDesk's operator commands on their database."""

    var_dir: Path
    env: dict[str, str]

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def linkdesk(self, *args: str) -> str:
        """Run an operator command (`linkdesk ...`) against this stack's database."""
        done = subprocess.run(
            [LINKDESK, *args], env=self.env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(f"linkdesk {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout.strip()

    def import_csv(self, kind: str, header: str, rows: list[str]) -> None:
        """Create or update directory rows with `linkdesk import-csv KIND`."""
        path = self.var_dir.parent / f"{kind}.csv"
        path.write_text(header + "\n" + "".join(f"{row}\n" for row in rows))
        self.linkdesk("import-csv", kind, str(path))

    def import_instances(self, codes: list[str]) -> None:
        """Create instances (no relationship to any console) with `linkdesk import-csv`."""
        self.import_csv("instances", "code,name", [f"{c},Bench company {c}" for c in codes])


class EmbeddedStack(OperatedStack):
    """`linkdesk up` on a fresh temporary state directory and free ports."""

    def __init__(self, keep_dir: bool = False) -> None:
        self.var_dir = Path(tempfile.mkdtemp(prefix="linkdesk-bench-")) / "var"
        self.keep_dir = keep_dir
        self.ports = {
            "LINKDESK_WEB_PORT": free_port(),
            "LINKDESK_TEMPORAL_PORT": free_port(),
            "LINKDESK_TEMPORAL_UI_PORT": free_port(),
        }
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LINKDESK_")},
            "LINKDESK_VAR_DIR": str(self.var_dir),
            **{k: str(v) for k, v in self.ports.items()},
        }
        self.web_port = self.ports["LINKDESK_WEB_PORT"]
        self.temporal_address = f"{HOST}:{self.ports['LINKDESK_TEMPORAL_PORT']}"
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if READY_LINE in line:
                self._ready.set()

    def start(self, timeout: float = 180.0) -> None:
        """Start `linkdesk up` and wait until it says it is running."""
        self.process = subprocess.Popen(
            [LINKDESK, "up"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read_output, name="linkdesk-up", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("linkdesk up did not start:\n" + "".join(self.output))

    def stop(self) -> None:
        """Ctrl-C `linkdesk up` (it stops its children); kill what is left after a minute."""
        process, self.process = self.process, None
        if process is not None:
            children = descendants(process.pid)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for pid in children:  # only what this stack started, by PID
                if cmdline(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        if not self.keep_dir:
            shutil.rmtree(self.var_dir.parent, ignore_errors=True)

    def worker_pid(self) -> int:
        """The PID of the Temporal worker process (`python -m worker`)."""
        assert self.process is not None
        for pid in descendants(self.process.pid):
            if runs_module(cmdline(pid), "worker"):
                return pid
        raise RuntimeError("the worker process of linkdesk up was not found")

    def processes(self) -> dict[str, list[int]]:
        """The stack's processes by role: temporal, worker and web (gunicorn's)."""
        assert self.process is not None
        found: dict[str, list[int]] = {"temporal": [], "worker": [], "web": []}
        for pid in descendants(self.process.pid):
            command = cmdline(pid)
            if "start-dev" in command:
                found["temporal"].append(pid)
            elif runs_module(command, "worker"):
                found["worker"].append(pid)
            elif "gunicorn" in command:
                found["web"].append(pid)
        return found


@dataclass
class Exit:
    """A child of the supervised stack that died, and when it was started again."""

    role: str
    pid: int
    code: int
    died_at: float  # time.monotonic()
    restarted_at: float | None = None


class SupervisedStack(OperatedStack):
    """Temporal dev server, worker and web app as `linkdesk up` starts them, each restarted
    `restart_delay` seconds after it dies, on a fresh state directory and free ports.

    With `database_url` (PostgreSQL), that database's `public` schema is dropped and migrated
    anew; without it, LinkDesk's SQLite file in the state directory is used, as `linkdesk up`
    does. The demo directory and sign-ins are seeded either way.
    """

    ROLES = ("temporal", "worker", "web")

    def __init__(
        self, database_url: str | None = None, restart_delay: float = 1.0, keep_dir: bool = False
    ) -> None:
        self.var_dir = Path(tempfile.mkdtemp(prefix="linkdesk-chaos-")) / "var"
        self.var_dir.mkdir(mode=0o700)
        (self.var_dir / "log").mkdir(mode=0o700)
        self.database_url = database_url
        self.restart_delay = restart_delay
        self.keep_dir = keep_dir
        self.ports = Ports(web=free_port(), temporal=free_port(), temporal_ui=free_port())
        self.web_port = self.ports.web
        self.temporal_address = f"{HOST}:{self.ports.temporal}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LINKDESK_")},
            "LINKDESK_VAR_DIR": str(self.var_dir),
            "LINKDESK_SECRET_KEY": secrets.token_urlsafe(48),
            "LINKDESK_TEMPORAL_ADDRESS": self.temporal_address,
            "LINKDESK_TEMPORAL_UI_URL": f"http://{HOST}:{self.ports.temporal_ui}",
            **({"LINKDESK_DATABASE_URL": database_url} if database_url else {}),
        }
        self.commands = {
            "temporal": temporal_command(self.var_dir, self.ports),
            "worker": worker_command(),
            "web": web_command(self.ports.web),
        }
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.exits: list[Exit] = []
        self._logs: list[IO[bytes]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self, timeout: float = 120.0) -> None:
        """Prepare the database, start the three processes in order and supervise them."""
        try:
            if self.database_url:
                self._empty_database()
            self.linkdesk("db", "upgrade")
            self.linkdesk("seed-demo", "--allow-non-sqlite")
            self._spawn("temporal")
            self._wait(lambda: _listening(self.ports.temporal), "Temporal", timeout)
            self._spawn("worker")
            self._spawn("web")
            self._wait(self.ready, "the web app", timeout)
        except BaseException:
            self.stop()
            raise
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor.start()

    def _empty_database(self) -> None:
        """Drop the PostgreSQL database's `public` schema (a SQLite file given is used as is)."""
        from sqlalchemy import text

        from service import create_app
        from service.extensions import db

        app = create_app(
            {"DATABASE_URL": self.database_url, "VAR_DIR": str(self.var_dir)}, serving=False
        )
        with app.app_context():
            if db.engine.dialect.name == "postgresql":
                with db.engine.begin() as connection:
                    connection.execute(text("DROP SCHEMA public CASCADE"))
                    connection.execute(text("CREATE SCHEMA public"))
            db.engine.dispose()

    def _spawn(self, role: str) -> None:
        log = open(self.var_dir / "log" / f"{role}.log", "ab")  # noqa: SIM115 (closed in stop)
        self._logs.append(log)
        self.children[role] = subprocess.Popen(
            self.commands[role],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed, it takes its own along
            umask=0o077,
        )

    def _wait(self, probe: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            dead = [role for role, child in self.children.items() if child.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} did not come up; see the logs in {self.var_dir / 'log'}"
                )
            time.sleep(0.2)

    def ready(self) -> bool:
        """Whether the web app answers /readyz with 200 (database and Temporal reachable)."""
        connection = http.client.HTTPConnection(HOST, self.web_port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def _supervise(self) -> None:
        due: dict[str, float] = {}
        while not self._stopping.wait(0.1):
            now = time.monotonic()
            with self._lock:
                for role, child in self.children.items():
                    code = child.poll()
                    if code is not None and role not in due:
                        self.exits.append(Exit(role, child.pid, code, now))
                        due[role] = now + self.restart_delay
                for role, at in list(due.items()):
                    if now >= at and not self._stopping.is_set():
                        self._spawn(role)
                        del due[role]
                        for exit_ in self.exits:
                            if exit_.role == role and exit_.restarted_at is None:
                                exit_.restarted_at = time.monotonic()

    def pids(self) -> dict[str, list[int]]:
        """The live processes by role; `web` lists gunicorn's master first, then its workers."""
        with self._lock:
            return {
                role: [child.pid, *descendants(child.pid)]
                for role, child in self.children.items()
                if child.poll() is None
            }

    def kill(self, role: str) -> int:
        """SIGKILL a role's whole process group, as a crash or the OOM killer would; its PID."""
        with self._lock:
            child = self.children[role]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            return child.pid

    def kill_pid(self, pid: int) -> None:
        """SIGKILL one process of the stack (a gunicorn worker, say)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop supervising, SIGTERM every process group (web first), SIGKILL what lingers."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        with self._lock:
            for role in reversed(self.ROLES):
                child = self.children.get(role)
                if child is not None and child.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGTERM)
            for role in reversed(self.ROLES):
                child = self.children.get(role)
                if child is None:
                    continue
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            for log in self._logs:
                log.close()
        if not self.keep_dir:
            shutil.rmtree(self.var_dir.parent, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


class ApiError(RuntimeError):
    """An answer with an unexpected status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


class Api:
    """A JSON client on one keep-alive connection (one per thread), as a real client would be."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(HOST, self.port, timeout=60)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        """Send one request and return its JSON answer; raise `ApiError` on another status."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                text = response.read().decode()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection; retry once on a new one.
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            if response.status != expect:
                raise ApiError(response.status, text)
            return json.loads(text) if text else None
        raise AssertionError("unreachable")

    @classmethod
    def signed_in(cls, port: int, username: str, password: str = "demo") -> Api:
        """A client holding a fresh API token of this user."""
        anonymous = cls(port)
        answer = anonymous.call(
            "POST", "/api/v1/tokens", {"username": username, "password": password}, expect=201
        )
        anonymous.close()
        return cls(port, answer["token"])


def chunks(items: list[str], parts: int) -> Iterator[list[str]]:
    """`items` dealt round-robin into `parts` lists."""
    for index in range(parts):
        yield items[index::parts]
