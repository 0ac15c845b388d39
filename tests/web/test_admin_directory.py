"""The administrator's directory pages (service/web/admin_directory.py): in a real browser, an
admin overrides a relationship that an open request is about, confirming it; through the test
client, who may see the pages, refused forms and stale edits."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from service.extensions import db
from service.models import AuditEvent, Console, Instance, Relationship, format_request_id
from tests.conftest import Factory, csrf_token, sign_in, waiting_request
from tests.web.conftest import PHONE, Shoot, fits_width
from tests.web.conftest import sign_in as browser_sign_in

PAGE = "/admin/directory"


def _post(client: FlaskClient, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data=data | {"csrf_token": csrf_token(client, PAGE)})


def _flags(app: Flask, console: str, instance: str) -> tuple[bool, bool]:
    with app.app_context():
        row = db.session.execute(
            select(Relationship)
            .join(Relationship.console)
            .join(Relationship.instance)
            .where(Console.code == console, Instance.code == instance)
        ).scalar_one()
        return bool(row.access_enabled), bool(row.linked)


def _events(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(
            db.session.execute(
                select(AuditEvent).where(AuditEvent.action == action, AuditEvent.actor == "root")
            ).scalars()
        )


@pytest.fixture
def root(client: FlaskClient, demo_directory: Factory) -> FlaskClient:
    sign_in(client, "root")
    return client


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "boss"])
def test_other_roles_find_no_directory_pages(
    client: FlaskClient, demo_directory: Factory, username: str
) -> None:
    sign_in(client, username)
    assert client.get(PAGE).status_code == 404
    assert client.get(f"{PAGE}/console/1").status_code == 404
    assert client.post(f"{PAGE}/relationships", data={}).status_code in (400, 404)


def test_admin_home_links_the_directory_page(root: FlaskClient) -> None:
    assert f'href="{PAGE}"' in root.get("/admin").get_data(as_text=True)


def test_create_refusals_show_the_form_and_write_nothing(app: Flask, root: FlaskClient) -> None:
    with app.app_context():
        before = db.session.execute(select(func.count()).select_from(Console)).scalar_one()
    no_reason = _post(
        root,
        f"{PAGE}/consoles",
        {"form": "console", "code": "NEW-1", "name": "N", "type": "partner"},
    )
    assert no_reason.status_code == 422
    assert "Say why" in no_reason.get_data(as_text=True)
    taken = _post(
        root,
        f"{PAGE}/consoles",
        {"form": "console", "code": "acct-01", "name": "N", "type": "partner", "reason": "x"},
    )
    assert taken.status_code == 409 and "already a console" in taken.get_data(as_text=True)
    bad_type = _post(
        root,
        f"{PAGE}/consoles",
        {"form": "console", "code": "NEW-1", "name": "N", "type": "nope", "reason": "x"},
    )
    assert bad_type.status_code == 422
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Console)).scalar_one() == before
    made = _post(
        root,
        f"{PAGE}/instances",
        {"form": "instance", "code": "zeta", "name": "Zeta", "reason": "new client"},
    )
    assert made.status_code == 302
    assert _events(app, "instance.created")[0].comment == "new client"


def test_a_stale_edit_is_refused_with_the_current_values(app: Flask, root: FlaskClient) -> None:
    with app.app_context():
        console_id = db.session.execute(select(Console.id).filter_by(code="VAR-01")).scalar_one()
    url = f"{PAGE}/console/{console_id}"
    form = root.get(url).get_data(as_text=True)
    etag = re.search(r'name="etag" value="([^"]+)"', form)
    assert etag, form
    old = etag.group(1).replace("&#34;", '"')
    first = _post(root, url, {"etag": old, "name": "Var One", "type": "partner", "reason": "x"})
    assert first.status_code == 302
    stale = _post(root, url, {"etag": old, "name": "Var Two", "type": "partner", "reason": "x"})
    assert stale.status_code == 409
    page = stale.get_data(as_text=True)
    assert "changed by someone else" in page and "Var One" in page
    assert [e.detail["after"]["name"] for e in _events(app, "console.updated")] == ["Var One"]


def test_override_needs_a_reason_and_a_confirmation(app: Flask, root: FlaskClient) -> None:
    request = waiting_request(app)  # ACCT-01 / BETA, access on, link off
    data = {"form": "override", "console": "ACCT-01", "instance": "BETA", "access_enabled": "on"}
    data |= {"linked": "on"}
    assert _post(root, f"{PAGE}/relationships", data).status_code == 422
    asked = _post(root, f"{PAGE}/relationships", data | {"reason": "linked by phone"})
    assert asked.status_code == 409
    page = asked.get_data(as_text=True)
    assert format_request_id(request.id) in page and "Confirm the override" in page
    assert _flags(app, "ACCT-01", "BETA") == (True, False)
    done = _post(root, f"{PAGE}/relationships", data | {"reason": "linked", "confirm": "true"})
    assert done.status_code == 302
    assert _flags(app, "ACCT-01", "BETA") == (True, True)
    (event,) = _events(app, "relationship.set")
    assert event.comment == "Override: linked"
    assert event.detail["before"] == {"access_enabled": True, "linked": False}


@pytest.mark.browser
def test_admin_overrides_a_relationship_after_confirming(
    app: Flask, open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    request = waiting_request(app)
    for name, viewport in (("desktop", None), ("phone", PHONE)):
        page = open_page(viewport=viewport) if viewport else open_page()
        browser_sign_in(page, shoot, "root")
        page.goto("/admin")
        page.get_by_role("link", name=re.compile("^Edit the directory")).click()
        expect(page.get_by_role("heading", level=1, name="Directory")).to_be_visible()
        fits_width(page)
        shoot(page, f"{name}-directory")
        if name == "phone":
            continue
        page.get_by_label("Console code").fill("ACCT-01")
        page.get_by_label("Instance (company ID)").fill("BETA")
        page.get_by_label("Access enabled").check()
        page.get_by_label("Linked").check()
        page.get_by_role("button", name="Override").click()
        expect(page.locator("#reason-error")).to_be_visible()
        page.locator("#override-reason").fill("linked by phone with the client")
        page.get_by_role("button", name="Override").click()
        expect(page.get_by_role("alert")).to_contain_text(format_request_id(request.id))
        shoot(page, "desktop-confirm")
        assert _flags(app, "ACCT-01", "BETA") == (True, False)
        page.get_by_role("button", name="Confirm the override").click()
        expect(page.get_by_role("status")).to_contain_text("ACCT-01/BETA was overridden")
        shoot(page, "desktop-overridden")
        assert _flags(app, "ACCT-01", "BETA") == (True, True)


def _upload(client: FlaskClient, kind: str, text: str | bytes) -> Any:
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        f"{PAGE}/import",
        data={
            "csrf_token": csrf_token(client, PAGE),
            "kind": kind,
            "file": (io.BytesIO(data), "d.csv"),
        },
        content_type="multipart/form-data",
    )


def _rows(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<td class="number">(\d+)</td><td>(\w+)</td>', page)


def test_import_previews_every_line_then_applies_all(app: Flask, root: FlaskClient) -> None:
    text = (
        "code,name,type\nACCT-01,ACCT-01 firm,accountant\nVAR-01,Renamed,partner\n"
        "NEW-9,New,partner\n"
    )
    preview = _upload(root, "consoles", text)
    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert _rows(page) == [("2", "unchanged"), ("3", "update"), ("4", "create")]
    with app.app_context():  # the preview wrote nothing
        assert db.session.execute(select(Console).filter_by(code="NEW-9")).first() is None
    assert not _events(app, "console.created")
    applied = _post(root, f"{PAGE}/import/apply", {"kind": "consoles", "text": text})
    assert applied.status_code == 302
    with app.app_context():
        assert (
            db.session.execute(select(Console.name).filter_by(code="VAR-01")).scalar_one()
            == "Renamed"
        )
        assert db.session.execute(select(Console).filter_by(code="NEW-9")).first() is not None


def test_import_with_an_error_line_imports_nothing(app: Flask, root: FlaskClient) -> None:
    text = "console,instance,access_enabled,linked\nACCT-01,OMEGA,yes,no\nACCT-01,NOPE,yes,yes\n"
    preview = _upload(root, "relationships", text)
    page = preview.get_data(as_text=True)
    assert _rows(page) == [("2", "create"), ("3", "error")]
    assert "Unknown instance" in page and "Import all" not in page
    refused = _post(root, f"{PAGE}/import/apply", {"kind": "relationships", "text": text})
    assert refused.status_code == 422 and "line 3" in refused.get_data(as_text=True)
    with app.app_context():
        pairs = db.session.execute(
            select(func.count())
            .select_from(Relationship)
            .join(Relationship.instance)
            .where(Instance.code == "OMEGA")
        ).scalar_one()
        assert pairs == 0
    for bad, message in (
        ("code,name\n", "Missing column"),
        (b"\xff\xfe", "not UTF-8"),
    ):
        answer = _upload(root, "consoles", bad)
        assert answer.status_code == 422 and message in answer.get_data(as_text=True)
    assert _upload(root, "users", "x").status_code == 422


@pytest.mark.browser
def test_import_preview_fits_a_desktop_and_a_phone(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    text = b"code,name\nOMEGA,Omega Ltd\nZETA,Zeta\nBETA,BETA Inc\n!!,Bad\n"
    for name, page in (("desktop", open_page()), ("phone", open_page(viewport=PHONE))):
        browser_sign_in(page, shoot, "root")
        page.goto(PAGE)
        page.get_by_role("link", name="import a CSV file").click()
        page.get_by_label("The file holds").select_option("instances")
        upload = {"name": "instances.csv", "mimeType": "text/csv", "buffer": text}
        page.get_by_label("CSV file").set_input_files(upload)  # type: ignore[arg-type]
        page.get_by_role("button", name="Preview").click()
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(4)
        expect(rows.nth(0)).to_contain_text("update")
        expect(rows.nth(1)).to_contain_text("create")
        expect(rows.nth(2)).to_contain_text("unchanged")
        expect(rows.nth(3)).to_contain_text("error")
        expect(page.get_by_role("button", name=re.compile("^Import all"))).to_have_count(0)
        fits_width(page)
        shoot(page, f"{name}-preview")
