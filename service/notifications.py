"""A user's in-app notifications: list, unread count, mark read."""

from __future__ import annotations

from sqlalchemy import func, select, update

from service.directory import Page, paginate
from service.errors import NotFound
from service.extensions import db
from service.models import Notification, OutboxEmail, User, utcnow


def list_notifications(user: User, unread_only: bool, page: int, per_page: int) -> Page:
    """The user's notifications, newest first."""
    query = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    return paginate(query, page, per_page)


def unread_count(user: User) -> int:
    """How many notifications the user has not read."""
    return int(
        db.session.execute(
            select(func.count()).where(
                Notification.user_id == user.id, Notification.read_at.is_(None)
            )
        ).scalar_one()
    )


def mark_read(user: User, notification_id: int | None = None) -> int:
    """Mark one notification (or all, with no ID) as read; returns how many changed."""
    query = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        found = db.session.get(Notification, notification_id)
        if found is None or found.user_id != user.id:
            raise NotFound(f"No notification {notification_id}.")
        query = query.where(Notification.id == notification_id)
    changed = db.session.execute(query.values(read_at=utcnow())).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    return int(changed or 0)


def list_outbox(page: int, per_page: int) -> Page:
    """Emails LinkDesk sent or holds in its local outbox, newest first."""
    query = select(OutboxEmail).order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
    return paginate(query, page, per_page)
