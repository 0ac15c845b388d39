"""The managers' dashboard: figures, charts, drill-down links, CSV exports and who may see them.

The history is written straight into `requests` and `request_figures` as the projection would
have left it (fast, and exact figures to check); the pages are read through the test client
as a signed-in manager, and every drill-down link is followed to the request list.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect
from sqlalchemy import select

from domain.vocabulary import RequestKind, RequestStatus
from service import requests as service_requests
from service.extensions import db
from service.metrics.figures import CSV_COLUMNS
from service.metrics.selection import GROUPINGS
from service.models import User
from service.requests import REQUEST_CSV_COLUMNS
from service.web import charts
from service.web.dashboard import business_duration, duration, percent
from tests.conftest import PASSWORD, Factory, sign_in
from tests.history import HOUR, MARCH, Past, store
from tests.web.conftest import PHONE, Shoot

MARCH_RANGE = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
def history(app: Flask, demo_directory: Factory) -> dict[str, str]:
    """Five requests filed in March 2026, one in February, one in April, and three open now.

    Returns the public IDs by name.
    """
    demo_directory.user("agent2", "agent")
    names = [
        "quick",  # 2 h, SLA met
        "slow",  # 10 h, SLA missed
        "rejected",  # 30 h, SLA met
        "cancelled",  # 100 h, not counted for SLA
        "stale",  # filed in March, still open, nobody took it up
        "february",
        "april",
        "fresh",  # open, filed 2 h ago
        "risky",  # open 2 days, at risk, its task held by `agent`
        "late",  # open 10 days, breached
    ]
    ids = store(
        app,
        Past(first_response=1, resolution=2, business=2, sla_state="met", sla_met=True),
        Past(first_response=0.5, resolution=10, business=3, sla_state="breached", sla_met=False),
        Past(
            kind=RequestKind.ESTABLISH_LINK,
            console="VAR-01",
            created=MARCH + timedelta(days=1),
            agent="agent2",
            first_response=3,
            resolution=30,
            business=8,
            wait=5,
            status=RequestStatus.REJECTED,
            sla_state="met",
            sla_met=True,
        ),
        Past(
            kind=RequestKind.DISSOCIATE_LINK,
            console="MGMT-01",
            created=MARCH + timedelta(days=8),
            agent="agent2",
            first_response=2,
            resolution=100,
            wait=20,
            status=RequestStatus.CANCELLED,
            sla_state="breached",
        ),
        Past(kind=RequestKind.ESTABLISH_LINK, created=MARCH + timedelta(days=18), agent=None),
        Past(created=MARCH - timedelta(days=10), resolution=4, sla_state="met", sla_met=True),
        Past(created=MARCH + timedelta(days=40), resolution=1, sla_state="met", sla_met=True),
        Past(ago=timedelta(hours=2), agent=None, status=RequestStatus.AWAITING_AGENT),
        Past(
            kind=RequestKind.ESTABLISH_LINK,
            console="VAR-01",
            ago=timedelta(days=2),
            sla_state="at_risk",
            claimed_by="agent",
        ),
        Past(
            kind=RequestKind.DISSOCIATE_LINK,
            ago=timedelta(days=10),
            agent="agent2",
            sla_state="breached",
        ),
    )
    return dict(zip(names, ids, strict=True))


@pytest.fixture
def manager(client: FlaskClient, history: dict[str, str]) -> FlaskClient:
    sign_in(client, "boss")
    return client


# Reading pages -----------------------------------------------------------------------------


class Links(HTMLParser):
    """Every link of a page with its text; the text of elements found by id."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open.append((dict(attrs).get("href") or "", []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            href, text = self._open.pop()
            self.links.append((href, " ".join("".join(text).split())))

    def handle_data(self, data: str) -> None:
        for _href, text in self._open:
            text.append(data)


def links(html: str) -> list[tuple[str, str]]:
    parser = Links()
    parser.feed(html)
    return parser.links


def text_of(html: str) -> str:
    """The page's visible text with the tags taken out and the spaces squeezed."""
    without = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", without).split())


def listed(client: FlaskClient, url: str) -> list[str]:
    """The request IDs a request-list page shows (all pages of it)."""
    found: list[str] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        page = response.get_data(as_text=True)
        found += re.findall(r'<code>(REQ-\d{6})</code></a> <span class="sub">', page)
        nexts = [href for href, text in links(page) if text == "Next →"]
        url = nexts[0] if nexts else ""
    return found


def dashboard(client: FlaskClient, **args: str) -> str:
    response = client.get("/dashboard", query_string={**MARCH_RANGE, **args})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def link_to(html: str, text: str, path: str = "/requests") -> str:
    """The one link with this text that leads to `path`."""
    found = {href for href, shown in links(html) if shown == text and href.startswith(path)}
    assert len(found) == 1, (text, found)
    return found.pop()


def _tile(html: str, label: str) -> str:
    icon = r'(?:<span aria-hidden="true">[^<]*</span>)?'
    match = re.search(rf'<h2 class="tile-label">{icon}{label}</h2>(.*?)</div>', html, re.S)
    assert match, label
    return match.group(1)


def tile(html: str, label: str) -> str:
    """The text of the headline tile with this label."""
    return text_of(_tile(html, label))


def tile_link(html: str, label: str, text: str) -> str:
    """The link with this text in the headline tile with this label."""
    return link_to(_tile(html, label), text)


def figures_rows(html: str) -> dict[str, str]:
    """The figures table's rows as text, by their first word."""
    table = re.search(r'<table class="stack figures-table">(.*?)</table>', html, re.S)
    assert table
    rows = re.findall(r"<tr>\s*<th scope=\"row\"[^>]*>(.*?)</tr>", table.group(1), re.S)
    return {text_of(r).split(" ")[0]: text_of(r) for r in rows}


# The page ----------------------------------------------------------------------------------


def test_manager_sees_tiles_charts_and_tables(
    manager: FlaskClient, history: dict[str, str]
) -> None:
    html = dashboard(manager)
    text = text_of(html)
    assert "Turnaround of the requests filed from 2026-03-01 to 2026-03-31 (UTC, 31 days)" in text
    assert tile(html, "Open now").startswith("4 ")
    assert tile(html, "At risk").startswith("1 ")
    assert tile(html, "Breached").startswith("1 ")
    # Resolutions of 2, 10, 30 and 100 h: median 20 h; February's one request took 4 h.
    assert tile(html, "Median resolution") == "20.0 h previous 31 days: 4.0 h · ↑ 400 % slower"
    # Counted: two completed and one rejected (the cancelled one is not); two met.
    assert tile(html, "SLA met") == "67 % 2 of 3 completed, rejected or failed"

    for title in (
        "Filed and ended per day",
        "Time to resolve by kind",
        "How long requests took",
        "Open now, by age",
    ):
        assert re.search(rf'<h3 id="chart-[a-z]+-title">{title}</h3>', html), title
    assert html.count('<svg class="chart-svg') == 4
    # Accessible drawings: labelled, described, values written out, a table of numbers.
    assert 'aria-labelledby="chart-resolution-title"' in html
    assert "<title>Enable access: median time to resolve 6.0 h</title>" in html
    assert '<text class="value" x=' in html
    assert text.count("The numbers of “") == 4
    # The resolution chart's two series differ by pattern, and the legend says which is which.
    assert 'fill="url(#chart-resolution-hatch)"' in html
    assert re.search(
        r'<ul class="legend" aria-label="Legend">.*?Median.*?90th percentile', html, re.S
    )
    # Histogram buckets and the backlog's age buckets, with their counts in the tables.
    assert re.search(r"<th scope=\"row\">1-4 h</th><td><a [^>]+>1</a>", html)
    assert re.search(r"<th scope=\"row\">&gt;7 d</th><td><a [^>]+>2</a>", html)

    # The figures table by kind, with a total; calendar and business figures both shown.
    by_label = figures_rows(html)
    assert by_label["Enable"].startswith("Enable access 2 2 ")
    assert "6.0 h" in by_label["Enable"]  # median of 2 and 10 h
    assert "2.5 h" in by_label["Enable"]  # business median of 2 and 3 h
    assert by_label["All"].startswith("All requests 5 4 ")
    assert by_label["All"].endswith("67 % 2 of 3")

    # Agents: tasks held now, requests taken up and ended, median first response (calendar,
    # then business hours).
    agents = {
        m.group(1): text_of(m.group(2))
        for m in re.finditer(r'<span class="sub">(agent2?)</span></th>(.*?)</tr>', html, re.S)
    }
    assert agents == {
        "agent": "1 2 45 min business hours: 45 min",
        "agent2": "0 2 2.5 h business hours: 2.5 h",
    }


def test_every_counted_figure_leads_to_exactly_its_requests(
    manager: FlaskClient, history: dict[str, str]
) -> None:
    for group_by in GROUPINGS:
        html = dashboard(manager, group_by=group_by)
        counted = [
            (href, int(text))
            for href, text in links(html)
            if href.startswith("/requests?") and text.isdigit()
        ]
        assert len(counted) > 10, group_by
        for href, number in counted:
            assert len(listed(manager, href)) == number, (group_by, href)


def test_drill_down_lists_the_right_requests(manager: FlaskClient, history: dict[str, str]) -> None:
    ids = history
    html = dashboard(manager)

    def shows(href: str, *names: str) -> None:
        assert sorted(listed(manager, href)) == sorted(ids[name] for name in names), href

    shows(tile_link(html, "Open now", "4"), "stale", "fresh", "risky", "late")
    shows(tile_link(html, "At risk", "1"), "risky")
    shows(tile_link(html, "Breached", "1"), "late")
    shows(tile_link(html, "SLA met", "67 %"), "quick", "rejected")
    shows(tile_link(html, "SLA met", "3"), "quick", "slow", "rejected")  # counted
    ended = tile_link(html, "Median resolution", "20.0 h")
    shows(ended, "quick", "slow", "rejected", "cancelled")
    shows(tile_link(html, "Median resolution", "4.0 h"), "february")  # previous period
    by_agent = dashboard(manager, group_by="agent")
    shows(link_to(by_agent, "No agent yet"), "stale")
    by_week = dashboard(manager, group_by="week")
    shows(link_to(by_week, "Week of 2026-03-09"), "cancelled")
    by_type = dashboard(manager, group_by="console_type")
    shows(link_to(by_type, "Partner"), "rejected")

    # The drilled-down list shows its filters, so people see why these requests are listed.
    page = manager.get(tile_link(html, "SLA met", "67 %")).get_data(as_text=True)
    assert '<details class="more-filters" open>' in page
    assert 'name="created_from" type="date" value="2026-03-01"' in page
    assert '<option value="met" selected>Met</option>' in page
    assert '<option value="handled" selected>' in page


def test_filters_narrow_every_figure(manager: FlaskClient, history: dict[str, str]) -> None:
    html = dashboard(manager, kind="enable_access")
    assert tile(html, "Open now").startswith("1 ")  # only `fresh`
    assert tile(html, "At risk").startswith("0 ")
    assert tile(html, "Median resolution").startswith("6.0 h")
    assert "selected>Enable access</option>" in html
    assert list(figures_rows(html)) == ["Enable", "All"]

    html = dashboard(manager, console_type="partner")
    assert tile(html, "Open now").startswith("1 ")  # `risky`
    assert tile(html, "Median resolution").startswith("1.2 d")  # `rejected`, 30 h

    with manager.application.app_context():
        agent2 = db.session.execute(select(User.id).filter_by(username="agent2")).scalar_one()
    html = dashboard(manager, agent=str(agent2), group_by="kind")
    assert tile(html, "Open now").startswith("1 ")  # `late`
    assert tile(html, "Breached").startswith("1 ")
    assert tile(html, "SLA met") == "100 % 1 of 1 completed, rejected or failed"
    # Its links keep the agent, so the lists match the figures.
    assert listed(manager, tile_link(html, "SLA met", "100 %")) == [history["rejected"]]


def test_an_empty_period_and_a_long_one_still_read_well(
    manager: FlaskClient, history: dict[str, str]
) -> None:
    html = dashboard(manager, **{"from": "2020-01-01", "to": "2020-01-31"})
    text = text_of(html)
    assert "No request of this period has ended yet." in text
    assert "No request was filed in this period." in text
    assert tile(html, "Median resolution") == "— previous 31 days: —"
    assert tile(html, "SLA met") == "— 0 of 0 completed, rejected or failed"
    assert tile(html, "Open now").startswith("4 ")  # what is open ignores the dates

    # A year: one point per day without markers or value labels; the table keeps every day.
    html = dashboard(manager, **{"from": "2025-06-01", "to": "2026-05-31"})
    daily = html[html.index('id="chart-daily-title"') : html.index('id="chart-resolution-title"')]
    assert daily.count('class="hit"') == 0
    assert daily.count('<text class="tick" x=') <= 12 + 3  # thinned days, and the counts
    assert daily.count('<th scope="row">') == 365
    assert "Turnaround of the requests filed from <strong>2025-06-01</strong>" in html


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ({"from": "2026-13-45"}, "from", "Give a day as YYYY-MM-DD."),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to", "Must be on or after 2026-03-10."),
        ({"from": "2000-01-01", "to": "2026-03-31"}, "from", "At most 3660 days before"),
        ({"kind": "teleport"}, "kind", "Must be one of: enable_access"),
        ({"console_type": "moon"}, "console_type", "Must be one of: accountant"),
        ({"agent": "alex"}, "agent", "Pick an agent from the list."),
        ({"agent": "999999"}, "agent", "Give an agent's user ID."),
        ({"group_by": "colour"}, "group_by", "Must be one of: kind"),
    ],
)
def test_bad_filters_are_explained_on_the_form(
    manager: FlaskClient, args: dict[str, str], field: str, message: str
) -> None:
    response = manager.get("/dashboard", query_string=args)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert error and message in unescape(error.group(1)), html
    assert '<form method="get" action="/dashboard"' in html
    for name in ("from", "to"):  # typed days stay in their fields
        if name in args:
            assert f'name="{name}" type="date" value="{args[name]}"' in html
    assert "tile-value" not in html
    for export in ("/dashboard/figures.csv", "/dashboard/requests.csv"):
        answer = manager.get(export, query_string=args)
        assert answer.status_code == 422
        assert message in unescape(text_of(answer.get_data(as_text=True)))


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "root"])
def test_nobody_but_managers_finds_the_dashboard(
    client: FlaskClient, history: dict[str, str], username: str
) -> None:
    sign_in(client, username)
    for url in ("/dashboard", "/dashboard/figures.csv", "/dashboard/requests.csv"):
        response = client.get(url, query_string=MARCH_RANGE)
        assert response.status_code == 404, url
        assert "Not found" in response.get_data(as_text=True)
    home = client.get("/").get_data(as_text=True)
    assert "/dashboard" not in home


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/dashboard")
    assert response.status_code == 302
    assert "/sign-in" in response.headers["Location"]


def test_manager_finds_the_dashboard_in_the_navigation(
    manager: FlaskClient, history: dict[str, str]
) -> None:
    html = manager.get("/dashboard").get_data(as_text=True)  # the last 30 days by default
    assert '<a href="/dashboard" aria-current="page">Dashboard</a>' in html
    today = datetime.now(UTC).date()
    assert f'value="{(today - timedelta(days=29)).isoformat()}"' in html
    assert f'value="{today.isoformat()}"' in html
    assert tile(html, "Open now").startswith("4 ")  # what is open ignores the dates


# CSV exports -------------------------------------------------------------------------------


def read_csv(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_figures_csv_has_one_line_per_group(manager: FlaskClient, history: dict[str, str]) -> None:
    response = manager.get(
        "/dashboard/figures.csv", query_string={**MARCH_RANGE, "group_by": "kind"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="linkdesk-figures-by-kind-2026-03-01-to-2026-03-31.csv"'
    )
    header, *rows = read_csv(response)
    assert header == list(CSV_COLUMNS)
    lines = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(lines) == {"enable_access", "establish_link", "dissociate_link"}
    enable = lines["enable_access"]
    assert (enable["count"], enable["resolved"]) == ("2", "2")
    assert enable["resolution_calendar_p50_seconds"] == f"{6 * HOUR:.1f}"
    assert (enable["sla_counted"], enable["sla_met"], enable["sla_attainment_percent"]) == (
        "2",
        "1",
        "50.0",
    )

    html = dashboard(manager, group_by="agent")
    export = link_to(html, "Figures as CSV", "/dashboard/figures.csv")
    assert parse_qs(urlsplit(export).query)["group_by"] == ["agent"]
    labels = [row[1] for row in read_csv(manager.get(export))[1:]]
    assert labels == ["agent", "agent2", "No agent yet"]


def test_requests_csv_streams_the_requests_behind_the_figures(
    manager: FlaskClient, history: dict[str, str]
) -> None:
    html = dashboard(manager)
    response = manager.get(link_to(html, "Requests as CSV", "/dashboard/requests.csv"))
    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="linkdesk-requests-2026-03-01-to-2026-03-31.csv"'
    )
    header, *rows = read_csv(response)
    assert header == list(REQUEST_CSV_COLUMNS)
    lines = [dict(zip(header, row, strict=True)) for row in rows]
    march = ["quick", "slow", "rejected", "cancelled", "stale"]
    assert [line["id"] for line in lines] == [history[name] for name in march]
    rejected = lines[2]
    assert rejected["kind"] == "establish_link"
    assert rejected["status"] == "rejected"
    assert (rejected["console"], rejected["console_type"]) == ("VAR-01", "partner")
    assert rejected["agent"] == "agent2"
    assert rejected["resolution_calendar_seconds"] == f"{30 * HOUR:.1f}"
    assert rejected["resolution_business_seconds"] == f"{8 * HOUR:.1f}"
    assert rejected["customer_wait_calendar_seconds"] == f"{5 * HOUR:.1f}"
    assert rejected["sla_met"] == "true"
    assert rejected["created_at"] == "2026-03-03T10:00:00+00:00"
    stale = lines[4]
    assert (stale["agent"], stale["resolved_at"], stale["sla_met"]) == ("", "", "")

    only_partner = manager.get(
        "/dashboard/requests.csv", query_string={**MARCH_RANGE, "console_type": "partner"}
    )
    assert [row[0] for row in read_csv(only_partner)[1:]] == [history["rejected"]]


# The request list's new filters, on the page and in the API ------------------------------


def test_request_list_filters_by_dates_sla_age_resolution_and_people(
    manager: FlaskClient, history: dict[str, str]
) -> None:
    ids = history

    def shows(*names: str, **args: str) -> None:
        query = "&".join(f"{key}={value}" for key, value in args.items())
        assert sorted(listed(manager, f"/requests?{query}")) == sorted(ids[n] for n in names)

    shows("quick", "slow", created_from="2026-03-02", created_to="2026-03-02")
    shows("quick", "slow", resolved_from="2026-03-02", resolved_to="2026-03-02")
    shows("rejected", "risky", console_type="partner")
    shows("late", sla="breached", status="open")
    shows("quick", "rejected", "february", "april", status="handled", sla="met")
    shows("fresh", age="under-1d")
    shows("stale", "late", age="over-7d", status="open")
    shows("slow", resolution="8-24h")
    shows("stale", "fresh", agent="none")
    shows("risky", assignee=_user_id(manager, "agent"))
    shows("quick", "slow", "february", "april", "risky", agent=_user_id(manager, "agent"))


def _user_id(client: FlaskClient, username: str) -> str:
    with client.application.app_context():
        return str(db.session.execute(select(User.id).filter_by(username=username)).scalar_one())


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ("created_from=2026-03-10&created_to=2026-03-01", "created_to", "on or after 2026-03-10"),
        ("resolved_to=yesterday", "resolved_to", "Not a valid date."),
        ("age=ancient", "age", "Must be one of: under-1d, 1-3d, 3-7d, over-7d."),
        ("agent=alex", "agent", "Give an agent's user ID, or none."),
        ("assignee=999999", "assignee", "Give an agent's user ID."),
    ],
)
def test_request_list_explains_bad_filters(
    manager: FlaskClient, args: str, field: str, message: str
) -> None:
    response = manager.get(f"/requests?{args}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert error and message in unescape(error.group(1))
    assert '<details class="more-filters" open>' in html

    api = manager.get(f"/api/v1/requests?{args}")
    assert api.status_code == 422
    assert message in " ".join(api.json["error"]["fields"][field])


def test_api_lists_with_the_same_filters(app: Flask, history: dict[str, str], api_as: Any) -> None:
    api = api_as("boss")
    answer = api.get(
        "/api/v1/requests",
        query_string={
            "created_from": "2026-03-01",
            "created_to": "2026-03-31",
            "status": "closed",
            "per_page": 200,
        },
    )
    assert answer.status_code == 200, answer.json
    assert sorted(item["id"] for item in answer.json["items"]) == sorted(
        history[name] for name in ("quick", "slow", "rejected", "cancelled")
    )
    answer = api.get("/api/v1/requests", query_string={"status": "open,completed", "age": "1-3d"})
    assert [item["id"] for item in answer.json["items"]] == [history["risky"]]
    answer = api.get("/api/v1/requests", query_string={"agent": "none", "resolution": "1-4h"})
    assert answer.json["items"] == []

    # A partner's list keeps to their console whatever the filters.
    partner = api_as("pvar")
    answer = partner.get("/api/v1/requests", query_string={"created_from": "2026-03-01"})
    assert sorted(item["id"] for item in answer.json["items"]) == sorted(
        [history["rejected"], history["risky"]]
    )


def test_a_long_list_is_counted_only_so_far(
    app: Flask,
    manager: FlaskClient,
    history: dict[str, str],
    api_as: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A manager may see a million requests: a list is counted up to LIST_COUNT_UP_TO (3
    here) and at least to the page shown, and says there are more, instead of counting all."""
    store(app, *(Past(created=MARCH + timedelta(hours=i), resolution=1) for i in range(25)))
    api = api_as("boss")
    whole = api.get("/api/v1/requests", query_string={"per_page": 200}).json
    assert whole["total_exact"] is True and whole["total"] == len(whole["items"]) > 30
    monkeypatch.setattr(service_requests, "LIST_COUNT_UP_TO", 3)

    first = api.get("/api/v1/requests", query_string={"per_page": 2}).json
    assert (first["total"], first["total_exact"], len(first["items"])) == (3, False, 2)
    third = api.get("/api/v1/requests", query_string={"per_page": 2, "page": 3}).json
    assert (third["total"], third["total_exact"]) == (6, False)  # counted past page 3
    last_page = (whole["total"] + 1) // 2
    last = api.get("/api/v1/requests", query_string={"per_page": 2, "page": last_page}).json
    assert (last["total"], last["total_exact"]) == (whole["total"], True)
    seen = [
        item["id"]
        for page in range(1, last_page + 1)
        for item in api.get("/api/v1/requests", query_string={"per_page": 2, "page": page}).json[
            "items"
        ]
    ]
    assert seen == [item["id"] for item in whole["items"]]  # every page still lists its rows

    html = manager.get("/requests").get_data(as_text=True)  # 20 a page: counted to 20
    assert ">20+ requests<" in html
    assert "Page 1 of 1+" in html and 'rel="next"' in html


def test_api_documents_the_new_filters(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    parameters = {p["name"]: p for p in spec["paths"]["/api/v1/requests"]["get"]["parameters"]}
    for name in (
        "created_from",
        "created_to",
        "resolved_from",
        "resolved_to",
        "console_type",
        "agent",
        "assignee",
        "sla",
        "age",
        "resolution",
    ):
        assert name in parameters, name
    assert parameters["age"]["schema"]["enum"] == ["under-1d", "1-3d", "3-7d", "over-7d"]
    assert "handled" in parameters["status"]["schema"]["items"]["enum"]


# In a real browser -------------------------------------------------------------------------


def sign_in_to(page: Page, username: str, path: str) -> None:
    """Sign in through the form and land on `path`."""
    page.goto(f"/sign-in?next={quote(path, safe='/')}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def fits_the_screen(page: Page) -> None:
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide on a {inner_width}px screen"


@pytest.mark.browser
def test_manager_filters_the_dashboard_and_drills_down(
    open_page: Callable[..., Page], shoot: Shoot, history: dict[str, str]
) -> None:
    page = open_page()
    sign_in_to(page, "boss", "/dashboard")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()

    page.get_by_label("Filed from").fill("2026-03-01")
    page.get_by_label("Filed until").fill("2026-03-31")
    page.get_by_label("Console type").select_option("accountant")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"from=2026-03-01&to=2026-03-31&.*console_type=accountant"))
    expect(page.get_by_role("region", name="Headline figures")).to_contain_text("6.0 h")
    for title in ("Filed and ended per day", "Time to resolve by kind", "Open now, by age"):
        expect(page.get_by_role("figure", name=title)).to_be_visible()
    page.get_by_role("link", name="Agent", exact=True).click()
    expect(page.get_by_role("heading", name="Turnaround by agent")).to_be_visible()
    fits_the_screen(page)
    shoot(page, "dashboard-filtered")

    # A bar of the backlog chart leads to the requests it counts.
    page.get_by_role("link", name="2 open requests filed >7 d ago").click()
    expect(page).to_have_url(re.compile(r"/requests\?.*age=over-7d"))
    expect(page.locator("#count")).to_have_text("2 requests match")
    expect(page.get_by_label("Age since filing")).to_have_value("over-7d")
    shoot(page, "drilled-down")

    phone = open_page(viewport=PHONE)
    sign_in_to(phone, "boss", "/dashboard?from=2026-03-01&to=2026-03-31")
    expect(phone.get_by_role("region", name="Headline figures")).to_contain_text("20.0 h")
    fits_the_screen(phone)
    shoot(phone, "dashboard-phone")


def test_durations_and_axes_read_as_people_say_them() -> None:
    assert [duration(s) for s in (None, 30, 45 * 60, 3590, 3.2 * HOUR, 36 * HOUR)] == [
        "—",
        "< 1 min",
        "45 min",
        "1.0 h",
        "3.2 h",
        "1.5 d",
    ]
    assert business_duration(30.5 * HOUR) == "30.5 h"  # a business day is not 24 h
    assert percent(2 / 3) == "67 %"
    assert charts.count_scale(7).ticks == [(0, "0"), (2, "2"), (4, "4"), (6, "6"), (8, "8")]
    assert [text for _at, text in charts.duration_scale(9.2 * HOUR).ticks] == [
        "0 h",
        "2.5 h",
        "5 h",
        "7.5 h",
        "10 h",
    ]
    assert [text for _at, text in charts.duration_scale(100 * HOUR).ticks] == [
        "0 d",
        "2 d",
        "4 d",
        "6 d",
    ]
