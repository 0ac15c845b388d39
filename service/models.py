"""The directory (consoles, instances, relationships), users, tokens and the audit trail."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from domain.durations import MEASURE_COLUMNS, bucket_column, duration_bucket
from domain.kinds import missing_for_slide_in
from domain.sla import SlaState, SlaTarget
from domain.vocabulary import ConsoleType, RequestKind, RequestStatus, Role, TaskState, TaskType
from service.extensions import MAX_ID, Model, db
from service.user_agents import describe_user_agent


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use service.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _enum(enum_cls: type[Any], name: str) -> Enum:
    """A portable enum column storing the member values (a CHECK constraint on SQLite)."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Console(Model):
    """A firm's workspace, from which its users slide in to instances."""

    __tablename__ = "consoles"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[ConsoleType] = mapped_column(_enum(ConsoleType, "console_type"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Removed from the directory; kept so the requests that name it keep their history.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Instance(Model):
    """A company (client or entity), identified by its company ID."""

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Relationship(Model):
    """The bilateral relationship of one console and one instance: two separate flags."""

    __tablename__ = "relationships"
    __table_args__ = (
        UniqueConstraint("console_id", "instance_id"),
        Index("ix_relationships_instance_id", "instance_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    console_id: Mapped[int] = mapped_column(ForeignKey("consoles.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    access_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    linked: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    console: Mapped[Console] = relationship(lazy="joined")
    instance: Mapped[Instance] = relationship(lazy="joined")

    @property
    def can_slide_in(self) -> bool:
        """Console users slide in exactly when access is enabled and the link exists."""
        return bool(self.access_enabled and self.linked)

    @property
    def missing(self) -> list[RequestKind]:
        """The request kinds that would make sliding in possible."""
        return missing_for_slide_in(bool(self.access_enabled), bool(self.linked))


user_instances = Table(
    "user_instances",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("instance_id", ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, Model):
    """A person who signs in to LinkDesk, with one role and that role's scope."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # Stored lower-case (`normalise_email`): single sign-on finds a person by it.
    email: Mapped[str | None] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    console_id: Mapped[int | None] = mapped_column(ForeignKey("consoles.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Counts the row's changes: an edit made from an older version is refused (409), and two
    # writers racing on the same version cannot both land (SQLAlchemy's version counter).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    console: Mapped[Console | None] = relationship(lazy="joined")
    instances: Mapped[list[Instance]] = relationship(
        secondary=user_instances, order_by="Instance.code"
    )

    # Bumped by each administrator's change (`service.users`, `service.admin.set_active`);
    # every UPDATE of the row checks it is still the version read.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    second_factor: Mapped[SecondFactor | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_active(self) -> bool:  # Flask-Login reads this to refuse disabled accounts
        return bool(self.active)

    @property
    def has_second_factor(self) -> bool:
        """Whether signing in takes a code from an authenticator app after the password."""
        return self.second_factor is not None and self.second_factor.enabled_at is not None


def normalise_email(email: str | None) -> str | None:
    """An e-mail address as users store it: trimmed and lower-case, or None when blank."""
    return (email or "").strip().lower() or None


class SecondFactor(Model):
    """A user's authenticator app (TOTP): its secret, encrypted, and the last time step used.

    Enrolment stores the secret first; `enabled_at` is set once the person confirms a code.
    """

    __tablename__ = "second_factors"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(Text)  # a Fernet token (service.mfa)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The time step of the last code accepted: a code is good once.
    last_step: Mapped[int | None] = mapped_column(BigInteger)

    user: Mapped[User] = relationship(back_populates="second_factor")


class RecoveryCode(Model):
    """A single-use code that stands in for the authenticator app; only its digest is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Model):
    """A personal API token; only its SHA-256 digest is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    def usable_at(self, when: datetime) -> bool:
        """Whether the token authenticates at the given time."""
        return self.revoked_at is None and self.expires_at > when


class PasswordLink(Model):
    """A one-time link that lets its holder choose a new password for one user: sent by
    e-mail, good once and until `expires_at`; only the SHA-256 digest of its secret is kept."""

    __tablename__ = "password_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The address it was sent to (throttling counts links per address) and who asked for it.
    email: Mapped[str] = mapped_column(String(254), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    def usable_at(self, when: datetime) -> bool:
        """Whether the link still lets its holder choose a password."""
        return self.used_at is None and self.expires_at > when


class UserSession(Model):
    """A signed-in browser: the session cookie names it by a random secret whose SHA-256
    digest alone is stored, and every request checks it, so ending it here signs that browser
    out at once, wherever its cookie has been copied to."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    remote_addr: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(256))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it ended: one of `service.auth.SessionEnd`.
    end_reason: Mapped[str | None] = mapped_column(String(32))

    user: Mapped[User] = relationship()

    @property
    def device(self) -> str:
        """The browser and system, in a few words."""
        return describe_user_agent(self.user_agent)


class LoginAttempt(Model):
    """One sign-in attempt, kept to throttle guessing across every web process."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_remote_addr_at", "remote_addr", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    remote_addr: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Model):
    """Who did what to which object, and when: directory and user changes, sign-ins,
    sessions, second factors, API tokens and request decisions."""

    __tablename__ = "audit_events"
    # The audit log reads newest first by (at, id), paged by that key: one index per filter
    # (actor, action, object type, object type and reference) leads with it and then holds
    # that order, so a page is a short index range scan whatever the table's size.
    __table_args__ = (
        Index("ix_audit_events_at_id", "at", "id"),
        Index("ix_audit_events_actor_at_id", "actor", "at", "id"),
        Index("ix_audit_events_action_at_id", "action", "at", "id"),
        Index("ix_audit_events_object_type_at_id", "object_type", "at", "id"),
        Index("ix_audit_events_object_type_ref_at_id", "object_type", "object_ref", "at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_ref: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comment: Mapped[str | None] = mapped_column(Text)


class AppliedChange(Model):
    """The marker that a request's directory change was applied: at most one per request."""

    __tablename__ = "applied_changes"

    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"))
    relationship_id: Mapped[int] = mapped_column(ForeignKey("relationships.id", ondelete="CASCADE"))
    access_enabled: Mapped[bool] = mapped_column(Boolean)
    linked: Mapped[bool] = mapped_column(Boolean)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApprovalPolicy(Model):
    """The human steps a request goes through, by kind and console type (data, not code)."""

    __tablename__ = "approval_policies"

    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"), primary_key=True)
    console_type: Mapped[ConsoleType] = mapped_column(
        _enum(ConsoleType, "console_type"), primary_key=True
    )
    steps: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SlaTargetSetting(Model):
    """First-response and resolution targets of a request kind, in business hours."""

    __tablename__ = "sla_targets"

    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"), primary_key=True)
    first_response_hours: Mapped[float] = mapped_column(Float)
    resolution_hours: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def target(self) -> SlaTarget:
        """The targets as the domain checks and uses them."""
        return SlaTarget(self.first_response_hours, self.resolution_hours)


class Request(Model):
    """The projection of one request's workflow: kept current by the workflow itself."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_console_status", "console_id", "status"),
        Index("ix_requests_instance_status", "instance_id", "status"),
        Index("ix_requests_status_created", "status", "created_at"),
        Index("ix_requests_created_at", "created_at"),
        # Open requests only (a few hundred among millions ended): the backlog reads this
        # small index alone, whatever the planner's statistics say of `open_key`.
        Index(
            "ix_requests_open",
            "kind",
            "status",
            "sla_state",
            "created_at",
            "console_id",
            sqlite_where=text("open_key IS NOT NULL"),
            postgresql_where=text("open_key IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},  # an ID is never reused, so neither is a workflow ID
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"))
    console_id: Mapped[int] = mapped_column(ForeignKey("consoles.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus, "request_status"))
    # "kind:console:instance" while open, NULL once terminal: one open request per triple.
    open_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    steps: Mapped[list[str]] = mapped_column(JSON)
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_state: Mapped[SlaState] = mapped_column(_enum(SlaState, "sla_state"), default=SlaState.OK)
    customer_wait_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    projected_seq: Mapped[int] = mapped_column(Integer, default=0)

    console: Mapped[Console] = relationship(lazy="joined")
    instance: Mapped[Instance] = relationship(lazy="joined")
    requester: Mapped[User] = relationship(lazy="joined")

    @property
    def public_id(self) -> str:
        """The ID people and the API use, e.g. REQ-000123."""
        return format_request_id(self.id)

    @property
    def workflow_id(self) -> str:
        """The Temporal workflow ID, derived from the request ID so a retry never forks."""
        return workflow_id_for(self.public_id)


def format_request_id(number: int) -> str:
    """REQ-000123 for request number 123."""
    return f"REQ-{number:06d}"


def is_numeral(text: str) -> bool:
    """Whether text is ASCII digits only: `str.isdigit` also takes superscripts and other
    scripts' digits (`²`, a full-width one), which `int` refuses or reads as a number the
    client never wrote, so none of them is taken for an ID."""
    return text.isascii() and text.isdigit()


def parse_id(text: str) -> int | None:
    """The numeric ID written in text (ASCII digits), or None when it is not one that can
    exist (not a numeral, zero or past `MAX_ID`)."""
    if not is_numeral(text) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def parse_request_id(public_id: str) -> int | None:
    """The request number of a public ID, or None when it is not one that can exist."""
    prefix, _, digits = public_id.strip().upper().partition("-")
    return parse_id(digits) if prefix == "REQ" else None


def workflow_id_for(public_id: str) -> str:
    """The workflow ID of a request."""
    return f"linkdesk-request-{public_id}"


class Task(Model):
    """A human step of a request, shown in a queue (projection of the workflow's tasks)."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("request_id", "key"),
        # Covering the queue's count: an agent's queue leaves out what they may not approve.
        Index("ix_tasks_state_type", "state", "type", "excluded_user_id"),
        Index("ix_tasks_assignee_state", "assignee_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    key: Mapped[int] = mapped_column(Integer)  # the task's number inside its workflow
    type: Mapped[TaskType] = mapped_column(_enum(TaskType, "task_type"))
    state: Mapped[TaskState] = mapped_column(_enum(TaskState, "task_state"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    excluded_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)

    request: Mapped[Request] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")


class TimelineEvent(Model):
    """One entry of a request's timeline: who did what, when, with what comment."""

    __tablename__ = "timeline_events"
    __table_args__ = (
        UniqueConstraint("request_id", "seq"),
        Index("ix_timeline_events_request_at", "request_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    seq: Mapped[int | None] = mapped_column(Integer)  # workflow events; NULL for comments
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    comment: Mapped[str | None] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str | None] = mapped_column(String(32))  # the status after the event


class StatusPeriod(Model):
    """How long a request spent in each status (for turnaround figures)."""

    __tablename__ = "status_periods"
    __table_args__ = (Index("ix_status_periods_request", "request_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus, "request_status"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds: Mapped[float | None] = mapped_column(Float)


def _duration_index(column: str) -> Index:
    bucket = bucket_column(column)
    index = Index(
        f"ix_request_figures_{bucket}",
        bucket,
        "created_at",
        column,
        "kind",
        "console_type",
        "agent_id",
        sqlite_where=text(f"{bucket} IS NOT NULL"),
        postgresql_where=text(f"{bucket} IS NOT NULL"),
    )
    return index


class RequestFigures(Model):
    """A request's turnaround figures for the managers' dashboard, one narrow row per request.

    Kept by the projection as the request moves (durations stored when they become known),
    so the dashboard aggregates one small table and never walks timelines. "Business" figures
    run on the request's SLA calendar with customer waits taken out (the SLA clock); the
    customer wait's own business figure is the business time spent waiting. `sla_met` is
    set for requests Customer Service resolved (completed, rejected, failed) and NULL
    otherwise, so attainment never counts a request the customer cancelled or let expire.
    """

    __tablename__ = "request_figures"
    __table_args__ = (
        # Covering: a date range's figures are read from the index alone, in filing order.
        Index(
            "ix_request_figures_created",
            "created_at",
            "kind",
            "console_type",
            "agent_id",
            "resolved_at",
            "sla_met",
            *MEASURE_COLUMNS,
        ),
        Index("ix_request_figures_resolved", "resolved_at", "kind", "console_type", "agent_id"),
        Index("ix_request_figures_agent_created", "agent_id", "created_at"),
        *(_duration_index(column) for column in MEASURE_COLUMNS),
    )

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"))
    console_type: Mapped[ConsoleType] = mapped_column(_enum(ConsoleType, "console_type"))
    outcome: Mapped[RequestStatus | None] = mapped_column(_enum(RequestStatus, "request_status"))
    # The agent who first took the request up (claimed or decided its review).
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_response_seconds: Mapped[float | None] = mapped_column(Float)
    first_response_business_seconds: Mapped[float | None] = mapped_column(Float)
    resolution_seconds: Mapped[float | None] = mapped_column(Float)
    resolution_business_seconds: Mapped[float | None] = mapped_column(Float)
    customer_wait_seconds: Mapped[float | None] = mapped_column(Float)
    customer_wait_business_seconds: Mapped[float | None] = mapped_column(Float)
    sla_met: Mapped[bool | None] = mapped_column(Boolean)
    # Each duration's bucket (domain.durations.duration_bucket), set with the duration.
    first_response_bucket: Mapped[int | None] = mapped_column(SmallInteger)
    first_response_business_bucket: Mapped[int | None] = mapped_column(SmallInteger)
    resolution_bucket: Mapped[int | None] = mapped_column(SmallInteger)
    resolution_business_bucket: Mapped[int | None] = mapped_column(SmallInteger)
    customer_wait_bucket: Mapped[int | None] = mapped_column(SmallInteger)
    customer_wait_business_bucket: Mapped[int | None] = mapped_column(SmallInteger)

    @validates(*MEASURE_COLUMNS)
    def _set_bucket(self, key: str, seconds: float | None) -> float | None:
        setattr(self, bucket_column(key), duration_bucket(seconds))
        return seconds


class FigureRollup(Model):
    """Weekly tallies of `request_figures` (see service.metrics.rollups): how many requests filed in
    a UTC week, of a kind and console type, have a figure in a bucket."""

    __tablename__ = "figure_rollups"
    __table_args__ = {"sqlite_with_rowid": False}  # stored in key order: a range is one read

    figure: Mapped[str] = mapped_column(String(40), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)  # the Monday starting it
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"), primary_key=True)
    console_type: Mapped[ConsoleType] = mapped_column(
        _enum(ConsoleType, "console_type"), primary_key=True
    )
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class AgentRollup(Model):
    """The same weekly tallies by agent (the one who first took the request up; 0 for none)
    instead of kind and console type, for the figures per agent and of one agent."""

    __tablename__ = "agent_rollups"
    __table_args__ = {"sqlite_with_rowid": False}

    figure: Mapped[str] = mapped_column(String(40), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    agent_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class Notification(Model):
    """An in-app notification for one user."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("dedupe_key", "user_id"),
        Index("ix_notifications_user_read", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(120))
    event: Mapped[str] = mapped_column(String(48))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxEmail(Model):
    """An email LinkDesk sent, or would have sent had SMTP been configured."""

    __tablename__ = "outbox_emails"
    __table_args__ = (UniqueConstraint("dedupe_key", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(120))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(Model):
    """A client's `Idempotency-Key` for one unsafe call, and the final answer it got.

    While `status` is NULL the call is in flight; once set, a retry with the same key and the
    same body is answered with what is stored here instead of acting again. Kept 24 hours.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, the address and the body: the same key with another call is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[int | None] = mapped_column(SmallInteger)
    content_type: Mapped[str | None] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The request this call filed, written in the filing's own transaction: a retry that takes
    # the key over from a process that died before storing the answer gets that request.
    made_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL")
    )
