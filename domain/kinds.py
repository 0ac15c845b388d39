"""What each request kind does, in one table: every rule about a kind is derived from it.

A kind sets some of a relationship's two flags (`access_enabled`, `linked`) and leaves the
others alone. From that follow when its effect already holds (nothing to do), which kinds let
a console's users slide in to a company's books, and the texts that say so; the default
approval steps and SLA targets that new databases are seeded with live here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.sla import SlaTarget
from domain.vocabulary import ConsoleType, RequestKind, Step


@dataclass(frozen=True)
class KindRule:
    """What a request kind changes, and how LinkDesk speaks of it."""

    kind: RequestKind
    # The flags after the change; None leaves that flag as it is.
    access_enabled: bool | None
    linked: bool | None
    # "Done: {effect}." once applied; "... {effect} already." when nothing was needed.
    effect: str
    # "No request needed: ..., {already}." when the change is refused at filing.
    already: str
    default_steps: tuple[Step, ...]
    default_sla: SlaTarget

    def target(self, access_enabled: bool, linked: bool) -> tuple[bool, bool]:
        """The relationship's flags once this kind's change is applied to the current ones."""
        return (
            access_enabled if self.access_enabled is None else self.access_enabled,
            linked if self.linked is None else self.linked,
        )

    def holds(self, access_enabled: bool, linked: bool) -> bool:
        """Whether the change is already in place, so a request of this kind changes nothing."""
        return self.target(access_enabled, linked) == (access_enabled, linked)

    @property
    def grants_slide_in(self) -> bool:
        """The change only gives (sets flags true): a step towards users sliding in."""
        return self.access_enabled is not False and self.linked is not False

    @property
    def done_text(self) -> str:
        """The outcome of a request of this kind that was applied."""
        return f"Done: {self.effect}."

    def no_action_text(self, console_code: str, instance_code: str) -> str:
        """The outcome of a request of this kind whose change already held."""
        return f"No action needed: for {console_code} and {instance_code}, {self.effect} already."


KINDS: dict[RequestKind, KindRule] = {
    rule.kind: rule
    for rule in (
        KindRule(
            RequestKind.ENABLE_ACCESS,
            access_enabled=True,
            linked=None,
            effect="access is enabled",
            already="access is already enabled",
            default_steps=(Step.CONSENT, Step.REVIEW),
            default_sla=SlaTarget(first_response_hours=4.0, resolution_hours=16.0),
        ),
        KindRule(
            RequestKind.ESTABLISH_LINK,
            access_enabled=None,
            linked=True,
            effect="the link is established",
            already="the link is already established",
            default_steps=(Step.REVIEW,),
            default_sla=SlaTarget(first_response_hours=4.0, resolution_hours=16.0),
        ),
        KindRule(
            RequestKind.DISSOCIATE_LINK,
            access_enabled=False,
            linked=False,
            effect="the firm is dissociated (no link, no access)",
            already="the firm is already dissociated (no link and no access)",
            default_steps=(Step.REVIEW, Step.SECOND_APPROVAL),
            default_sla=SlaTarget(first_response_hours=4.0, resolution_hours=24.0),
        ),
    )
}


def missing_for_slide_in(access_enabled: bool, linked: bool) -> list[RequestKind]:
    """The request kinds that would let a console's users slide in, in the order to file them."""
    return [
        rule.kind
        for rule in KINDS.values()
        if rule.grants_slide_in and not rule.holds(access_enabled, linked)
    ]


# The default approval policy, keyed by kind and console type: a management organisation
# owns the companies it runs, so it needs no consent. The live policy is a database table
# seeded from this; running requests keep the steps they were filed with.
DEFAULT_POLICY: dict[tuple[RequestKind, ConsoleType], tuple[Step, ...]] = {
    (rule.kind, console_type): tuple(
        step
        for step in rule.default_steps
        if not (console_type == ConsoleType.MANAGEMENT and step == Step.CONSENT)
    )
    for rule in KINDS.values()
    for console_type in ConsoleType
}
