"""The layers import one way: domain <- workflows <- activities and service <- worker.

Every import statement of every module counts, at its top or inside a function, so an import
moved into a function body to dodge a loop is still a wrong-way import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("domain", "workflows", "activities", "service", "worker", "bench")
OURS = frozenset({*LAYERS, "tests"})
# What each layer above `domain` must not import, by top-level package; `domain` imports only
# the standard library and itself.
NOT_FROM = {
    "workflows": frozenset({"service", "activities", "worker", "bench", "tests"}),
    "service": frozenset({"activities", "worker", "bench", "tests"}),
    "activities": frozenset({"worker", "bench", "tests"}),
    "worker": frozenset({"tests"}),
    "bench": frozenset({"tests"}),
}
# A migration runs against the schema of its day: it imports no code of ours, whose constants
# change with later releases.
MIGRATIONS = Path("service", "migrations", "versions")
# What the workflow sandbox must never load: the web app, the database, the side effects.
NOT_IN_SANDBOX = ("flask", "sqlalchemy", "service", "activities", "worker")


@dataclass(frozen=True)
class Import:
    """One imported module, absolute, where a module imports it."""

    path: Path
    line: int
    module: str

    @property
    def package(self) -> str:
        """The top-level package imported."""
        return self.module.partition(".")[0]

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def imports_of(root: Path, path: Path) -> Iterator[Import]:
    """Every module that `path` (relative to `root`) imports, anywhere in it."""
    package = path.with_suffix("").parts[:-1]
    tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, `level - 1` packages up
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield Import(path, node.lineno, module)


def modules_of(root: Path, layer: str) -> list[Path]:
    """The layer's Python files, relative to `root`."""
    return sorted(p.relative_to(root) for p in (root / layer).rglob("*.py"))


def goes_wrong_way(layer: str, package: str) -> bool:
    """Whether `layer` may not import `package`."""
    if layer == "domain":
        return package != "domain" and package not in sys.stdlib_module_names
    return package in NOT_FROM[layer]


def wrong_way(root: Path, layer: str) -> list[Import]:
    """The imports of a layer that go against the layering."""
    return [
        imported
        for path in modules_of(root, layer)
        for imported in imports_of(root, path)
        if goes_wrong_way(layer, imported.package)
    ]


def migrations_importing_ours(root: Path) -> list[Import]:
    """The imports of a package of ours by a migration."""
    return [
        imported
        for path in sorted(p.relative_to(root) for p in (root / MIGRATIONS).glob("*.py"))
        for imported in imports_of(root, path)
        if imported.package in OURS
    ]


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_the_layers_below_it(layer: str) -> None:
    """Each layer imports only what lies below it, nowhere in its modules."""
    assert modules_of(ROOT, layer)
    found = wrong_way(ROOT, layer)
    assert not found, "wrong-way imports:\n" + "\n".join(map(str, found))


def test_migrations_import_no_package_of_ours() -> None:
    """An old migration keeps doing what it did: it never imports today's constants."""
    found = migrations_importing_ours(ROOT)
    assert not found, "migrations importing LinkDesk code:\n" + "\n".join(map(str, found))


def test_tests_use_public_temporalio_names_and_no_other_test_module() -> None:
    """Tests rely on temporalio's public API only (a private name may change in any release),
    and share helpers through conftest and helper modules, never by importing a test module."""
    found = [
        imported
        for path in modules_of(ROOT, "tests")
        for imported in imports_of(ROOT, path)
        if (imported.package == "temporalio" and "._" in f".{imported.module}")
        or imported.module.rpartition(".")[2].startswith("test_")
    ]
    private_names = [
        f"{path}:{node.lineno} imports {alias.name} from {node.module}"
        for path in modules_of(ROOT, "tests")
        for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("temporalio")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not found and not private_names, "\n".join([*map(str, found), *private_names])


def test_an_import_inside_a_function_or_relative_counts(tmp_path: Path) -> None:
    """The check finds a wrong-way import wherever it is written and however it is spelled."""
    (tmp_path / "workflows" / "inner").mkdir(parents=True)
    (tmp_path / "workflows" / "inner" / "late.py").write_text(
        "import datetime\n"
        "from domain import kinds\n"
        "\n"
        "\n"
        "def late():\n"
        "    from service.models import Request\n"
        "    from ...activities import directory\n"
        "    from .. import shared\n"
    )
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "rules.py").write_text("import json\nimport flask\n")
    (tmp_path / MIGRATIONS).mkdir(parents=True)
    (tmp_path / MIGRATIONS / "0001_start.py").write_text(
        "from alembic import op\nfrom domain.kinds import KINDS\n"
    )

    late = Path("workflows", "inner", "late.py")
    assert [str(i) for i in wrong_way(tmp_path, "workflows")] == [
        f"{late}:6 imports service.models",
        f"{late}:7 imports activities",
    ]
    assert [str(i) for i in wrong_way(tmp_path, "domain")] == [
        f"{Path('domain', 'rules.py')}:2 imports flask"
    ]
    assert [str(i) for i in migrations_importing_ours(tmp_path)] == [
        f"{MIGRATIONS / '0001_start.py'}:2 imports domain.kinds"
    ]


def test_the_workflow_loads_no_web_database_or_side_effect_code() -> None:
    """Importing the workflow, as the sandbox does, loads none of Flask, SQLAlchemy, the
    service, the activities or the worker."""
    code = (
        "import sys, workflows.request\n"
        "for name in sorted(sys.modules):\n"
        f"    if name.partition('.')[0] in {NOT_IN_SANDBOX!r}:\n"
        "        print(name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "loaded with the workflow:\n" + done.stdout
