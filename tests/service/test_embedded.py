"""`make run`'s entry point (`linkdesk up`) as a person runs it: start, use, Ctrl-C, restart."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually, free_port

pytestmark = pytest.mark.slow
LINKDESK = str(Path(sys.executable).with_name("linkdesk"))


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            children = (task / "children").read_text().split() if task.exists() else []
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def http(url: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    request = urllib.request.Request(url, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(request, data=data, timeout=10) as response:
        return json.loads(response.read())


def assert_owner_only(var_dir: Path) -> None:
    """var/ and every directory under it are 0700, every file 0600."""
    modes = {
        str(path.relative_to(var_dir.parent)): stat.S_IMODE(path.lstat().st_mode)
        for path in [var_dir, *var_dir.rglob("*")]
    }
    for name in ("temporal.sqlite3", "linkdesk.sqlite3", "linkdesk.sqlite3-writers"):
        assert f"var/{name}" in modes, modes
    assert "var/secret_key" in modes and "var/linkdesk.lock" in modes, modes
    wanted = {name: 0o700 if (var_dir.parent / name).is_dir() else 0o600 for name in modes}
    assert modes == wanted


class Stack:
    def __init__(self, var_dir: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LINKDESK_")},
            "LINKDESK_VAR_DIR": str(var_dir),
            "LINKDESK_WEB_PORT": str(free_port()),
            "LINKDESK_TEMPORAL_PORT": str(free_port()),
            "LINKDESK_TEMPORAL_UI_PORT": str(free_port()),
            "LINKDESK_WEB_WORKERS": "1",
            "LINKDESK_PASSWORD_HASH_METHOD": '"scrypt:1024:8:1"',
        }
        self.var_dir = var_dir
        self.base = f"http://127.0.0.1:{self.env['LINKDESK_WEB_PORT']}"
        self.log = var_dir.parent / "up.out"
        self.offset = 0

    def output(self) -> str:
        """What the current run has printed so far."""
        return self.log.read_text()[self.offset :]

    def start(self) -> subprocess.Popen[bytes]:
        self.offset = len(self.log.read_text()) if self.log.exists() else 0
        with self.log.open("ab") as out:
            process = subprocess.Popen(
                [LINKDESK, "up"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                umask=0,  # var/ must come out owner-only even under a umask that allows all
            )

        def output_while_running() -> str:
            assert process.poll() is None, self.log.read_text()
            return self.output()

        try:
            eventually(
                output_while_running,
                lambda output: "LinkDesk is running" in output,
                timeout=120,
                interval=0.3,
                what="linkdesk up to start",
                show=lambda output: f"\n{output}",
            )
        except BaseException:
            process.kill()
            raise
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> set[int]:
        children = descendants(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, self.log.read_text()
        return children


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "var")
    yield stack
    for line in stack.log.read_text().splitlines() if stack.log.exists() else []:
        print(line)


def test_up_serves_the_product_and_ctrl_c_stops_every_child(stack: Stack) -> None:
    process = stack.start()
    try:
        output = stack.output()
        assert f"Web app         {stack.base}/" in output
        assert "partner-acct" in output and "password for every demo sign-in: demo" in output
        ready = http(f"{stack.base}/readyz")
        assert ready == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}
        token = http(f"{stack.base}/api/v1/tokens", {"username": "agent1", "password": "demo"})
        me = http(f"{stack.base}/api/v1/me", token=token["token"])
        assert me["username"] == "agent1"
        assert_owner_only(stack.var_dir)

        second = subprocess.run(
            [LINKDESK, "up"], env=stack.env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "LinkDesk is already running" in second.stdout
    except BaseException:
        process.kill()
        raise
    children = stack.stop(process)
    names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in children if alive(pid)}
    assert len(children) >= 4, names  # temporal, worker, gunicorn master and its worker
    eventually(
        lambda: [pid for pid in children if alive(pid)],
        lambda still_alive: still_alive == [],
        timeout=10,
        interval=0.2,
        what="every child of linkdesk up to exit",
    )

    restarted = stack.start()
    try:
        assert "demo data present" in stack.output()
        again = http(f"{stack.base}/api/v1/me", token=token["token"])  # state survived
        assert again["username"] == "agent1"
    finally:
        stack.stop(restarted)
