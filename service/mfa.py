"""Two-factor sign-in: an authenticator app (TOTP) and single-use recovery codes.

The app's secret is stored encrypted with a key derived from `SECRET_KEY` (Fernet, through
HKDF), so a copy of the database alone does not hold it; a recovery code is stored as its
SHA-256 digest only. A code from the app is good once: the time step of the last one accepted
is kept, and an older or equal step is refused. Wrong codes are failed sign-in attempts, under
the same throttling as passwords (`service.auth.check_throttle`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from markupsafe import Markup
from sqlalchemy import delete, func, or_, select, update

from service import admin, auth
from service.errors import Conflict, Forbidden, Unauthorized
from service.extensions import db
from service.models import RecoveryCode, SecondFactor, User, utcnow

ISSUER = "LinkDesk"
RECOVERY_CODE_COUNT = 10
# A recovery code: 16 characters of base32 (80 random bits), shown in groups of four.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_LENGTH = 16
# Codes of the step before and after the current one are accepted too (clocks drift).
_DRIFT_STEPS = 1
_KEY_INFO = b"linkdesk second-factor secrets"
WRONG_CODE = "That code is not right, or was already used. Enter the current code."
ENROL_FIRST = (
    "Your role requires two-factor sign-in: set it up on the settings page "
    "(Settings, Two-factor sign-in) before doing anything else."
)
PASSWORD_ONLY_TOKEN = (
    "This account signs in with a second factor, so a password alone cannot create an API "
    "token. Create the token on the settings page, after signing in with your code."
)


@dataclass(frozen=True)
class Status:
    """What the settings page shows of a user's second factor."""

    enabled: bool
    required: bool
    recovery_codes_left: int


@dataclass(frozen=True)
class Enrolment:
    """The secret being set up, as text and as a QR code for the authenticator app."""

    secret: str
    uri: str
    qr_svg: Markup


def status(user: User) -> Status:
    left = 0
    if user.has_second_factor:
        left = db.session.execute(
            select(func.count()).where(RecoveryCode.user_id == user.id)
        ).scalar_one()
    return Status(user.has_second_factor, is_required(user), left)


def is_required(user: User) -> bool:
    """Whether the user's role must sign in with a second factor (`MFA_REQUIRED_ROLES`)."""
    return user.role in current_app.config["MFA_REQUIRED_ROLES"]


def must_enrol(user: User) -> bool:
    """Whether the user may do nothing but set up a second factor (and sign out)."""
    return is_required(user) and not user.has_second_factor


def check_password_may_create_token(user: User) -> None:
    """A password alone creates API tokens only for users without a second factor (nor a
    role that requires one): `Forbidden` otherwise."""
    if user.has_second_factor:
        raise Forbidden(PASSWORD_ONLY_TOKEN)
    if must_enrol(user):
        raise Forbidden(ENROL_FIRST)


# Enrolment, turning off, new recovery codes.


def start_enrolment(user: User) -> None:
    """Store a new secret for the user to add to an authenticator app (not yet in use)."""
    if user.has_second_factor:
        raise Conflict("Two-factor sign-in is already on.")
    factor = user.second_factor or SecondFactor(user_id=user.id)
    factor.secret = _fernet().encrypt(pyotp.random_base32().encode()).decode()
    factor.created_at = utcnow()
    factor.last_step = None
    user.second_factor = factor
    db.session.commit()


def enrolment(user: User) -> Enrolment | None:
    """The secret being set up, or None when no enrolment is under way."""
    factor = user.second_factor
    if factor is None or factor.enabled_at is not None:
        return None
    secret = _decrypt(factor)
    if secret is None:
        return None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(
        scale=4, title="QR code of the authenticator secret", svgclass="qr-code", lineclass=None
    )
    return Enrolment(secret, uri, Markup(svg))


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Turn two-factor sign-in on once the app's current code matches; the recovery codes,
    shown this once."""
    factor = user.second_factor
    if factor is None or factor.enabled_at is not None:
        raise Conflict("There is no two-factor set-up to confirm: start again.")
    _attempt(user, lambda: _accept_app_code(factor, code))
    factor.enabled_at = utcnow()
    codes = _replace_recovery_codes(user)
    admin.audit(user.username, "user.second_factor_on", user, user.username)
    db.session.commit()
    return codes


def disable(user: User, code: str) -> None:
    """Turn two-factor sign-in off, given a current code from the app or a recovery code."""
    factor = _enabled_factor(user)
    _attempt(user, lambda: _accept_app_code(factor, code) or _use_recovery_code(user, code))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.delete(factor)
    admin.audit(user.username, "user.second_factor_off", user, user.username)
    db.session.commit()
    db.session.expire(user)


def regenerate_recovery_codes(user: User, code: str) -> list[str]:
    """New recovery codes in place of the old ones, given a current code from the app."""
    factor = _enabled_factor(user)
    _attempt(user, lambda: _accept_app_code(factor, code))
    codes = _replace_recovery_codes(user)
    db.session.commit()
    return codes


def reset(user: User, actor: str) -> bool:
    """Remove the user's second factor and recovery codes, audited: an operator's remedy for
    someone who lost both their app and their codes. Whether there was one; not committed."""
    factor = user.second_factor
    if factor is None:
        return False
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.delete(factor)
    admin.audit(actor, "user.second_factor_reset", user, user.username)
    return True


def verify_sign_in(user: User, code: str) -> None:
    """The second step of signing in: a current code from the app, or a recovery code (used
    up). A wrong one is a failed sign-in attempt (`Unauthorized`; `Throttled` after too
    many)."""
    factor = _enabled_factor(user)
    _attempt(user, lambda: _accept_app_code(factor, code) or _use_recovery_code(user, code))


# Checking codes.


def _attempt(user: User, check: Callable[[], bool]) -> None:
    """Run one throttled check of a code, recorded as a sign-in attempt of the user."""
    auth.check_throttle(user.username)
    ok = check()
    auth.record_attempt(user.username, user, succeeded=ok, reason="wrong_code")
    if not ok:
        raise Unauthorized(WRONG_CODE)


def _enabled_factor(user: User) -> SecondFactor:
    factor = user.second_factor
    if factor is None or factor.enabled_at is None:
        raise Conflict("Two-factor sign-in is not on.")
    return factor


def _accept_app_code(factor: SecondFactor, code: str) -> bool:
    """Whether `code` is the app's code of a recent time step later than the last one used;
    that step is then the last used (one conditional update, so two requests racing with
    the same code cannot both pass)."""
    digits = "".join(code.split())
    if not digits.isdigit() or len(digits) != 6:
        return False
    secret = _decrypt(factor)
    if secret is None:
        return False
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(utcnow())
    for step in range(now_step - _DRIFT_STEPS, now_step + _DRIFT_STEPS + 1):
        if not hmac.compare_digest(totp.generate_otp(step), digits):
            continue
        taken = db.session.execute(
            update(SecondFactor)
            .where(
                SecondFactor.user_id == factor.user_id,
                or_(SecondFactor.last_step.is_(None), SecondFactor.last_step < step),
            )
            .values(last_step=step)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(taken, "rowcount", 0) == 1)
    return False


def _use_recovery_code(user: User, code: str) -> bool:
    """Whether `code` is one of the user's recovery codes; it is then used up."""
    normalised = "".join(c for c in code.lower() if c.isalnum())
    if len(normalised) != _RECOVERY_LENGTH:
        return False
    used = db.session.execute(
        delete(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.digest == _digest(normalised)
        )
    )
    return bool(getattr(used, "rowcount", 0) == 1)


def _replace_recovery_codes(user: User) -> list[str]:
    """New recovery codes for the user (the old ones stop working); not committed."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    db.session.add_all(RecoveryCode(user_id=user.id, digest=_digest(code)) for code in codes)
    return ["-".join(code[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)) for code in codes]


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _fernet() -> Fernet:
    """The cipher of stored secrets, keyed from `SECRET_KEY`."""
    secret_key = current_app.config["SECRET_KEY"]
    raw = secret_key.encode() if isinstance(secret_key, str) else bytes(secret_key)
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_KEY_INFO).derive(raw)
    return Fernet(base64.urlsafe_b64encode(key))


def _decrypt(factor: SecondFactor) -> str | None:
    """The factor's secret, or None when another `SECRET_KEY` encrypted it."""
    try:
        return _fernet().decrypt(factor.secret.encode()).decode()
    except InvalidToken:
        current_app.logger.warning(
            "the second factor of user %s cannot be decrypted", factor.user_id
        )
        return None
