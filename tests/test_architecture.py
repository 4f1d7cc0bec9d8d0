"""The package's import rules, checked by import-linter (``[tool.importlinter]`` in pyproject.toml).

Run by the test suite, so ``.ci/run`` fails on an import cycle, on library code that imports the
Airflow glue, the models or Airflow, on science code that does I/O, and on production code that
imports a test tool. Also: the test-only tools are not runtime dependencies.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
#: Imported by the tests only: in the ``test`` extra, never in ``[project] dependencies``.
TEST_ONLY = ("pytest", "pyftpdlib", "import-linter")


def _requirement_name(requirement: str) -> str:
    for separator in ("==", ">=", "<=", "~=", "!=", "<", ">", "[", ";", " "):
        requirement = requirement.split(separator, 1)[0]
    return requirement.strip().lower()


@pytest.mark.skipif(not LINT_IMPORTS.is_file(), reason="lint-imports is installed by the test extra (infra/install.sh)")
def test_import_contracts_are_kept():
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO_ROOT / "pyproject.toml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"lint-imports found broken import contracts:\n{report}"
    assert "0 broken" in report, report
    # Every contract ran (a contract lost from the configuration would pass silently otherwise).
    contracts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in report, report
    assert {c["type"] for c in contracts} >= {"layers", "forbidden", "acyclic_siblings"}


def test_test_tools_are_not_runtime_dependencies():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    test_extra = {_requirement_name(r) for r in project["optional-dependencies"]["test"]}
    assert not runtime & set(TEST_ONLY), f"move {sorted(runtime & set(TEST_ONLY))} to the `test` extra"
    assert set(TEST_ONLY) <= test_extra


def test_dags_import_no_test_tool():
    """The DAG files are not a package import-linter sees: their imports are read here."""
    offenders = []
    for path in sorted((REPO_ROOT / "dags").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(REPO_ROOT)}: {n}" for n in names
                          if n.split(".")[0] in ("pytest", "pyftpdlib", "importlinter", "tests")]
    assert offenders == [], offenders
