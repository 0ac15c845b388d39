"""The `linkdesk` operator commands: demo seed, users and CSV imports."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from domain.vocabulary import Role
from service.cli import main
from service.demo import directory as demo
from service.extensions import db
from service.models import (
    AuditEvent,
    Console,
    Instance,
    RecoveryCode,
    Relationship,
    SecondFactor,
    User,
    utcnow,
)
from tests.conftest import PASSWORD, Factory, api_token, sign_in


def run(app: Flask, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(main, list(args), input=input)


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def test_demo_seed_matches_the_product_contract(app: Flask) -> None:
    with app.app_context():
        assert demo.seed(allow_non_sqlite=True) is True
        assert demo.seed(allow_non_sqlite=True) is False  # first start only
        instances = db.session.execute(select(Instance)).scalars().all()
        assert len(instances) >= 20
        users = {u.username: u for u in db.session.execute(select(User)).scalars()}
        assert {name: u.role for name, u in users.items()} == {
            "partner-acct": Role.PARTNER,
            "partner-var": Role.PARTNER,
            "partner-mgmt": Role.PARTNER,
            "instance-admin": Role.INSTANCE_ADMIN,
            "agent1": Role.AGENT,
            "agent2": Role.AGENT,
            "manager": Role.MANAGER,
            "admin": Role.ADMIN,
        }
        assert users["partner-mgmt"].console is not None
        assert users["partner-mgmt"].console.type.value == "management"
        assert len(users["instance-admin"].instances) == len(instances)
        for console in db.session.execute(select(Console)).scalars():
            rows = (
                db.session.execute(
                    select(Relationship).where(Relationship.console_id == console.id)
                )
                .scalars()
                .all()
            )
            combos = [(r.access_enabled, r.linked) for r in rows]
            for combo in product((True, False), repeat=2):
                assert combos.count(combo) >= 2, (console.code, combo)
            assert len(rows) < len(instances)  # some instances have no relationship yet


def test_demo_sign_ins_use_the_demo_password(app: Flask, client: Any) -> None:
    with app.app_context():
        demo.seed(allow_non_sqlite=True)
    response = client.post("/api/v1/tokens", json={"username": "agent1", "password": "demo"})
    assert response.status_code == 201


def test_demo_seed_refuses_a_non_sqlite_database(base_config: dict[str, Any]) -> None:
    from service import create_app

    app = create_app({**base_config, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    result = run(app, "seed-demo")
    assert result.exit_code != 0
    assert "Refusing to write demo data into a non-SQLite database" in result.output


def test_create_user_with_scope(app: Flask, make: Factory) -> None:
    make.console("ACCT-01")
    result = run(
        app, "create-user", "pat", "--role", "partner", "--console", "acct-01",
        "--password", "s3cret-pass", "--name", "Pat",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created partner pat." in result.output
    user = make.get_user("pat")
    assert user.display_name == "Pat"
    assert user.console_id is not None
    with app.app_context():
        actions = db.session.execute(select(AuditEvent.action, AuditEvent.actor)).all()
    assert ("user.created", "cli") in actions


def test_create_user_refuses_a_scope_that_does_not_fit(app: Flask, make: Factory) -> None:
    make.instance("ACME-US")
    no_console = run(app, "create-user", "pat", "--role", "partner", "--password", "longpass")
    assert no_console.exit_code != 0
    assert "A partner works from a console." in no_console.output
    unknown = run(
        app, "create-user", "ines", "--role", "instance_admin", "--instance", "NOPE",
        "--password", "longpass",
    )  # fmt: skip
    assert unknown.exit_code != 0
    assert "no instance NOPE" in unknown.output
    bad_role = run(app, "create-user", "x", "--role", "wizard", "--password", "longpass")
    assert "Unknown role 'wizard'" in bad_role.output
    assert count(app, User) == 0


def test_create_user_refuses_a_taken_username(app: Flask, make: Factory) -> None:
    make.user("agent7", "agent")
    result = run(app, "create-user", "agent7", "--role", "agent", "--password", "longpass")
    assert result.exit_code != 0
    assert "There is already a user 'agent7'." in result.output


def test_csv_import_creates_and_updates(app: Flask, tmp_path: Path) -> None:
    consoles = tmp_path / "consoles.csv"
    consoles.write_text("code,name,type\nacct-02,Ledger Two,accountant\nVAR-09,Resell,partner\n")
    instances = tmp_path / "instances.csv"
    instances.write_text("code,name\nACME-US,Acme\nBETA,Beta Co\n")
    relationships = tmp_path / "relationships.csv"
    relationships.write_text(
        "console,instance,access_enabled,linked\nACCT-02,ACME-US,true,false\nVAR-09,BETA,no,yes\n"
    )
    for kind, path in (("consoles", consoles), ("instances", instances)):
        result = run(app, "import-csv", kind, str(path))
        assert result.exit_code == 0, result.output
    result = run(app, "import-csv", "relationships", str(relationships))
    assert result.exit_code == 0, result.output
    assert "Imported 2 relationships row(s)." in result.output
    consoles.write_text("code,name,type\nACCT-02,Ledger Two Renamed,accountant\n")
    assert run(app, "import-csv", "consoles", str(consoles)).exit_code == 0
    with app.app_context():
        flags = {
            (r.console.code, r.instance.code): (r.access_enabled, r.linked)
            for r in db.session.execute(select(Relationship)).scalars()
        }
        renamed = db.session.execute(select(Console).filter_by(code="ACCT-02")).scalar_one()
        assert renamed.name == "Ledger Two Renamed"
    assert flags == {("ACCT-02", "ACME-US"): (True, False), ("VAR-09", "BETA"): (False, True)}


def test_csv_import_is_all_or_nothing(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "consoles.csv"
    path.write_text(
        "code,name,type\nGOOD-1,Fine,accountant\nBAD 2,Spaces,partner\nGOOD-3,Odd,wholesale\n"
    )
    result = run(app, "import-csv", "consoles", str(path))
    assert result.exit_code != 0
    assert "line 3" in result.output
    assert "line 4" in result.output
    assert "Unknown console type 'wholesale'" in result.output
    assert "Nothing imported: 2 error(s)." in result.output
    assert count(app, Console) == 0


def test_csv_import_reports_missing_columns_and_unknown_references(
    app: Flask, tmp_path: Path
) -> None:
    path = tmp_path / "rel.csv"
    path.write_text("console,instance\nX,Y\n")
    result = run(app, "import-csv", "relationships", str(path))
    assert "missing column(s): access_enabled, linked" in result.output
    path.write_text("console,instance,access_enabled,linked\nNOPE,ALSO-NOPE,true,true\n")
    result = run(app, "import-csv", "relationships", str(path))
    assert "Unknown console 'NOPE'" in result.output
    assert count(app, Relationship) == 0


def test_operator_commands_need_no_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LINKDESK_SECRET_KEY", "LINKDESK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LINKDESK_VAR_DIR", str(tmp_path))
    runner = CliRunner()
    for args in (["db", "upgrade"], ["seed-demo"], ["routes"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    # Flask's `run` would serve requests with this keyless app: it is not offered.
    assert "No such command 'run'" in runner.invoke(main, ["run"]).output


def test_reset_two_factor_turns_it_off_audited(app: Flask, make: Factory) -> None:
    user_id = make.user("alice", "agent")
    with app.app_context():
        db.session.add(SecondFactor(user_id=user_id, secret="x", enabled_at=utcnow()))
        db.session.add(RecoveryCode(user_id=user_id, digest="d" * 64))
        db.session.commit()
    result = run(app, "reset-two-factor", "alice")
    assert result.exit_code == 0, result.output
    assert "Two-factor sign-in of alice is off" in result.output
    assert count(app, SecondFactor) == count(app, RecoveryCode) == 0
    with app.app_context():
        actions = db.session.execute(select(AuditEvent.action, AuditEvent.actor)).all()
    assert ("user.second_factor_reset", "cli") in actions
    again = run(app, "reset-two-factor", "alice")
    assert "alice has no two-factor sign-in." in again.output
    unknown = run(app, "reset-two-factor", "nobody")
    assert unknown.exit_code != 0
    assert "There is no user 'nobody'." in unknown.output


def signed_in_browser(app: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, username, password).status_code == 302
    assert client.get("/").status_code == 200
    return client


def test_set_password_signs_the_user_out_everywhere(app: Flask, make: Factory) -> None:
    make.user("agent7", "agent")
    laptop, phone = signed_in_browser(app, "agent7"), signed_in_browser(app, "agent7")
    new = "an operator's new passphrase"
    result = run(app, "set-password", "agent7", input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert "Password of agent7 changed; 2 sessions ended." in result.output
    for browser in (laptop, phone):
        assert browser.get("/").status_code == 302
    assert sign_in(app.test_client(), "agent7").status_code == 401
    signed_in_browser(app, "agent7", new)
    with app.app_context():
        event = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "user.password_reset")
        ).scalar_one()
    assert (event.actor, event.object_ref, event.detail) == ("cli", "agent7", {"sessions_ended": 2})
    assert new not in json.dumps(event.detail)


def test_set_password_refuses_a_short_password_or_an_unknown_user(
    app: Flask, make: Factory
) -> None:
    make.user("agent7", "agent")
    browser = signed_in_browser(app, "agent7")
    short = run(app, "set-password", "agent7", input="tiny\ntiny\n")
    assert short.exit_code != 0
    assert "The password is too short. password: At least 12 characters." in short.output
    unknown = run(app, "set-password", "nobody", "--password", "long enough password")
    assert unknown.exit_code != 0
    assert "There is no user 'nobody'." in unknown.output
    assert browser.get("/").status_code == 200  # nothing changed
    signed_in_browser(app, "agent7")


def test_deactivate_user_ends_sessions_and_tokens_until_activated(
    app: Flask, make: Factory
) -> None:
    make.user("agent7", "agent")
    browser = signed_in_browser(app, "agent7")
    token = api_token(app.test_client(), "agent7")
    bearer = {"Authorization": f"Bearer {token}"}

    result = run(app, "deactivate-user", "agent7")
    assert result.exit_code == 0, result.output
    assert "Deactivated agent7; 1 session ended, API tokens refused." in result.output
    assert browser.get("/").status_code == 302
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 401
    assert sign_in(app.test_client(), "agent7").status_code == 401
    assert "agent7 is already deactivated." in run(app, "deactivate-user", "agent7").output

    result = run(app, "activate-user", "agent7")
    assert result.exit_code == 0, result.output
    assert "Activated agent7." in result.output
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 200
    assert browser.get("/").status_code == 302  # ended sessions stay ended
    signed_in_browser(app, "agent7")
    assert "agent7 is already active." in run(app, "activate-user", "agent7").output
    assert run(app, "activate-user", "nobody").exit_code != 0
    with app.app_context():
        actions = db.session.execute(
            select(AuditEvent.action, AuditEvent.actor, AuditEvent.detail)
            .where(AuditEvent.action.in_(["user.deactivated", "user.activated"]))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == [
        (
            "user.deactivated",
            "cli",
            {"before": {"active": True}, "after": {"active": False}, "sessions_ended": 1},
        ),
        (
            "user.activated",
            "cli",
            {"before": {"active": False}, "after": {"active": True}, "sessions_ended": 0},
        ),
    ]
