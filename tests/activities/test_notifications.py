"""Notifications: in-app rows and email through a real SMTP server the test starts."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from service.extensions import db
from service.models import Notification, OutboxEmail
from tests.conftest import Factory, Inbox, waiting_request
from workflows.shared import Notify


def test_email_goes_through_smtp_once_per_person_and_event(
    make_app: Any, app: Flask, demo_directory: Factory, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    number = waiting_request(app).id
    mailer = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    notice = Notify(number, "status:in_review", "REQ: in review", "requester", "REQ:7:status")
    activities = NotificationActivities(mailer)
    assert ActivityEnvironment().run(activities.notify, notice) == 1
    assert ActivityEnvironment().run(activities.notify, notice) == 1  # a retry
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "pacct@example.test"
    assert message["Subject"] == "[LinkDesk] REQ: in review"
    with app.app_context():
        rows = db.session.execute(select(Notification)).scalars().all()
        sent = db.session.execute(select(OutboxEmail)).scalars().all()
    assert [(n.event, n.read_at) for n in rows] == [("status:in_review", None)]
    assert len(sent) == 1 and sent[0].sent_at is not None


def test_agents_hear_of_new_items_in_app_only(app: Flask, demo_directory: Factory) -> None:
    demo_directory.user("agent2", "agent")
    number = waiting_request(app).id
    notice = Notify(number, "queued", "new item", "agents", "REQ:1:queued", exclude_user_id=None)
    assert ActivityEnvironment().run(NotificationActivities(app).notify, notice) == 2
    with app.app_context():
        assert db.session.execute(select(OutboxEmail)).first() is None
