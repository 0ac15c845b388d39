"""Speed of the manager dashboard as history grows (issue "Manager dashboard"; BENCHMARKS.md).

    .venv/bin/python -m bench.dashboard                          # 10k, 100k, 1M on both
    .venv/bin/python -m bench.dashboard --sizes 10000,100000 --databases sqlite   # quicker

For each database (SQLite in a temporary directory; PostgreSQL in a scratch database
`--pg-database` on the server at `--pg-url`, dropped and created afresh), migrates, seeds the
demo directory, then grows the history with `linkdesk demo-history` to each size in turn and
measures, warm (each timing repeated `--repeat` times after two untimed runs), for a 90-day
range ending today:

- each dashboard panel's database work (the `service.metrics` call behind it);
- the whole dashboard page, `GET /api/v1/metrics/turnaround` (JSON and CSV);
- the agent queue (`GET /api/v1/tasks`, the `/queue` page) and the request list
  (`GET /api/v1/requests`, the `/requests` page) as a manager sees them.

HTTP calls go through the Flask test client in this process (no network, no gunicorn), so a
figure is the app's and the database's time. Results are printed as a table (median of the
repeats, milliseconds) and written as JSON with `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.stack import LINKDESK

RANGE_DAYS = 90
MANAGER = "manager"  # a demo sign-in (password "demo")
AGENT = "agent1"
SECRET_KEY = "benchmark-only-" + "k" * 40  # the benchmark's own throwaway database


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def linkdesk(env: dict[str, str], *args: str) -> str:
    """Run the operator command against the benchmark's database."""
    done = subprocess.run([LINKDESK, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"linkdesk {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def fresh_postgres(server_url: str, database: str) -> str:
    engine = create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    engine.dispose()
    return f"{server_url}/{database}"


def timed(action: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of `repeat` runs after two warm-up runs."""
    for _ in range(2):
        action()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def measure(database_url: str, var_dir: str, repeat: int) -> dict[str, float]:
    """Every timing for the database as it stands."""
    from service import create_app
    from service.extensions import db, reading_only
    from service.metrics import figures, report
    from service.metrics.backlog import backlog
    from service.metrics.selection import Selection
    from service.models import utcnow

    app = create_app({"DATABASE_URL": database_url, "VAR_DIR": var_dir, "SECRET_KEY": SECRET_KEY})
    client = app.test_client()
    tokens = {}
    for username in (MANAGER, AGENT):
        answer = client.post("/api/v1/tokens", json={"username": username, "password": "demo"})
        body = answer.get_json()
        assert answer.status_code == 201, body
        tokens[username] = {"Authorization": f"Bearer {body['token']}"}
    pages = app.test_client()
    form = pages.get("/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf, "no CSRF token on the sign-in page"
    signed = pages.post(
        "/sign-in", data={"username": MANAGER, "password": "demo", "csrf_token": csrf.group(1)}
    )
    assert signed.status_code in (302, 303), signed.status_code

    today = utcnow().date()
    start = today - timedelta(days=RANGE_DAYS - 1)
    query = f"from={start.isoformat()}&to={today.isoformat()}"
    results: dict[str, float] = {}

    def get(url: str, headers: dict[str, str] | None = None, browser: bool = False) -> None:
        answer = (pages if browser else client).get(url, headers=headers or {})
        assert answer.status_code == 200, (url, answer.status_code, answer.get_data()[:300])

    with app.app_context():
        selection = Selection(start, today)
        now = datetime.now(UTC)
        panels: dict[str, Callable[[], Any]] = {
            "panel: tiles": lambda: report.tiles(selection, now),
            "panel: created vs resolved per day": lambda: figures.daily(selection),
            "panel: resolution by kind": lambda: figures.figures(selection, "kind"),
            "panel: resolution histogram": lambda: figures.resolution_histogram(selection),
            "panel: backlog by age": lambda: backlog(selection, now),
            "panel: per-agent table": lambda: figures.agents(selection),
            "panel: figures by week": lambda: figures.figures(selection, "week"),
        }
        for name, panel in panels.items():
            with reading_only():
                results[name] = timed(panel, repeat)
            db.session.rollback()
    manager, agent = tokens[MANAGER], tokens[AGENT]
    calls: dict[str, Callable[[], None]] = {
        "page: /dashboard": lambda: get(f"/dashboard?{query}", browser=True),
        "api: metrics/turnaround": lambda: get(f"/api/v1/metrics/turnaround?{query}", manager),
        "api: metrics/turnaround by kind": lambda: get(
            f"/api/v1/metrics/turnaround?{query}&group_by=kind", manager
        ),
        "api: metrics/turnaround CSV": lambda: get(
            f"/api/v1/metrics/turnaround?{query}&group_by=kind",
            {**manager, "Accept": "text/csv"},
        ),
        "api: agent queue /tasks": lambda: get("/api/v1/tasks", agent),
        "page: /queue": lambda: get("/queue", browser=True),
        "api: request list /requests": lambda: get("/api/v1/requests", manager),
        "page: /requests": lambda: get("/requests", browser=True),
    }
    for name, call in calls.items():
        results[name] = timed(call, repeat)
    with app.app_context():
        db.engine.dispose()
    return results


def run_database(kind: str, sizes: list[int], args: argparse.Namespace) -> dict[int, Any]:
    work = Path(tempfile.mkdtemp(prefix="linkdesk-bench-dashboard-"))
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
        have, found = 0, {}
        for size in sizes:
            started = time.perf_counter()
            linkdesk(
                env,
                "demo-history",
                "--requests",
                str(size - have),
                "--seed",
                str(size),
                "--allow-non-sqlite",
            )
            have = size
            generated = time.perf_counter() - started
            say(f"{kind}: history now {size:,} requests (+{generated:.0f}s to generate)")
            timings = measure(url, str(work), args.repeat)
            found[size] = {"generate_seconds": round(generated, 1), "ms": timings}
            for name, ms in timings.items():
                say(f"  {kind} {size:>9,}  {name:<36} {ms:8.1f} ms")
        return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(results: dict[str, dict[int, Any]], sizes: list[int]) -> str:
    names = list(next(iter(next(iter(results.values())).values()))["ms"])
    header = "| measured (p50, ms) | " + " | ".join(
        f"{db} {size:,}" for db in results for size in sizes
    )
    lines = [header + " |", "|---" * (1 + len(results) * len(sizes)) + "|"]
    for name in names:
        cells = [f"{results[db][size]['ms'][name]:.1f}" for db in results for size in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-database", default="linkdesk_bench_dashboard")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    say(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; load average {os.getloadavg()}"
    )
    results = {kind: run_database(kind, sizes, args) for kind in args.databases.split(",")}
    print()
    print(table(results, sizes))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
