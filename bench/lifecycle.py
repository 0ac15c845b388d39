"""Speed of the request lifecycle on the embedded default (issue 3, "Speed"; see BENCHMARKS.md).

    .venv/bin/python -m bench.lifecycle                  # the documented run: 10,000 parked
    .venv/bin/python -m bench.lifecycle --requests 1000  # a quick run

Starts `linkdesk up` (as `make run` does) on a fresh temporary state directory and free
loopback ports, imports bench companies with `linkdesk import-csv instances`, then measures:

1. filing: sequential `POST /api/v1/requests` -> 201 (establish_link, accountant console);
2. a task action: `POST /api/v1/tasks/{id}/claim` -> the request as it now stands;
3. approve -> `completed` visible in `GET /api/v1/requests/{id}` (one review step);
4. filing throughput of 8 concurrent HTTP clients vs 8 concurrent bare `start_workflow` callers
   of the same RequestWorkflow against the same Temporal server (rounds alternating which goes
   first): started for stored requests on LinkDesk's task queue, so the worker runs them as it
   runs filed ones, each side timed from its first call until the worker has parked all its
   requests (the comparison for the target); the call rates alone, and bare starts on a task
   queue no worker polls, for reference;
5. requests parked on review tasks: worker RSS, `GET /api/v1/tasks` latency as agent1, and a
   claim on a request parked long ago (evicted from the worker's cache, so replayed).

Every request concerns its own company, so no two open requests share (kind, console, instance).
The stack is stopped (Ctrl-C) when the benchmark ends, however it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

from bench.stack import Api, ApiError, EmbeddedStack, chunks, cpu_seconds, rss_mb

CONSOLE = "ACCT-01"  # accountant: establish_link needs one agent approval
PARTNER = "partner-acct"
AGENT = "agent1"
KIND = "establish_link"
WARMUP = 20
BARE_TASK_QUEUE = "linkdesk-bench-bare"  # polled by no worker: the bare start is all we time


# Figures -----------------------------------------------------------------------------------


@dataclass
class Series:
    """Latencies in seconds."""

    name: str
    values: list[float] = field(default_factory=list)

    def pct(self, p: int) -> float:
        ordered = sorted(self.values)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    def summary(self) -> dict[str, Any]:
        return {
            "n": len(self.values),
            "p50_ms": round(self.pct(50) * 1000, 1),
            "p90_ms": round(self.pct(90) * 1000, 1),
            "p99_ms": round(self.pct(99) * 1000, 1),
            "max_ms": round(max(self.values, default=float("nan")) * 1000, 1),
        }

    def line(self) -> str:
        s = self.summary()
        return (
            f"{self.name:<44} n={s['n']:<6} p50 {s['p50_ms']:>7.1f} ms  "
            f"p90 {s['p90_ms']:>7.1f} ms  p99 {s['p99_ms']:>7.1f} ms  max {s['max_ms']:>7.1f} ms"
        )


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def timed(action: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - started, result


def machine() -> dict[str, Any]:
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "nproc": os.cpu_count(),
        "cpu": model,
        "free_h": free,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, all CPUs (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def workflow_bytecode_current() -> bool:
    """Whether the workflow module has a .pyc that its next import uses, checked as Python does.

    The worker imports it anew for each workflow it holds (Temporal's sandbox): without one,
    that is a compile each time. The worker writes it at start-up (worker.main).
    """
    import importlib.util

    import workflows.request

    source = Path(str(workflows.request.__file__))
    try:
        header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:16]
    except OSError:
        return False
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    if int.from_bytes(header[4:8], "little"):  # hash-based: checked against the source itself
        return True
    stat = source.stat()
    return (int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")) == (
        int(stat.st_mtime) & 0xFFFFFFFF,
        stat.st_size & 0xFFFFFFFF,
    )


# Workload ----------------------------------------------------------------------------------


class Companies:
    """Bench company codes, each used by one request only."""

    def __init__(self, run: str, total: int) -> None:
        self.codes = [f"B{run}-{n:06d}" for n in range(total)]
        self._next = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> list[str]:
        with self._lock:
            if self._next + n > len(self.codes):
                raise RuntimeError("not enough bench companies imported")
            taken = self.codes[self._next : self._next + n]
            self._next += n
            return taken


def file_one(api: Api, code: str) -> dict[str, Any]:
    body = {"kind": KIND, "console_id": CONSOLE, "instance_id": code, "reason": "bench"}
    answer: dict[str, Any] = api.call("POST", "/api/v1/requests", body, expect=201)
    return answer


def review_task(agent: Api, request_id: str, timeout: float = 60.0) -> int:
    """The ID of the request's open review task, once the workflow has opened it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = agent.call("GET", f"/api/v1/requests/{request_id}")
        for task in request["tasks"]:
            if task["type"] == "review" and task["state"] == "open":
                return int(task["id"])
        time.sleep(0.01)
    raise RuntimeError(f"{request_id} has no open review task after {timeout:.0f}s")


def file_concurrently(port: int, token: str, codes: list[str], clients: int) -> tuple[float, int]:
    """File one request per code from `clients` threads; (seconds, failures)."""
    failures: list[str] = []
    start = threading.Barrier(clients + 1)

    def client(mine: list[str]) -> None:
        api = Api(port, token)
        start.wait()
        for code in mine:
            try:
                file_one(api, code)
            except (ApiError, OSError) as exc:
                failures.append(f"{code}: {exc}")
        api.close()

    threads = [threading.Thread(target=client, args=(part,)) for part in chunks(codes, clients)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for failure in failures[:5]:
        say(f"filing failed: {failure}")
    return elapsed, len(failures)


def stored_requests(var_dir: Path, codes: list[str]) -> tuple[str, list[Any]]:
    """Requests stored in the database as a filing stores them, but with no workflow yet.

    Returns LinkDesk's task queue and the workflows' inputs, for `bare_start_workflow`: started
    there, each RequestWorkflow runs in the worker exactly as after an HTTP filing.
    """
    from sqlalchemy import select

    from domain.kinds import DEFAULT_POLICY
    from domain.vocabulary import RequestKind, RequestStatus
    from service import create_app
    from service.extensions import db
    from service.models import Console, Instance, Request, StatusPeriod, User, utcnow
    from service.requests import workflow_input

    secret = (var_dir / "secret_key").read_text().strip()  # the one `linkdesk up` made
    app = create_app({"VAR_DIR": str(var_dir), "SECRET_KEY": secret})
    kind = RequestKind(KIND)
    with app.app_context():
        console = db.session.execute(select(Console).where(Console.code == CONSOLE)).scalar_one()
        partner = db.session.execute(select(User).where(User.username == PARTNER)).scalar_one()
        steps = [step.value for step in DEFAULT_POLICY[(kind, console.type)]]
        rows = []
        for instance in db.session.execute(select(Instance).where(Instance.code.in_(codes))):
            now = utcnow()
            rows.append(
                Request(
                    kind=kind,
                    console_id=console.id,
                    instance_id=instance[0].id,
                    requester_id=partner.id,
                    reason="bench",
                    status=RequestStatus.SUBMITTED,
                    open_key=f"{kind.value}:{console.id}:{instance[0].id}",
                    steps=steps,
                    created_at=now,
                    updated_at=now,
                )
            )
        db.session.add_all(rows)
        db.session.flush()
        for row in rows:
            db.session.add(
                StatusPeriod(request_id=row.id, status=row.status, started_at=row.created_at)
            )
        if len(rows) != len(codes):
            raise RuntimeError(f"{len(codes) - len(rows)} bench companies are missing")
        inputs = [workflow_input(row) for row in rows]
        db.session.commit()
        db.engine.dispose()
        return str(app.config["TEMPORAL_TASK_QUEUE"]), inputs


def bare_start_workflow(
    address: str, callers: int, total: int, stored: tuple[str, list[Any]] | None = None
) -> tuple[float, int]:
    """`client.start_workflow(RequestWorkflow.run, ...)` from `callers` concurrent coroutines.

    With `stored` (from `stored_requests`): the calls the web app makes after storing a
    filing, on LinkDesk's task queue, so the worker runs each workflow as after an HTTP filing.
    Without: the same workflow type and input shape on a task queue that no worker polls, so
    the start alone is timed (what Temporal accepts when nothing else runs).
    """
    from service.requests import start_request_workflow
    from workflows.client import TemporalSettings, connect
    from workflows.shared import Actor, RequestInput

    batch = uuid.uuid4().hex[:8]

    def synthetic(n: int) -> RequestInput:
        return RequestInput(
            request_id=f"BARE-{batch}-{n:06d}",
            number=1_000_000 + n,
            kind=KIND,
            console_id=1,
            console_code=CONSOLE,
            console_type="accountant",
            instance_id=1_000_000 + n,
            instance_code=f"BARE-{n:06d}",
            requester=Actor(1, PARTNER, "partner"),
            steps=["review"],
            first_response_hours=4.0,
            resolution_hours=16.0,
            calendar={
                "timezone": "UTC",
                "workdays": [0, 1, 2, 3, 4],
                "start": "09:00",
                "end": "17:00",
                "holidays": [],
            },
            created_at=datetime.now(UTC),
        )

    task_queue, inputs = stored if stored else (BARE_TASK_QUEUE, [])
    total = len(inputs) if stored else total

    async def run() -> tuple[float, int]:
        client = await connect(TemporalSettings(address=address))
        numbers = count()
        failures = 0

        async def caller() -> None:
            nonlocal failures
            while (n := next(numbers)) < total:
                data = inputs[n] if stored else synthetic(n)
                try:
                    await start_request_workflow(client, task_queue, data)
                except Exception as exc:  # counted and reported, not fatal
                    failures += 1
                    if failures <= 5:
                        say(f"bare start failed: {exc!r}")

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return time.perf_counter() - started, failures

    return asyncio.run(run())


class RssSampler:
    """Samples a process's RSS every half second in a background thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> RssSampler:
        self.peak = rss_mb(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class CpuMeter:
    """CPU seconds each part of the stack (and this benchmark) used within a `with` block, and
    what all other processes on the machine used meanwhile (`other`: a shared machine's noise).
    """

    def __init__(self, stack: EmbeddedStack) -> None:
        self.pids = stack.processes()
        self.used: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.pids.items()}
        now["bench"] = time.process_time()
        now["machine"] = machine_busy_seconds()
        return now

    def __enter__(self) -> CpuMeter:
        self._start = self._now()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        end = self._now()
        used = {role: end[role] - self._start[role] for role in end}
        machine_total = used.pop("machine")
        used["other"] = max(0.0, machine_total - sum(used.values()))
        self.used = {role: round(seconds, 1) for role, seconds in used.items()}
        self.used["wall"] = round(time.perf_counter() - self._wall, 1)


# Phases ------------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    stack: EmbeddedStack
    companies: Companies
    partner: Api
    agent: Api
    results: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    open_requests: int = 0

    def report(self, line: str) -> None:
        self.lines.append(line)
        say(line)

    def filing(self) -> list[str]:
        """Phase 1: sequential filings from one keep-alive client, paced, then back to back.

        Paced: one filing every `--pace` seconds, a rate the stack sustains, so each one meets
        a worker that has finished the previous one. Back to back: the next as soon as the last
        answered, faster than the worker completes their first steps, so filings queue behind
        its database writes (both are reported; see BENCHMARKS.md).
        """
        for code in self.companies.take(WARMUP):
            file_one(self.partner, code)
        self.open_requests += WARMUP
        self.wait_parked(timeout=300)
        self.wait_idle()
        paced = Series(f"1. filing, one every {self.args.pace * 1000:.0f} ms")
        ids = []
        for code in self.companies.take(self.args.filings):
            started = time.perf_counter()
            elapsed, answer = timed(file_one, self.partner, code)
            paced.values.append(elapsed)
            ids.append(answer["id"])
            time.sleep(max(0.0, self.args.pace - (time.perf_counter() - started)))
        self.open_requests += self.args.filings
        self.wait_parked(timeout=300)
        self.wait_idle()
        back_to_back = Series("1. filing, back to back")
        for code in self.companies.take(self.args.filings):
            elapsed, answer = timed(file_one, self.partner, code)
            back_to_back.values.append(elapsed)
            ids.append(answer["id"])
        self.open_requests += self.args.filings
        self.results["filing_paced"] = paced.summary()
        self.results["filing_paced"]["pace_s"] = self.args.pace
        self.results["filing_back_to_back"] = back_to_back.summary()
        self.report(paced.line())
        self.report(back_to_back.line())
        return ids

    def actions(self, request_ids: list[str]) -> None:
        """Phases 2 and 3: claim, then approve and wait for `completed` in GET.

        On the most recently filed requests, whose workflows the worker still holds; phase 5
        claims requests parked long ago, which the worker replays first.
        """
        claim = Series("2. task action: claim -> answer")
        approve = Series("   task action: approve -> answer")
        completed = Series("3. approve -> completed visible in GET")
        polls = 0
        for request_id in request_ids[-self.args.actions :]:
            task_id = review_task(self.agent, request_id)
            elapsed, answer = timed(self.agent.call, "POST", f"/api/v1/tasks/{task_id}/claim")
            task = next(t for t in answer["tasks"] if t["id"] == task_id)
            assert answer["status"] == "in_review" and task["state"] == "claimed", answer
            assert task["assignee"] == AGENT, answer
            claim.values.append(elapsed)

            decision = {"decision": "approve", "comment": "bench"}
            started = time.perf_counter()
            answer = self.agent.call("POST", f"/api/v1/tasks/{task_id}/complete", decision)
            approve.values.append(time.perf_counter() - started)
            assert answer["status"] in ("applying", "completed"), answer
            while answer["status"] != "completed":
                assert time.perf_counter() - started < 60, answer
                polls += 1
                answer = self.agent.call("GET", f"/api/v1/requests/{request_id}")
            completed.values.append(time.perf_counter() - started)
        self.open_requests -= len(completed.values)
        self.results["claim"] = claim.summary()
        self.results["approve_answer"] = approve.summary()
        self.results["approve_to_completed"] = completed.summary()
        self.results["approve_to_completed"]["gets_polled"] = polls
        for series in (claim, approve, completed):
            self.report(series.line())

    def throughput(self) -> None:
        """Phase 4: 8 HTTP clients vs 8 bare start_workflow callers, alternating rounds.

        Each side is timed from its first call until the worker has caught up (every one of its
        workflows parked on its review task): the rate the stack sustains when filings come that
        way. Both sides pay for the same workflow work inside their window, whereas the calls
        alone would leave a bare round's workflow work to be done after its clock stopped, at
        no cost to it (see BENCHMARKS.md). The call rates are reported too, and bare starts on
        a task queue nobody polls (Temporal's start capacity alone), for reference.
        """
        n = self.args.throughput
        totals = {side: {"calls_s": 0.0, "sustained_s": 0.0} for side in ("bare", "http")}
        unpolled_s = 0.0
        rounds = []
        for round_no in range(1, self.args.rounds + 1):
            with CpuMeter(self.stack) as cpu:
                unpolled_s_round, unpolled_failed = bare_start_workflow(
                    self.stack.temporal_address, self.args.clients, n
                )
            unpolled_s += unpolled_s_round
            order = ("bare", "http") if round_no % 2 else ("http", "bare")
            record: dict[str, Any] = {
                "order": list(order),
                "unpolled": {
                    "calls_per_s": round(n / unpolled_s_round, 1),
                    "failures": unpolled_failed,
                    "cpu_seconds": cpu.used,
                },
            }
            for side in order:
                record[side] = self.throughput_side(side, n)
                for key in ("calls_s", "sustained_s"):
                    totals[side][key] += record[side].pop(key)
            record["ratio"] = round(
                record["http"]["sustained_per_s"] / record["bare"]["sustained_per_s"], 3
            )
            record["calls_ratio"] = round(
                record["http"]["calls_per_s"] / record["bare"]["calls_per_s"], 3
            )
            rounds.append(record)
            self.report(
                f"4. round {round_no} ({order[0]} first): sustained HTTP "
                f"{record['http']['sustained_per_s']}/s vs bare "
                f"{record['bare']['sustained_per_s']}/s -> {record['ratio']:.0%}; calls alone "
                f"HTTP {record['http']['calls_per_s']}/s vs bare "
                f"{record['bare']['calls_per_s']}/s -> {record['calls_ratio']:.0%}; unpolled "
                f"{record['unpolled']['calls_per_s']}/s"
            )
            for side in order:
                per_request = record[side]["cpu_ms_per_request"]
                self.report(
                    f"   CPU ms per request, {side:<4}: "
                    + ", ".join(f"{role} {ms:.0f}" for role, ms in per_request.items())
                )
        total = n * len(rounds)
        rates = {
            side: {key: total / totals[side][key] for key in ("calls_s", "sustained_s")}
            for side in totals
        }
        self.results["throughput"] = {
            "clients": self.args.clients,
            "per_round": n,
            "rounds": rounds,
            "http_per_s": round(rates["http"]["sustained_s"], 1),
            "bare_per_s": round(rates["bare"]["sustained_s"], 1),
            "ratio": round(rates["http"]["sustained_s"] / rates["bare"]["sustained_s"], 3),
            "http_calls_per_s": round(rates["http"]["calls_s"], 1),
            "bare_calls_per_s": round(rates["bare"]["calls_s"], 1),
            "calls_ratio": round(rates["http"]["calls_s"] / rates["bare"]["calls_s"], 3),
            "unpolled_calls_per_s": round(total / unpolled_s, 1),
        }
        result = self.results["throughput"]
        self.report(
            f"4. filing throughput, {self.args.clients} clients, sustained (first call until "
            f"all parked): HTTP {result['http_per_s']}/s vs bare start_workflow "
            f"{result['bare_per_s']}/s = {result['ratio']:.0%}"
        )
        self.report(
            f"   calls alone: HTTP {result['http_calls_per_s']}/s vs bare "
            f"{result['bare_calls_per_s']}/s = {result['calls_ratio']:.0%}; unpolled "
            f"{result['unpolled_calls_per_s']}/s"
        )

    def throughput_side(self, side: str, n: int) -> dict[str, Any]:
        """One side of a round: `n` filings (HTTP) or bare starts of stored requests, timed
        until the calls returned and until the worker had parked all of them."""
        codes = self.companies.take(n)
        # Stored before the clock starts: the HTTP side's filings store theirs within it.
        stored = stored_requests(self.stack.var_dir, codes) if side == "bare" else None
        self.wait_idle()  # nothing left over from the other side
        with CpuMeter(self.stack) as cpu:
            if stored is not None:
                calls_s, failed = bare_start_workflow(
                    self.stack.temporal_address, self.args.clients, n, stored
                )
            else:
                calls_s, failed = file_concurrently(
                    self.stack.web_port, str(self.partner.token), codes, self.args.clients
                )
            self.open_requests += n - failed
            sustained_s = calls_s + self.wait_parked(timeout=900, poll=0.25)
        return {
            "calls_s": calls_s,
            "sustained_s": sustained_s,
            "calls_per_s": round(n / calls_s, 1),
            "sustained_per_s": round(n / sustained_s, 1),
            "failures": failed,
            "cpu_seconds": cpu.used,
            "cpu_ms_per_request": {
                role: round(seconds * 1000 / n, 1)
                for role, seconds in cpu.used.items()
                if role != "wall"
            },
        }

    def queue_total(self) -> int:
        return int(self.agent.call("GET", "/api/v1/tasks?per_page=1")["total"])

    def wait_idle(self, timeout: float = 1800) -> float:
        """Wait until the worker has done all it had to (notifications too): under 5 % of a CPU
        for two seconds. The seconds waited."""
        worker = self.stack.processes()["worker"]
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            before = sum(cpu_seconds(pid) for pid in worker)
            time.sleep(2)
            if sum(cpu_seconds(pid) for pid in worker) - before < 0.1:
                return time.perf_counter() - started
        raise RuntimeError(f"the worker was still busy after {timeout}s")

    def wait_parked(self, timeout: float, poll: float = 0.5) -> float:
        """Wait until every open request has its review task in the queue; the seconds taken."""
        started = time.perf_counter()
        while (total := self.queue_total()) < self.open_requests:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"only {total} of {self.open_requests} tasks after {timeout}s")
            time.sleep(poll)
        return time.perf_counter() - started

    def parked(self) -> None:
        """Phase 5: park many requests on review tasks; worker RSS and queue latency."""
        worker = self.stack.worker_pid()
        before = rss_mb(worker)
        n, clients = self.args.requests, self.args.clients
        codes = self.companies.take(n)
        with RssSampler(worker) as sampler, CpuMeter(self.stack) as cpu:
            filing_s, failed = file_concurrently(
                self.stack.web_port, str(self.partner.token), codes, clients
            )
            self.open_requests += n - failed
            self.report(
                f"5. filed {n - failed} requests with {clients} clients in {filing_s:.1f}s "
                f"({(n - failed) / filing_s:.1f}/s, {failed} failures)"
            )
            settle_s = self.wait_parked(timeout=1800)
            # Parked means at rest: measured once the last notifications are out too.
            idle_s = self.wait_idle()
        after = rss_mb(worker)
        parked = self.queue_total()
        cold = Series("5. claim on a long-parked request")
        for code in codes[: self.args.actions // 2]:
            found = self.agent.call("GET", f"/api/v1/requests?instance_id={code}")["items"]
            task_id = review_task(self.agent, found[0]["id"])
            elapsed, _answer = timed(self.agent.call, "POST", f"/api/v1/tasks/{task_id}/claim")
            cold.values.append(elapsed)
        queue = Series("5. GET /api/v1/tasks (agent1, per_page 50)")
        for _ in range(self.args.queue_reads):
            elapsed, _answer = timed(self.agent.call, "GET", "/api/v1/tasks")
            queue.values.append(elapsed)
        unassigned = Series("   GET /api/v1/tasks?assignee=unassigned")
        for _ in range(self.args.queue_reads // 2):
            elapsed, _answer = timed(self.agent.call, "GET", "/api/v1/tasks?assignee=unassigned")
            unassigned.values.append(elapsed)
        self.results["parked"] = {
            "filed": n - failed,
            "filing_seconds": round(filing_s, 1),
            "all_parked_after_filing_seconds": round(settle_s, 1),
            "worker_idle_after_parked_seconds": round(idle_s, 1),
            "open_tasks_in_queue": parked,
            "worker_rss_mb_before": round(before, 1),
            "worker_rss_mb_peak": round(sampler.peak, 1),
            "worker_rss_mb_parked": round(after, 1),
            "queue": queue.summary(),
            "queue_unassigned": unassigned.summary(),
            "claim_long_parked": cold.summary(),
            "cpu_seconds_filing_until_parked": cpu.used,
        }
        self.report(
            f"5. {parked} requests parked on review tasks {settle_s:.0f}s after the last filing, "
            f"worker idle {idle_s:.0f}s later; worker RSS {before:.0f} MB before, "
            f"peak {sampler.peak:.0f} MB, {after:.0f} MB parked"
        )
        self.report(
            "   CPU seconds, filing until parked: "
            + ", ".join(f"{role} {seconds:.0f}" for role, seconds in cpu.used.items())
        )
        self.report(queue.line())
        self.report(unassigned.line())
        self.report(cold.line())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="requests to park (5)")
    parser.add_argument(
        "--filings", type=int, default=300, help="sequential filings, paced and back to back (1)"
    )
    parser.add_argument("--pace", type=float, default=0.2, help="seconds between paced filings")
    parser.add_argument("--actions", type=int, default=100, help="claims and approvals (2, 3)")
    parser.add_argument("--throughput", type=int, default=400, help="filings per round (4)")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (4)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (4, 5)")
    parser.add_argument("--queue-reads", type=int, default=200, help="queue reads (5)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped by SIGTERM (a timeout, say), stop the stack too instead of orphaning it.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(128 + signal.SIGTERM))
    facts = machine()
    say(
        f"{facts['date']}; {facts['nproc']} CPUs ({facts['cpu']}); Python {facts['python']}; "
        f"load average {facts['load_average']}"
    )
    needed = WARMUP + 2 * args.filings + 2 * args.throughput * args.rounds + args.requests
    companies = Companies(uuid.uuid4().hex[:4].upper(), needed)
    with EmbeddedStack(keep_dir=args.keep) as stack:
        facts["workflow_pyc_current"] = workflow_bytecode_current()
        say(f"linkdesk up is running from {stack.var_dir}; importing {needed} companies")
        elapsed, _ = timed(stack.import_instances, companies.codes)
        say(f"imported in {elapsed:.1f}s")
        bench = Bench(
            args,
            stack,
            companies,
            Api.signed_in(stack.web_port, PARTNER),
            Api.signed_in(stack.web_port, AGENT),
        )
        ids = bench.filing()
        bench.wait_parked(timeout=300)
        bench.wait_idle()
        bench.actions(ids)
        bench.throughput()
        bench.parked()
        say("stopping linkdesk up")
    facts["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results = {"machine": facts, "args": vars(args), "results": bench.results}
    print("\n" + "\n".join(bench.lines))
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
