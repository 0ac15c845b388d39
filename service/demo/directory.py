"""The demo directory and sign-ins that the embedded default writes on its first start."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from domain.vocabulary import ConsoleType, Role
from service import admin, config
from service.errors import Conflict
from service.extensions import db
from service.models import Console, Instance

DEMO_PASSWORD = "demo"
ACTOR = "demo-seed"

CONSOLES = (
    ("ACCT-01", "Ledgerline Accounting Partners", ConsoleType.ACCOUNTANT),
    ("VAR-01", "Northwind Implementation Services", ConsoleType.PARTNER),
    ("MGMT-01", "Harbor Holdings Group", ConsoleType.MANAGEMENT),
)

COMPANIES = (
    ("ACME-US", "Acme Manufacturing US"),
    ("ACME-CA", "Acme Manufacturing Canada"),
    ("BLUEFIN", "Bluefin Seafood Traders"),
    ("CEDAR-PARK", "Cedar Park Dental Group"),
    ("DELTA-LOG", "Delta Logistics"),
    ("EVERGREEN", "Evergreen Landscaping"),
    ("FALCON-AERO", "Falcon Aero Parts"),
    ("GRANITE", "Granite Construction Supply"),
    ("HARBOR-UK", "Harbor Holdings UK Ltd"),
    ("HARBOR-DE", "Harbor Holdings Deutschland GmbH"),
    ("HARBOR-FR", "Harbor Holdings France SAS"),
    ("HARBOR-AU", "Harbor Holdings Australia Pty"),
    ("HARBOR-JP", "Harbor Holdings Japan KK"),
    ("HARBOR-BR", "Harbor Holdings Brasil Ltda"),
    ("HARBOR-IN", "Harbor Holdings India Pvt"),
    ("HARBOR-MX", "Harbor Holdings Mexico SA"),
    ("IRONWOOD", "Ironwood Brewing Co"),
    ("JUNIPER", "Juniper Health Clinics"),
    ("KESTREL", "Kestrel Software Labs"),
    ("LUMEN", "Lumen Solar Installers"),
    ("MAPLE-ST", "Maple Street Bakery"),
    ("NIMBUS", "Nimbus Cloud Consulting"),
    ("ORCHARD", "Orchard Family Farms"),
    ("PINNACLE", "Pinnacle Fitness Studios"),
    ("QUARRY", "Quarry Stone Works"),
    ("RIVERBEND", "Riverbend Veterinary"),
    ("SUMMIT", "Summit Outdoor Gear"),
    ("TIDEWATER", "Tidewater Marine Services"),
)

# Per console: (access_enabled, linked) for eight of its companies, two of each combination.
COMBINATIONS = ((True, True), (True, False), (False, True), (False, False)) * 2
RELATED = {
    "ACCT-01": ("ACME-US", "ACME-CA", "BLUEFIN", "CEDAR-PARK", "DELTA-LOG", "EVERGREEN",
                "FALCON-AERO", "GRANITE"),
    "VAR-01": ("IRONWOOD", "JUNIPER", "KESTREL", "LUMEN", "MAPLE-ST", "NIMBUS", "ORCHARD",
               "ACME-US"),
    "MGMT-01": ("HARBOR-UK", "HARBOR-DE", "HARBOR-FR", "HARBOR-AU", "HARBOR-JP", "HARBOR-BR",
                "HARBOR-IN", "HARBOR-MX"),
}  # fmt: skip

USERS = (
    ("partner-acct", "Pat Accountant", Role.PARTNER, "ACCT-01"),
    ("partner-var", "Val Reseller", Role.PARTNER, "VAR-01"),
    ("partner-mgmt", "Morgan Controller", Role.PARTNER, "MGMT-01"),
    ("instance-admin", "Ines Admin", Role.INSTANCE_ADMIN, None),
    ("agent1", "Alex Agent", Role.AGENT, None),
    ("agent2", "Sam Agent", Role.AGENT, None),
    ("manager", "Maya Manager", Role.MANAGER, None),
    ("admin", "Ada Administrator", Role.ADMIN, None),
)


@dataclass(frozen=True)
class DemoSignIn:
    """A demo account, for printing at start-up."""

    username: str
    role: str
    scope: str


class DemoRefused(RuntimeError):
    """The demo seed would write into a database that is not the embedded default."""


def is_seeded() -> bool:
    """Whether the directory already has data (the seed runs on first start only)."""
    return db.session.execute(select(Console.id).limit(1)).first() is not None


def seed(*, allow_non_sqlite: bool = False) -> bool:
    """Write the demo directory and sign-ins once; returns False when data was already there."""
    if not config.is_sqlite(current_app.config["DATABASE_URL"]) and not allow_non_sqlite:
        raise DemoRefused(
            "Refusing to write demo data into a non-SQLite database: it would add demo "
            "sign-ins with the password 'demo'. Pass --allow-non-sqlite if you mean it."
        )
    if is_seeded():
        return False
    consoles = {
        code: admin.upsert_console(code, name, kind.value, ACTOR) for code, name, kind in CONSOLES
    }
    instances = {code: admin.upsert_instance(code, name, ACTOR) for code, name in COMPANIES}
    for console_code, companies in RELATED.items():
        for company, (access, linked) in zip(companies, COMBINATIONS, strict=True):
            admin.set_relationship(
                consoles[console_code],
                instances[company],
                access_enabled=access,
                linked=linked,
                actor=ACTOR,
            )
    for username, name, role, home_console in USERS:
        try:
            admin.create_user(
                username,
                role=role.value,
                password=DEMO_PASSWORD,
                actor=ACTOR,
                display_name=name,
                email=f"{username}@demo.linkdesk.test",
                console=consoles[home_console] if home_console else None,
                instances=instances.values() if role == Role.INSTANCE_ADMIN else (),
            )
        except Conflict:
            continue  # an operator created this name already; keep theirs
    db.session.commit()
    return True


def sign_ins() -> list[DemoSignIn]:
    """The demo sign-ins, with the scope each one sees."""
    count = db.session.execute(select(db.func.count(Instance.id))).scalar_one()
    scopes = {
        Role.PARTNER: "console {}",
        Role.INSTANCE_ADMIN: f"every demo instance ({count})",
    }
    return [
        DemoSignIn(username, role.value, scopes.get(role, "-").format(console_code or ""))
        for username, _name, role, console_code in USERS
    ]
