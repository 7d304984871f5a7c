"""The package's import layout: every import points down (import-linter's layered contracts in
pyproject.toml), no module reaches itself through its imports, and a jaxgan import inside a
function is a deliberate deferral that says why."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaxgan"


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_layered_contracts_are_kept():
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def import_cycles(package: str) -> list[list[str]]:
    """The import cycles between the package's modules (each found once, from its first module)."""
    graph = grimp.build_graph(package, cache_dir=None)
    cycles, done = [], set()
    for start in sorted(graph.modules):
        stack = [(start, [start])]
        seen = set()
        while stack:
            module, path = stack.pop()
            for nxt in sorted(graph.find_modules_directly_imported_by(module)):
                if nxt == start:
                    key = frozenset(path)
                    if key not in done:
                        done.add(key)
                        cycles.append(path + [start])
                elif nxt not in seen and nxt > start:  # a cycle is reported from its smallest module
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return cycles


def test_no_import_cycles():
    assert import_cycles("jaxgan") == []


def test_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "circle_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from circle_pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from circle_pkg import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("circle_pkg") == [["circle_pkg.a", "circle_pkg.b", "circle_pkg.a"]]


def deferred_imports_without_reason() -> list[str]:
    """'file:line' of each jaxgan import inside a function whose line has no '# deferred' reason."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                names = ([inner.module or ""] if isinstance(inner, ast.ImportFrom)
                         else [a.name for a in inner.names] if isinstance(inner, ast.Import) else [])
                if any(n == "jaxgan" or n.startswith("jaxgan.") for n in names):
                    if "# deferred" not in lines[inner.lineno - 1]:
                        found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    return sorted(set(found))


def test_jaxgan_imports_inside_functions_are_deliberate():
    assert deferred_imports_without_reason() == []


@pytest.mark.parametrize("module", ["jaxgan.predict", "jaxgan.cli"])
def test_no_tensorflow_behind_prediction(module):
    code = f"import sys, {module}; print('tensorflow' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stderr
