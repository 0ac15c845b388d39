"""Telling people: in-app notifications, and email through SMTP or the local outbox."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from temporalio import activity

from domain.vocabulary import Role
from service import mail
from service.extensions import db
from service.models import Notification, OutboxEmail, Request, User, user_instances
from workflows.activity_interfaces import NotificationInterface
from workflows.shared import Notify

# Agents hear of every new queue item in-app only: by email that would be a flood.
EMAIL_AUDIENCES = frozenset({"requester", "instance_admins", "managers", "user"})


class NotificationActivities(NotificationInterface):
    """Delivers request notifications; each runs in its own app context."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    @activity.defn(name="notify", no_thread_cancel_exception=True)
    def notify(self, notice: Notify) -> int:
        """Notify the audience of a request event; returns how many people were told.

        Deduplicated by (event key, person), so a retried activity tells no one twice.
        """
        with self.app.app_context():
            request = db.session.get(Request, notice.number)
            recipients = [
                u for u in self._audience(notice, request) if u.id != notice.exclude_user_id
            ]
            for user in recipients:
                self._deliver(notice, user)
            db.session.commit()  # everyone told in one write
            return len(recipients)

    def _audience(self, notice: Notify, request: Request | None) -> list[User]:
        query = select(User).where(User.active.is_(True))
        if notice.audience == "requester":
            if request is None:
                return []
            query = query.where(User.id == request.requester_id)
        elif notice.audience == "user":
            query = query.where(User.id == notice.user_id)
        elif notice.audience == "instance_admins":
            if request is None:
                return []
            query = query.join(user_instances).where(
                user_instances.c.instance_id == request.instance_id
            )
        elif notice.audience == "agents":
            query = query.where(User.role == Role.AGENT)
        elif notice.audience == "managers":
            query = query.where(User.role == Role.MANAGER)
        else:
            raise ValueError(f"unknown audience {notice.audience!r}")
        return list(db.session.execute(query).scalars())

    def _deliver(self, notice: Notify, user: User) -> None:
        try:
            with db.session.begin_nested():
                db.session.add(
                    Notification(
                        user_id=user.id,
                        request_id=notice.number,
                        dedupe_key=notice.dedupe_key,
                        event=notice.event,
                        message=notice.message,
                    )
                )
        except IntegrityError:
            return  # told already, on an earlier attempt
        if notice.audience in EMAIL_AUDIENCES and user.email and self._email(notice, user.email):
            db.session.commit()  # sent: a retry must not send it again

    def _email(self, notice: Notify, address: str) -> bool:
        """Queue an email in the outbox and send it when SMTP is set; whether it was sent."""
        config = self.app.config
        email = OutboxEmail(
            dedupe_key=notice.dedupe_key,
            recipient=address,
            subject=f"[LinkDesk] {notice.message[:200]}",
            body=f"{notice.message}\n\nOpen LinkDesk to see the request.\n",
        )
        db.session.add(email)
        return mail.deliver(config, email)
