"""A browser's `User-Agent` header told in a few words, for the list of a person's sessions."""

from __future__ import annotations

import re

# Most specific first: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edge", r"\bEdg(?:e|A|iOS)?/(\d+)"),
    ("Opera", r"\bOPR/(\d+)"),
    ("Firefox", r"\b(?:Firefox|FxiOS)/(\d+)"),
    ("Headless Chrome", r"\bHeadlessChrome/(\d+)"),
    ("Chrome", r"\b(?:Chrome|CriOS)/(\d+)"),
    ("Safari", r"\bVersion/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"),
)
_SYSTEMS = (
    ("iPhone", r"\biPhone\b"),
    ("iPad", r"\biPad\b"),
    ("Android", r"\bAndroid\b"),
    ("ChromeOS", r"\bCrOS\b"),
    ("Windows", r"\bWindows\b"),
    ("macOS", r"\bMac OS X\b"),
    ("Linux", r"\bLinux\b"),
)
# What a script sends is shown as its first word ("curl/8.5.0"), cut to this many characters.
MAX_OTHER = 40


def describe_user_agent(header: str | None) -> str:
    """ "Firefox 133 on Linux", "Safari 17 on iPhone", a script's first word, or "unknown"."""
    header = (header or "").strip()
    if not header:
        return "unknown"
    browser = next(
        (
            f"{name} {found[1]}"
            for name, pattern in _BROWSERS
            if (found := re.search(pattern, header))
        ),
        None,
    )
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, header)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or f"a browser on {system}"
    first = header.split()[0]
    return first if len(first) <= MAX_OTHER else first[: MAX_OTHER - 1] + "…"
