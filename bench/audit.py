"""Speed of the audit log at a million events (issue "Admin console"; BENCHMARKS.md).

    .venv/bin/python -m bench.audit                              # 1M events, both databases
    .venv/bin/python -m bench.audit --events 100000 --databases sqlite   # quicker

For each database (SQLite in a temporary directory; PostgreSQL in a scratch database
`--pg-database` on the server at `--pg-url`, dropped and created afresh), migrates, seeds the
demo directory, fills `audit_events` with `--events` rows in one set-based INSERT ... SELECT
(a year of events, 200 actors, 12 actions, 6 object types), and measures, warm (each timing
the median of `--repeat` runs after two untimed ones), as an admin through the Flask test
client in this process:

- `GET /api/v1/audit`: the first page, and a deep page (the cursor of the event 90 % down
  the log), without a filter and with each filter (actor, action, object, a day range);
- the `/admin/audit` page, first and deep;
- for comparison, the deep page read by OFFSET (the SQL alone).

With `--explain`, prints each common query's plan (EXPLAIN QUERY PLAN / EXPLAIN ANALYZE).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from bench.dashboard import SECRET_KEY, fresh_postgres, linkdesk, say, timed
from service import audit as trail
from service.audit import AuditFilters
from service.models import AuditEvent

ADMIN = "admin"  # a demo sign-in (password "demo")
ACTIONS = (
    "sign_in.succeeded",
    "sign_in.failed",
    "session.started",
    "session.ended",
    "token.created",
    "token.revoked",
    "user.created",
    "user.deactivated",
    "relationship.set",
    "request.approved",
    "request.rejected",
    "request.cancelled",
)
OBJECT_TYPES = (
    *("user",) * 4,
    *("apitoken",) * 2,
    *("user",) * 2,
    "relationship",
    *("request",) * 3,
)


def _case(expression: str, values: tuple[str, ...]) -> str:
    """A SQL CASE picking `values[expression % len(values)]` (portable: no arrays)."""
    whens = " ".join(f"WHEN {n} THEN '{value}'" for n, value in enumerate(values))
    return f"CASE ({expression}) % {len(values)} {whens} END"


def fill(url: str, events: int) -> float:
    """Insert `events` audit events, newest now, one every 31 seconds back; seconds taken."""
    engine = create_engine(url)
    action = _case("g", ACTIONS)
    object_type = _case("g", OBJECT_TYPES)
    columns = "at, actor, action, object_type, object_ref, detail, comment"
    picked = f"'user' || (g % 200), {action}, {object_type}, 'ref' || (g % 5000), '{{}}', NULL"
    if url.startswith("sqlite"):
        statement = (
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) "
            f"INSERT INTO audit_events ({columns}) SELECT "
            "datetime('now', '-' || (g * 31) || ' seconds') || '.000000', "
            f"{picked} FROM s"
        )
    else:
        statement = (
            f"INSERT INTO audit_events ({columns}) SELECT "
            "now() - g * interval '31 seconds', "
            f"{picked.replace(chr(39) + '{}' + chr(39), chr(39) + '{}' + chr(39) + '::json')} "
            "FROM generate_series(1, :n) AS g"
        )
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(statement), {"n": events})
        connection.execute(text("ANALYZE" if url.startswith("sqlite") else "ANALYZE audit_events"))
    engine.dispose()
    return time.perf_counter() - started


# The queries measured: name -> (query string of GET /api/v1/audit, the same filters).
def filters_of(day: date) -> dict[str, tuple[str, AuditFilters]]:
    """Each measured filter, as the API's query string and as the service's filters."""
    return {
        "no filter": ("", AuditFilters()),
        "actor": ("actor=user7", AuditFilters(actor="user7")),
        "action": ("action=token.revoked", AuditFilters(action="token.revoked")),
        "object": (
            "object_type=user&object_ref=ref1234",
            AuditFilters(object_type="user", object_ref="ref1234"),
        ),
        "day range": (f"from={day}&to={day}", AuditFilters(start=day, end=day)),
    }


def measure(url: str, var_dir: str, repeat: int, explain: bool) -> dict[str, float]:
    """Every timing of the audit log for the database as it stands."""
    from service import create_app
    from service.extensions import db

    app = create_app({"DATABASE_URL": url, "VAR_DIR": var_dir, "SECRET_KEY": SECRET_KEY})
    client = app.test_client()
    answer = client.post("/api/v1/tokens", json={"username": ADMIN, "password": "demo"})
    assert answer.status_code == 201, answer.get_json()
    headers = {"Authorization": f"Bearer {answer.get_json()['token']}"}
    pages = app.test_client()
    form = pages.get("/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf, "no CSRF token on the sign-in page"
    signed = pages.post(
        "/sign-in", data={"username": ADMIN, "password": "demo", "csrf_token": csrf.group(1)}
    )
    assert signed.status_code in (302, 303), signed.status_code

    with app.app_context():
        (total,) = db.session.execute(text("SELECT count(*) FROM audit_events")).one()
        # A day in the middle of the log.
        (middle,) = db.session.execute(
            text("SELECT at FROM audit_events ORDER BY at DESC, id DESC LIMIT 1 OFFSET :n"),
            {"n": total // 2},
        ).one()
        queries: dict[str, str] = {}
        cursors: dict[str, str] = {}
        for name, (query, filters) in filters_of(date.fromisoformat(str(middle)[:10])).items():
            queries[name] = query
            selected = trail.events_query(filters, None, AuditEvent.id).order_by(None).subquery()
            count = db.session.execute(select(func.count()).select_from(selected)).scalar_one()
            depth = max(int(count * 0.9) - 1, 0)
            row = db.session.execute(
                trail.events_query(filters, None, AuditEvent.at, AuditEvent.id)
                .offset(depth)
                .limit(1)
            ).one_or_none()
            if row is not None:
                cursors[name] = str(trail.Cursor(row[0], row[1]))
            say(f"  {name}: {count:,} events; deep page at event {depth:,}")
            if explain:
                for label, cursor in (("first", None), ("deep", row)):
                    query_sql = trail.events_query(
                        filters, trail.Cursor(cursor[0], cursor[1]) if cursor else None
                    ).limit(51)
                    compiled = query_sql.compile(db.engine, compile_kwargs={"literal_binds": True})
                    prefix = (
                        "EXPLAIN QUERY PLAN " if url.startswith("sqlite") else "EXPLAIN ANALYZE "
                    )
                    plan = db.session.execute(text(prefix + str(compiled))).all()
                    print(f"--- plan: {name}, {label} page")
                    for line in plan:
                        print("   ", line[-1])
        db.session.rollback()

    results: dict[str, float] = {}

    def get(path: str, browser: bool = False) -> None:
        answer = (pages if browser else client).get(path, headers={} if browser else headers)
        assert answer.status_code == 200, (path, answer.status_code, answer.get_data()[:300])

    for name, query in queries.items():
        first = f"/api/v1/audit?{query}"
        results[f"api: first page, {name}"] = timed(functools.partial(get, first), repeat)
        if name in cursors:
            deep_page = f"{first}{'&' if query else ''}cursor={cursors[name]}"
            results[f"api: deep page, {name}"] = timed(functools.partial(get, deep_page), repeat)
    results["page: /admin/audit, first"] = timed(lambda: get("/admin/audit", True), repeat)
    deep = cursors["no filter"]
    results["page: /admin/audit, deep"] = timed(
        lambda: get(f"/admin/audit?cursor={deep}", True), repeat
    )
    with app.app_context():
        depth = int(total * 0.9)
        offset_sql = text("SELECT * FROM audit_events ORDER BY at DESC, id DESC LIMIT 51 OFFSET :n")
        results["sql: deep page by OFFSET (comparison)"] = timed(
            lambda: db.session.execute(offset_sql, {"n": depth}).all(), max(repeat // 3, 3)
        )
        db.session.rollback()
        db.engine.dispose()
    return results


def run_database(kind: str, args: argparse.Namespace) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="linkdesk-bench-audit-"))
    try:
        if kind == "sqlite":
            url = f"sqlite:///{work / 'linkdesk.sqlite3'}"
        else:
            url = fresh_postgres(args.pg_url, args.pg_database)
        env = {
            **os.environ,
            "LINKDESK_DATABASE_URL": url,
            "LINKDESK_VAR_DIR": str(work),
            "LINKDESK_SECRET_KEY": SECRET_KEY,
        }
        linkdesk(env, "db", "upgrade")
        linkdesk(env, "seed-demo", "--allow-non-sqlite")
        seconds = fill(url, args.events)
        say(f"{kind}: {args.events:,} audit events inserted in {seconds:.1f}s")
        timings = measure(url, str(work), args.repeat, args.explain)
        for name, ms in timings.items():
            say(f"  {kind:<10} {name:<42} {ms:8.1f} ms")
        return {"fill_seconds": round(seconds, 1), **timings}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-database", default="linkdesk_bench_audit")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--explain", action="store_true", help="print the queries' plans")
    args = parser.parse_args(argv)
    say(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {kind: run_database(kind, args) for kind in args.databases.split(",")}
    names = list(next(iter(results.values())))
    print("| measured (p50, ms) | " + " | ".join(results) + " |")
    print("|---|" + "---:|" * len(results))
    for name in names:
        cells = " | ".join(f"{results[kind].get(name, float('nan')):.1f}" for kind in results)
        print(f"| {name} | {cells} |")
    say(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
