"""The administrator's directory pages: create and edit consoles and instances, and override
a relationship's flags with a reason, confirmed when open requests are about the pair (all
through `service.directory_admin`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from domain.vocabulary import ConsoleType, Role
from service import admin, auth, directory, directory_admin
from service.errors import Invalid, ServiceError
from service.models import Console, Instance, format_request_id
from service.web.forms import (
    EditConsoleForm,
    EditInstanceForm,
    NewConsoleForm,
    NewInstanceForm,
    OverrideForm,
    load_form,
    refusals_shown_on,
)

bp = Blueprint("admin_directory", __name__, url_prefix="/admin/directory")
admins_only = auth.roles_required(Role.ADMIN)
PER_PAGE = 100


def _index_page(problem: ServiceError | None = None, form_name: str = "") -> str:
    """The directory page; after a refused form, that form with the typed values and the
    message (and, for an override that open requests are about, the confirmation step)."""
    user = auth.signed_in_user()
    page = request.args.get("page", "1")
    number = int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1
    refused = form_name or request.form.get("form", "")
    return render_template(
        "admin_directory/index.html",
        consoles=directory.paginate(directory.visible_consoles(user), number, PER_PAGE),
        instances=directory.paginate(directory.visible_instances(user), number, PER_PAGE),
        console_types=list(ConsoleType),
        refused=refused if problem else "",
        form=request.form if problem else {},
        errors=(problem.fields or {}) if problem else {},
        message=problem.message if problem else None,
        open_requests=[format_request_id(n) for n in getattr(problem, "requests", [])],
    )


@bp.get("")
@admins_only
def index() -> str:
    """Consoles and instances with their edit links, and the forms to add and override."""
    return _index_page()


@bp.post("/consoles")
@admins_only
@refusals_shown_on(_index_page)
def create_console() -> Response:
    """Create a console."""
    form = load_form(NewConsoleForm())
    console = directory_admin.create_console(
        auth.signed_in_user(), form["code"], form["name"], form["type"], form["reason"]
    )
    flash(f"Console {console.code} was created.")
    return redirect(url_for("admin_directory.index"))


@bp.post("/instances")
@admins_only
@refusals_shown_on(_index_page)
def create_instance() -> Response:
    """Create an instance."""
    form = load_form(NewInstanceForm())
    instance = directory_admin.create_instance(
        auth.signed_in_user(), form["code"], form["name"], form["reason"]
    )
    flash(f"Instance {instance.code} was created.")
    return redirect(url_for("admin_directory.index"))


@bp.post("/relationships")
@admins_only
@refusals_shown_on(_index_page)
def override_relationship() -> Response:
    """Override a relationship's flags; open requests about it need a confirmation."""
    form = load_form(OverrideForm())
    actor = auth.signed_in_user()
    console = directory.resolve_console(actor, form["console"], "console")
    instance = directory.resolve_instance(actor, form["instance"], "instance")
    directory_admin.override_relationship(
        actor,
        console,
        instance,
        access_enabled=form["access_enabled"],
        linked=form["linked"],
        reason=form["reason"],
        confirm=form["confirm"],
    )
    flash(f"The relationship {console.code}/{instance.code} was overridden.")
    return redirect(url_for("web.relationships", console=console.code, instance=instance.code))


def _edit_page(
    problem: ServiceError | None = None, kind: str = "console", entry_id: int = 0
) -> str:
    entry: Console | Instance = (
        directory_admin.get_console(entry_id)
        if kind == "console"
        else directory_admin.get_instance(entry_id)
    )
    stale = isinstance(problem, directory_admin.StaleEntry)
    return render_template(
        "admin_directory/edit.html",
        kind=kind,
        entry=entry,
        console_types=list(ConsoleType),
        form=request.form if problem and not stale else _values(entry),
        typed=request.form if stale else None,
        errors=(problem.fields or {}) if problem else {},
        message=problem.message if problem else None,
    )


def _values(entry: Console | Instance) -> dict[str, Any]:
    return directory_admin.values(entry) | {"etag": directory_admin.etag(entry)}


@bp.get("/<any(console,instance):kind>/<int:entry_id>")
@admins_only
def edit(kind: str, entry_id: int) -> str:
    """The form to edit a console or an instance."""
    return _edit_page(kind=kind, entry_id=entry_id)


@bp.post("/<any(console,instance):kind>/<int:entry_id>")
@admins_only
@refusals_shown_on(_edit_page)
def update(kind: str, entry_id: int) -> Response:
    """Save a console's or an instance's name (and a console's type), refused if it changed
    since the form was loaded."""
    actor = auth.signed_in_user()
    if kind == "console":
        console = directory_admin.get_console(entry_id)
        form = load_form(EditConsoleForm())
        changes = {"name": form["name"], "type": form["type"]}
        directory_admin.update_console(actor, console, form["etag"], changes, form["reason"])
        code = console.code
    else:
        instance = directory_admin.get_instance(entry_id)
        form = load_form(EditInstanceForm())
        changes = {"name": form["name"]}
        directory_admin.update_instance(actor, instance, form["etag"], changes, form["reason"])
        code = instance.code
    flash(f"{code} was saved.")
    return redirect(url_for("admin_directory.edit", kind=kind, entry_id=entry_id))


# CSV import ----------------------------------------------------------------------------------

KINDS = ("consoles", "instances", "relationships")


def _import_page(problem: ServiceError | None = None, **shown: Any) -> str:
    return render_template(
        "admin_directory/import.html",
        kinds=KINDS,
        columns=admin.CSV_COLUMNS,
        kind=request.form.get("kind", "consoles"),
        errors=(problem.fields or {}) if problem else {},
        message=problem.message if problem else None,
        **shown,
    )


def _kind() -> str:
    kind = request.form.get("kind", "")
    if kind not in KINDS:
        raise Invalid("Choose what the file holds.", fields={"kind": [", ".join(KINDS)]})
    return kind


@bp.get("/import")
@admins_only
def import_form() -> str:
    """The form to upload a CSV file of consoles, instances or relationships."""
    return _import_page()


@bp.post("/import")
@admins_only
@refusals_shown_on(_import_page)
def import_preview() -> str:
    """What importing the uploaded file would do, line by line; nothing is written yet."""
    kind = _kind()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Invalid("Choose a CSV file.", fields={"file": ["Required."]})
    data = upload.read(directory_admin.MAX_CSV_BYTES + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid(
            "The file is not UTF-8 text.", fields={"file": ["Save it as CSV UTF-8."]}
        ) from None
    rows = directory_admin.preview_csv(auth.signed_in_user(), kind, text)
    return _import_page(rows=rows, text=text, has_errors=any(r.action == "error" for r in rows))


@bp.post("/import/apply")
@admins_only
@refusals_shown_on(_import_page)
def import_apply() -> Response:
    """Import the previewed file, all or nothing."""
    kind = _kind()
    count = directory_admin.import_csv(auth.signed_in_user(), kind, request.form.get("text", ""))
    flash(f"{count} row(s) of {kind} were imported.")
    return redirect(url_for("admin_directory.index"))
