"""Idempotency keys: a retried unsafe call gets the first call's answer instead of acting twice.

A client sends `Idempotency-Key: <key>` with any unsafe call (a page's action form carries a
fresh key in its hidden `idempotency_key` field instead). The first call with a key claims it
and runs; its answer, once final, is stored. A later call by the same user with the same key
and the same call (method, address and body) gets that answer back, marked
`Idempotent-Replayed: true`, and nothing is done again. The same key with another call is 422;
a call whose key is still in flight answers 409 `in_progress` with `Retry-After`.

Only final answers are remembered: a 5xx, or any answer that asks to retry (`Retry-After`:
the 409s of an action in flight or a workflow catching up, a 429, a 503 `outcome_unknown`),
frees the key so the retry runs. The Temporal Update a call sends takes its ID from the key
(`action_id`), so a retry after an unknown outcome attaches to the same Update, which Temporal
runs once, instead of sending a second one. Keys are kept 24 hours.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask, Response, current_app, g, request
from flask_login import current_user
from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from service.errors import InProgress, Invalid, ServiceError
from service.extensions import SAFE_METHODS, db
from service.models import IdempotencyKey, utcnow

HEADER = "Idempotency-Key"
FORM_FIELD = "idempotency_key"  # the hidden field of a page's action form
REPLAYED = "Idempotent-Replayed"
MAX_LENGTH = 255
KEPT = timedelta(hours=24)
# A call still in flight after this long died with its process: a retry takes the key over.
IN_FLIGHT_LEASE = timedelta(seconds=60)
IN_FLIGHT_RETRY_AFTER = 1  # seconds
PRUNE_EVERY = timedelta(minutes=1)  # per process: one indexed delete of the keys past KEPT
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NOT_DATA = frozenset({"csrf_token", FORM_FIELD})  # form fields that are no part of the call


class BadKey(ServiceError):
    status = 400
    code = "bad_idempotency_key"


@dataclass(frozen=True)
class Claim:
    """The key this request holds while it runs."""

    row_id: int
    user_id: int
    key: str
    fingerprint: str


def _key() -> str | None:
    """The call's key: the header, or a page form's hidden field."""
    key = request.headers.get(HEADER)
    if key is None and request.mimetype in FORM_TYPES and not request.path.startswith("/api/"):
        key = request.form.get(FORM_FIELD)
    return key


def _check(key: str) -> None:
    if not key.strip() or len(key) > MAX_LENGTH or not (key.isascii() and key.isprintable()):
        raise BadKey(
            f"An {HEADER} is 1 to {MAX_LENGTH} printable ASCII characters.",
            fields={HEADER: [f"Give 1 to {MAX_LENGTH} printable ASCII characters."]},
        )


def _fingerprint() -> str:
    """What makes two calls the same call: method, address and body (JSON in any layout,
    form fields in any order, leaving out the CSRF token and the key itself)."""
    digest = hashlib.sha256(f"{request.method} {request.full_path}\n".encode())
    if request.mimetype in FORM_TYPES:
        fields = sorted((k, v) for k, v in request.form.items(multi=True) if k not in NOT_DATA)
        digest.update(json.dumps(fields).encode())
        return digest.hexdigest()
    data = request.get_data(cache=True)
    with contextlib.suppress(ValueError):  # not JSON (or not UTF-8): the bytes as they came
        data = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    digest.update(data)
    return digest.hexdigest()


def action_id() -> str | None:
    """The ID of the Temporal Update the current call sends: derived from its key, so a
    retry of the same call sends the same ID; None (a fresh ID) for a call without a key."""
    claim: Claim | None = g.get("linkdesk_idempotency")
    if claim is None:
        return None
    seed = f"{claim.user_id}\0{claim.key}\0{claim.fingerprint}".encode()
    return f"linkdesk-action-{hashlib.sha256(seed).hexdigest()[:40]}"


def made_earlier() -> int | None:
    """The ID of the request an earlier attempt of this call filed, when that attempt's
    process died before storing its answer and this call took the key over; else None."""
    claim: Claim | None = g.get("linkdesk_idempotency")
    if claim is None:
        return None
    return db.session.execute(
        select(IdempotencyKey.made_request_id).where(IdempotencyKey.id == claim.row_id)
    ).scalar_one_or_none()


def record_made(request_id: int) -> None:
    """Note the request this call files, in the filing's own transaction (see `made_earlier`)."""
    claim: Claim | None = g.get("linkdesk_idempotency")
    if claim is not None:
        db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == claim.row_id)
            .values(made_request_id=request_id)
        )


def _prune(now: datetime) -> None:
    """Delete the keys past KEPT, at most once per PRUNE_EVERY in this process."""
    state = current_app.extensions["linkdesk.idempotency"]
    if state["pruned_at"] is not None and now - state["pruned_at"] < PRUNE_EVERY:
        return
    state["pruned_at"] = now
    db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEPT))


def _find(user_id: int, key: str) -> IdempotencyKey | None:
    return db.session.execute(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).scalar_one_or_none()


def _rows(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _claim(user_id: int, key: str, fingerprint: str) -> IdempotencyKey | None:
    """Claim the key for this call (None), or the row of an earlier call that holds it."""
    now = utcnow()
    _prune(now)
    found = _find(user_id, key)
    if found is not None and found.created_at < now - KEPT:
        db.session.delete(found)
        db.session.flush()
        found = None
    if found is None:
        row = IdempotencyKey(
            user_id=user_id, key=key, fingerprint=fingerprint, created_at=now, started_at=now
        )
        db.session.add(row)
        try:
            db.session.flush()
            row_id = row.id
            db.session.commit()
        except IntegrityError:  # another call with the same key got there first
            db.session.rollback()
            holder = _find(user_id, key)
            if holder is None:  # and has just given it back: the retry may claim it
                raise _in_progress() from None
            return holder
        g.linkdesk_idempotency = Claim(row_id, user_id, key, fingerprint)
        return None
    if found.fingerprint == fingerprint and found.status is None:
        lease_ended = found.started_at < now - IN_FLIGHT_LEASE
        # Taken over once: of two retries after the lease, one updates the row.
        taken = lease_ended and _rows(
            db.session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == found.id, IdempotencyKey.started_at == found.started_at)
                .values(started_at=now)
            )
        )
        db.session.commit()
        if taken:
            g.linkdesk_idempotency = Claim(found.id, user_id, key, fingerprint)
            return None
    return found


def _in_progress() -> InProgress:
    return InProgress(
        f"The call with this {HEADER} is still being done; "
        f"try again in {IN_FLIGHT_RETRY_AFTER} second(s) for its answer.",
        headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER)},
    )


def begin() -> Response | None:
    """Before an unsafe call runs: claim its key, or answer as the first call with it was."""
    if request.method in SAFE_METHODS or request.routing_exception is not None:
        return None
    key = _key()
    if key is None:
        return None
    _check(key)
    if not current_user.is_authenticated:  # keys belong to users; the view answers 401
        return None
    fingerprint = _fingerprint()
    earlier = _claim(current_user.id, key, fingerprint)
    if earlier is None:
        return None
    if earlier.fingerprint != fingerprint:
        raise Invalid(
            f"This {HEADER} was used for another call (another address or body); "
            "use a new key for a new call.",
            fields={HEADER: ["Already used for another call."]},
        )
    if earlier.status is None:
        raise _in_progress()
    replay = Response(earlier.body, status=earlier.status, content_type=earlier.content_type)
    if earlier.location:
        replay.headers["Location"] = earlier.location
    replay.headers[REPLAYED] = "true"
    db.session.commit()
    return replay


def _final(response: Response) -> bool:
    """Whether an answer is for keeps: not a server failure, not a "try again"."""
    return (
        response.status_code < 500
        and "Retry-After" not in response.headers
        and not response.is_streamed
    )


def finish(response: Response) -> Response:
    """After a call that claimed a key: store its answer if final, else free the key."""
    claim: Claim | None = g.pop("linkdesk_idempotency", None)
    if claim is None:
        return response
    final = _final(response)
    # End the call's own transaction first: kept if it succeeded, dropped if it failed.
    if response.status_code < 400:
        db.session.commit()
    else:
        db.session.rollback()
    was_done = g.get("linkdesk_done_writing", False)
    g.linkdesk_done_writing = False  # this is a write, whatever the call did before
    try:
        if final:
            db.session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == claim.row_id)
                .values(
                    status=response.status_code,
                    content_type=response.content_type,
                    location=response.headers.get("Location"),
                    body=response.get_data(),
                )
            )
        else:
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim.row_id))
        db.session.commit()
    except SQLAlchemyError:  # the answer still goes out; the key frees itself after the lease
        db.session.rollback()
        current_app.logger.exception("%s %s: the Idempotency-Key was not recorded", *_call())
    finally:
        g.linkdesk_done_writing = was_done
    return response


def fresh_key() -> str:
    """A new key for a page's action form: a double submit or a browser's retry sends it
    again, and is answered as the first submission was."""
    return secrets.token_urlsafe(24)


def _call() -> tuple[str, str]:
    return request.method, request.path


def init_app(app: Flask) -> None:
    """Claim keys before every unsafe call and record answers after (after the CSRF check
    and authentication, which `service.auth.init_app` installed first)."""
    app.extensions["linkdesk.idempotency"] = {"pruned_at": None}
    app.jinja_env.globals["idempotency_key"] = fresh_key
    app.before_request(begin)
    app.after_request(finish)
