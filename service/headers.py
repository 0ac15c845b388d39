"""The security headers every response carries, set in one place after each request."""

from __future__ import annotations

from flask import Flask, Response, request

# Pages load their scripts, styles and images from LinkDesk itself and never inline a script;
# `data:` images are the icons inside the vendored Swagger UI's stylesheet.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

# `same-origin`: links within LinkDesk keep their full referrer (the pages' own addresses carry
# request IDs and filters), and other sites, such as the Temporal Web UI, receive none.
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

HSTS = "max-age=31536000"


def _is_static(endpoint: str | None) -> bool:
    """Whether the request was for a static file (the app's or a blueprint's)."""
    return endpoint is not None and (endpoint == "static" or endpoint.endswith(".static"))


def _carries_credentials(app: Flask) -> bool:
    """Whether the request carried the session cookie or an `Authorization` header: its
    answer may hold what only that person may see. (Signing in needs the session cookie
    already, for the CSRF token.)"""
    return (
        request.cookies.get(app.config["SESSION_COOKIE_NAME"]) is not None
        or "Authorization" in request.headers
    )


def init_app(app: Flask) -> None:
    """Add the security headers to every response of the app."""

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        """Set the headers, leaving any a view chose itself as they are."""
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Only over HTTPS: the secure cookie setting is the sign that LinkDesk is served so.
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        # Static files keep their validators and caching; anything answered to someone
        # signed in must not be kept by the browser or a proxy.
        if not _is_static(request.endpoint) and _carries_credentials(app):
            response.headers["Cache-Control"] = "no-store"
        return response
