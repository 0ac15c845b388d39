"""E-mail: every message is kept in the outbox (`OutboxEmail`) and sent through SMTP when
`SMTP_HOST` is set; without it, it waits in the outbox, which the UI shows."""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from service.models import OutboxEmail, utcnow


def deliver(config: Mapping[str, Any], email: OutboxEmail) -> bool:
    """Send an outbox e-mail through SMTP when it is configured; whether it was sent (then
    `sent_at` is set). SMTP errors propagate: the caller decides what a failure means."""
    if not config["SMTP_HOST"]:
        return False
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message.set_content(email.body)
    with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=20) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
    email.sent_at = utcnow()
    return True
