"""The admin console's pages: the admin home with its counts, and the audit log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from werkzeug.wrappers import Response

from domain.vocabulary import Role
from service import audit as trail
from service import auth, overview
from service.errors import Invalid
from service.exports import csv_download
from service.models import AuditEvent
from service.web.forms import AuditFilterForm, load_form

bp = Blueprint("admin", __name__, url_prefix="/admin")
# The users admin page, where the app has it: audit events of a user link there.
USERS_PAGE = "admin_users.index"
# The directory pages the admin home links to, where the app has them: (endpoint, label).
DIRECTORY_PAGES = (
    ("admin_directory.index", "Edit the directory (consoles, instances, relationship overrides)"),
    ("web.consoles", "Consoles"),
    ("web.instances", "Instances (companies)"),
    ("web.relationships", "Relationships"),
)


def link_if_page(endpoint: str, **values: Any) -> str | None:
    """The address of a page of the app, or None when the app has no such page (one that
    another part of the admin console brings may not be there yet)."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


@bp.app_template_global()
def audit_object_link(event: AuditEvent) -> str | None:
    """The page of an audit event's object, where there is one."""
    ref = event.object_ref
    if event.object_type == "request":
        return link_if_page("request_pages.show", public_id=ref)
    if event.object_type == "user":
        return link_if_page(USERS_PAGE, q=ref)
    if event.object_type in ("console", "instance"):
        return link_if_page("web.relationships", **{event.object_type: ref})
    if event.object_type == "relationship" and "/" in ref:
        console, _, instance = ref.partition("/")
        return link_if_page("web.relationships", console=console, instance=instance)
    return None


@bp.get("")
@auth.roles_required(Role.ADMIN)
def home() -> str:
    """The admin home: what the directory and the user base hold, and the admin pages."""
    pages = [(url, label) for endpoint, label in DIRECTORY_PAGES if (url := link_if_page(endpoint))]
    return render_template(
        "admin/home.html",
        counts=overview.overview(),
        users_page=link_if_page(USERS_PAGE),
        directory_pages=pages,
    )


def _filter_args() -> dict[str, str]:
    """The filters typed in the page's form, as they were typed, without the cursor."""
    return {key: value for key, value in request.args.items() if key != "cursor" and value}


@bp.get("/audit")
@auth.roles_required(Role.ADMIN)
def audit() -> str | tuple[str, int]:
    """The audit log, filtered, newest first, a page at a time (by cursor)."""
    typed = _filter_args()
    try:
        form = load_form(AuditFilterForm(), request.args)
        cursor = trail.Cursor.parse(form["cursor"]) if "cursor" in form else None
        found = trail.page(trail.AuditFilters.from_args(form), cursor, form["per_page"])
    except Invalid as exc:
        page = render_template(
            "admin/audit.html",
            found=None,
            form=typed,
            errors=exc.fields,
            message=exc.message,
            object_types=trail.OBJECT_TYPES,
        )
        return page, exc.status
    return render_template(
        "admin/audit.html",
        found=found,
        form=typed,
        errors={},
        later_page="cursor" in form,
        object_types=trail.OBJECT_TYPES,
    )


@bp.get("/audit.csv")
@auth.roles_required(Role.ADMIN)
def audit_csv() -> Response | tuple[str, int]:
    """Every event the audit log's filters select, newest first, as a streamed CSV file."""
    try:
        filters = trail.AuditFilters.from_args(load_form(AuditFilterForm(), request.args))
    except Invalid as exc:
        page = render_template(
            "admin/audit.html",
            found=None,
            form=_filter_args(),
            errors=exc.fields,
            message=exc.message,
            object_types=trail.OBJECT_TYPES,
        )
        return page, exc.status
    return csv_download(trail.export_rows(filters), trail.export_name(filters))
