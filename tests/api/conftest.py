"""The API fuzzing's (tests/api/test_fuzz.py) surroundings: Hypothesis stores nothing in the
repository, and the figures of what was sent are printed at the end of the run."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

# Set before the fuzz tests are collected: Hypothesis writes there as soon as they are.
HYPOTHESIS_HOME = Path(tempfile.mkdtemp(prefix="linkdesk-hypothesis-"))
set_hypothesis_home_dir(HYPOTHESIS_HOME)


@dataclass
class FuzzFigures:
    """What the fuzzing sent and what came back, over every role and operation."""

    cases: int = 0
    operations: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # by check

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def lines(self) -> list[str]:
        by_class = Counter[str]()
        for status, count in self.statuses.items():
            by_class[f"{status // 100}xx"] += count
        failures = ", ".join(f"{name} {n}" for name, n in sorted(self.failures.items()))
        return [
            f"cases: {self.cases}",
            f"operations: {len(self.operations)}",
            f"roles: {len(self.roles)} ({', '.join(sorted(self.roles))})",
            "answers: " + ", ".join(f"{k} {v}" for k, v in sorted(by_class.items())),
            "statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
            f"5xx: {self.server_errors} (503 Temporal or database busy: {self.statuses[503]})",
            f"failures by check: {failures or 'none'}",
        ]


FIGURES = FuzzFigures()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(HYPOTHESIS_HOME, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.cases:
        terminalreporter.write_sep("=", "API fuzzing")
        for line in FIGURES.lines():
            terminalreporter.write_line(line)
