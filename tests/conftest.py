"""Shared fixtures: a real database (SQLite, or PostgreSQL by URL), a real Temporal dev server,
the app, clients signed in per role, a factory for directory objects, and `eventually`.

Set LINKDESK_TEST_DATABASE_URL to run the suite against PostgreSQL; the schema is dropped and
migrated from scratch once per session, and every test starts from empty tables.

The Temporal dev server starts only for the tests that ask for it, through the `worker` or
`temporal_env` fixture: their app talks to it. Every other test's app has a Temporal address
nothing listens on, so a test that needs Temporal without asking fails at once (the web answers
503 "Temporal is not reachable right now", the service layer raises `Unavailable`), and a
database-only run never starts the dev server.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path
from typing import Any, TypeVar

import oidc_provider_mock
import pytest
import requests
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from werkzeug.serving import make_server

from domain.vocabulary import RequestKind, RequestStatus
from service import admin, create_app
from service.extensions import db
from service.models import Console, Instance, Request, User
from worker.main import build_worker

TEST_DATABASE_ENV = "LINKDESK_TEST_DATABASE_URL"
# Debian's chromium; `make test` passes its CHROMIUM here.
CHROMIUM = os.environ.get("LINKDESK_TEST_CHROMIUM") or "/usr/bin/chromium"
# Headless, and quiet: nothing is fetched from the network and nothing is downloaded.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "correct horse battery staple"
BIN_DIR = Path(sys.executable).parent
# Where a test's app looks for Temporal unless the test asks for the dev server: a port below
# 1024, which no server a test starts (on a free port) can take, so it always refuses.
NO_TEMPORAL = "127.0.0.1:1"

T = TypeVar("T")


def eventually(
    probe: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    timeout: float = 10,
    interval: float = 0.05,
    what: str = "the condition",
    show: Callable[[T], str] = repr,
) -> T:
    """Call `probe` until `until` holds for what it returns, and return that value.

    For what another thread or process does in its own time (a workflow, the worker, a child
    process). After `timeout` seconds it fails, naming `what` it waited for and showing the last
    value seen (through `show`). An exception from `probe` or `until` ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what}; last seen: {show(value)}"
            )
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopThread:
    """An asyncio loop in a daemon thread, for driving async Temporal APIs from sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the whole session (the system's, never a downloaded one).

    Defined here, once: Playwright's sync API runs one instance per thread, so every browser
    test module must share this one.
    """
    if not os.access(CHROMIUM, os.X_OK):  # one line, not Playwright's launch traceback
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM}: "
            "run `sudo apt-get install chromium`",
            pytrace=False,
        )
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[str]:
    """A real OpenID Connect provider (oidc-provider-mock: discovery, authorization code,
    PKCE, RS256-signed ID tokens, JWKS) in a thread on a free loopback port; its issuer URL.
    Who signs in is chosen on its authorization form (`sub`), with the claims `person` set."""
    server = make_server(
        "127.0.0.1", free_port(), oidc_provider_mock.app(require_nonce=True), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


def person(provider: str, sub: str, **claims: Any) -> str:
    """Tell the provider who `sub` is: the claims its ID tokens will carry."""
    answer = requests.put(f"{provider}/users/{sub}", json=claims, timeout=10)
    assert answer.status_code == 204, answer.text
    return sub


@pytest.fixture(scope="session")
def temporal_env(loop_thread: LoopThread) -> Iterator[WorkflowEnvironment]:
    """The real Temporal dev server from the pip-installed `temporal` binary, on a free port."""
    env = loop_thread.run(
        WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN_DIR / "temporal"),
            ip="127.0.0.1",
            port=free_port(),
            dev_server_log_level="error",
        )
    )
    yield env
    loop_thread.run(env.shutdown())


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return str(temporal_env.client.service_client.config.target_host)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get(TEST_DATABASE_ENV)
    if configured:
        return configured
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'linkdesk.sqlite3'}"


@pytest.fixture(scope="session")
def base_config(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The session's app config, without Temporal (see `app_config` for the tests that ask)."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-only-secret-key-that-is-long-enough-to-look-real",
        "TEMPORAL_ADDRESS": NO_TEMPORAL,
        "TEMPORAL_RPC_TIMEOUT": 2.0,
        # Real scrypt hashing with a smaller work factor, so user fixtures stay quick.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        "VAR_DIR": str(tmp_path_factory.mktemp("var")),
    }


@pytest.fixture(scope="session")
def _migrated_schema(base_config: dict[str, Any]) -> None:
    """Drop whatever the test database holds and migrate it from nothing, once per session."""
    app = create_app(base_config)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()


# Seeded by the migrations and kept between tests; a test that changes them restores them.
REFERENCE_TABLES = frozenset({"approval_policies", "sla_targets"})


def _empty_all_tables() -> None:
    # Identities are not restarted: request IDs, and so workflow IDs, stay unique all session.
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in REFERENCE_TABLES]
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            conn.execute(text(f"TRUNCATE {names} CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def app_config(base_config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """The test's app config: the session's dev server as Temporal if the test asks for it
    (it uses `worker` or `temporal_env`), otherwise an address where nothing answers."""
    if "temporal_env" not in request.fixturenames:
        return base_config
    return {**base_config, "TEMPORAL_ADDRESS": request.getfixturevalue("temporal_address")}


@contextmanager
def app_on_test_database(config: dict[str, Any]) -> Iterator[Flask]:
    """A LinkDesk app on the migrated test database, with a task queue of its own; the tables
    are emptied after."""
    app = create_app({**config, "TEMPORAL_TASK_QUEUE": f"linkdesk-test-{uuid.uuid4()}"})
    yield app
    with app.app_context():
        db.session.remove()
        _empty_all_tables()
        db.engine.dispose()


@pytest.fixture
def app(app_config: dict[str, Any], _migrated_schema: None) -> Iterator[Flask]:
    """A LinkDesk app on a migrated, empty database, with a task queue of its own."""
    with app_on_test_database(app_config) as app:
        yield app


@pytest.fixture
def make_app(app_config: dict[str, Any], _migrated_schema: None) -> Iterator[Any]:
    """`make_app(**overrides)`: another app on the test database, its connections closed after."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        other = create_app({**app_config, **overrides})
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@contextmanager
def running_worker(
    app: Flask, temporal_env: WorkflowEnvironment, loop_thread: LoopThread
) -> Iterator[Worker]:
    """LinkDesk's real worker on the app's task queue, against the session dev server."""

    async def build() -> Worker:  # a worker is made inside the loop that runs it
        return build_worker(temporal_env.client, app, app.config["TEMPORAL_TASK_QUEUE"])

    running: Worker = loop_thread.run(build())
    done = asyncio.run_coroutine_threadsafe(running.run(), loop_thread.loop)
    yield running
    loop_thread.run(running.shutdown())
    done.result(30)


@pytest.fixture
def worker(
    app: Flask, temporal_env: WorkflowEnvironment, loop_thread: LoopThread
) -> Iterator[Worker]:
    """LinkDesk's real worker on the test's own task queue, against the session dev server."""
    with running_worker(app, temporal_env, loop_thread) as running:
        yield running


@dataclass
class Factory:
    """Creates directory objects and users through the same service functions as the CLI."""

    app: Flask

    def console(self, code: str, type_: str = "accountant", name: str | None = None) -> Console:
        with self.app.app_context():
            console = admin.upsert_console(code, name or f"{code} firm", type_, "tests")
            db.session.commit()
            db.session.refresh(console)
            db.session.expunge(console)
            return console

    def instance(self, code: str, name: str | None = None) -> Instance:
        with self.app.app_context():
            instance = admin.upsert_instance(code, name or f"{code} Inc", "tests")
            db.session.commit()
            db.session.refresh(instance)
            db.session.expunge(instance)
            return instance

    def relationship(
        self, console: str, instance: str, *, access_enabled: bool, linked: bool
    ) -> None:
        with self.app.app_context():
            admin.set_relationship(
                db.session.execute(db.select(Console).filter_by(code=console)).scalar_one(),
                db.session.execute(db.select(Instance).filter_by(code=instance)).scalar_one(),
                access_enabled=access_enabled,
                linked=linked,
                actor="tests",
            )
            db.session.commit()

    def user(
        self,
        username: str,
        role: str,
        *,
        console: str | None = None,
        instances: tuple[str, ...] = (),
        password: str = PASSWORD,
    ) -> int:
        with self.app.app_context():
            console_obj = (
                db.session.execute(db.select(Console).filter_by(code=console)).scalar_one()
                if console
                else None
            )
            instance_objs = list(
                db.session.execute(
                    db.select(Instance).where(Instance.code.in_(instances))
                ).scalars()
            )
            user = admin.create_user(
                username,
                role=role,
                password=password,
                actor="tests",
                email=f"{username}@example.test",
                console=console_obj,
                instances=instance_objs,
            )
            db.session.commit()
            return user.id

    def get_user(self, username: str) -> User:
        with self.app.app_context():
            user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one()
            db.session.expunge(user)
            return user


@pytest.fixture
def make(app: Flask) -> Factory:
    return Factory(app)


class ApiClient:
    """A test client that sends a bearer token with every request."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, headers=self.headers, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.client.delete(url, headers=self.headers, **kwargs)


def api_token(client: FlaskClient, username: str, password: str = PASSWORD) -> str:
    """Create an API token through the API, as a client would."""
    response = client.post("/api/v1/tokens", json={"username": username, "password": password})
    assert response.status_code == 201, response.json
    return str(response.json["token"])


@pytest.fixture
def api_as(app: Flask, client: FlaskClient) -> Any:
    """`api_as("username")`: an API client authenticated as that (existing) user."""

    def signed_in(username: str) -> ApiClient:
        return ApiClient(app.test_client(), api_token(client, username))

    return signed_in


def csrf_token(client: FlaskClient, url: str = "/sign-in") -> str:
    """The CSRF token of the client's session, read from a page's form as a browser would."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    """Sign in through the sign-in form."""
    return client.post(
        "/sign-in",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
    )


@pytest.fixture
def demo_directory(make: Factory) -> Factory:
    """A small directory with one console of each type, instances and one user per role
    (see `fill_demo_directory`)."""
    return fill_demo_directory(make)


def fill_demo_directory(make: Factory) -> Factory:
    """A small directory with one console of each type, instances and one user per role.

    ACCT-01 (accountant) relates to ACME-US (both flags), BETA (access only) and GAMMA (none);
    VAR-01 (partner) relates to DELTA (link only). OMEGA relates to no console.
    `iadmin` administers ACME-US and DELTA.
    """
    for code, type_ in (
        ("ACCT-01", "accountant"),
        ("VAR-01", "partner"),
        ("MGMT-01", "management"),
    ):
        make.console(code, type_)
    for code in ("ACME-US", "BETA", "GAMMA", "DELTA", "OMEGA"):
        make.instance(code)
    make.relationship("ACCT-01", "ACME-US", access_enabled=True, linked=True)
    make.relationship("ACCT-01", "BETA", access_enabled=True, linked=False)
    make.relationship("ACCT-01", "GAMMA", access_enabled=False, linked=False)
    make.relationship("VAR-01", "DELTA", access_enabled=False, linked=True)
    make.user("pacct", "partner", console="ACCT-01")
    make.user("pvar", "partner", console="VAR-01")
    make.user("iadmin", "instance_admin", instances=("ACME-US", "DELTA"))
    make.user("agent", "agent")
    make.user("boss", "manager")
    make.user("root", "admin")
    return make


def waiting_request(app: Flask) -> Request:
    """A request of `pacct`'s for ACCT-01 and BETA, stored waiting for an agent with no
    workflow behind it (from `demo_directory`), for tests of what an activity does with it."""
    with app.app_context():
        requester = db.session.execute(db.select(User).filter_by(username="pacct")).scalar_one()
        assert requester.console_id is not None
        request = Request(
            kind=RequestKind.ESTABLISH_LINK,
            console_id=requester.console_id,
            instance_id=db.session.execute(
                db.select(Instance.id).filter_by(code="BETA")
            ).scalar_one(),
            requester_id=requester.id,
            reason="x",
            status=RequestStatus.AWAITING_AGENT,
            steps=["review"],
        )
        db.session.add(request)
        db.session.commit()
        db.session.refresh(request)
        db.session.expunge(request)
        return request


class Inbox:
    """Collects what a real SMTP server, started by the `smtp` fixture, receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on a free loopback port, and what it receives."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()
