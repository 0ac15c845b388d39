"""The vocabulary of LinkDesk, defined once.

Pure Python with no Flask or database imports, so the web app, the API schemas, the
templates, the Temporal workflows (through the sandbox pass-through) and the tests can all
import the same names.
"""

from __future__ import annotations

from enum import StrEnum


class ConsoleType(StrEnum):
    """The three kinds of console a firm can work from."""

    ACCOUNTANT = "accountant"
    PARTNER = "partner"
    MANAGEMENT = "management"


class Role(StrEnum):
    """What a LinkDesk user is allowed to do (PRODUCT §3)."""

    PARTNER = "partner"
    INSTANCE_ADMIN = "instance_admin"
    AGENT = "agent"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def sees_everything(self) -> bool:
        """Customer Service and administrators see every console and instance."""
        return self in (Role.AGENT, Role.MANAGER, Role.ADMIN)


class RequestKind(StrEnum):
    """The relationship changes a request can ask Customer Service for."""

    ENABLE_ACCESS = "enable_access"
    ESTABLISH_LINK = "establish_link"
    DISSOCIATE_LINK = "dissociate_link"

    @property
    def label(self) -> str:
        """A short human label for pages and notifications."""
        return _KIND_LABELS[self]


_KIND_LABELS = {
    RequestKind.ENABLE_ACCESS: "Enable access",
    RequestKind.ESTABLISH_LINK: "Establish link",
    RequestKind.DISSOCIATE_LINK: "Dissociate firm",
}


def missing_for_slide_in(access_enabled: bool, linked: bool) -> list[RequestKind]:
    """The request kinds that would let a console's users slide in, in the order to file them."""
    missing = []
    if not access_enabled:
        missing.append(RequestKind.ENABLE_ACCESS)
    if not linked:
        missing.append(RequestKind.ESTABLISH_LINK)
    return missing
