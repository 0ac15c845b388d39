"""The audit trail: who did what to which object, and when, written beside the change itself."""

from __future__ import annotations

from typing import Any

from service.extensions import db
from service.models import AuditEvent


def audit(
    actor: str, action: str, obj: Any, ref: str, comment: str | None = None, **detail: Any
) -> None:
    """Record who changed what, and why when there is a reason; `obj` is the object or, when
    there is none (a sign-in under an unknown username), its class. The caller commits."""
    kind = obj if isinstance(obj, type) else type(obj)
    db.session.add(
        AuditEvent(
            actor=actor,
            action=action,
            object_type=kind.__name__.lower(),
            object_ref=ref,
            detail=detail,
            comment=comment,
        )
    )
