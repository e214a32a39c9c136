"""The public API: what `import harness` gives, what it does not import, and no import cycles."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import harness
import harness.results

PACKAGE = Path(harness.__file__).parent


def test_import_harness_imports_neither_ray_nor_keras():
    heavy = ("ray", "keras", "tensorflow", "jax", "torch")
    code = f"import sys, harness; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve_and_private_modules_stay_private():
    for name in harness.__all__:
        assert getattr(harness, name) is not None
    assert harness.results.load_leaderboard is harness.load_leaderboard  # documented path
    public_modules = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    assert public_modules == {"cli", "results"}


def test_optional_parameters_are_keyword_only():
    for fn in (harness.run_search, harness.select_trial, harness.export_trial, harness.evaluate_trial,
               harness.dry_run, harness.run_suite, harness.sort_leaderboard):  # fmt: skip
        params = list(inspect.signature(fn).parameters.values())
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert all(p.default is p.empty for p in positional[1:]), fn.__name__


def _imports(path: Path) -> set[str]:
    """Every harness module a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            if node.module == "harness":
                found.add("harness")
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("harness"))
    return found


def test_no_import_cycles_anywhere_in_the_package():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = {m for m in _imports(path) if m != name}
    assert modules["harness"] and modules["harness.cli"]  # the walk found the imports
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        assert state.get(name) != 1, f"import cycle: {' -> '.join([*path, name])}"
        state[name] = 1
        for dep in modules.get(name, ()):
            if dep in modules:
                visit(dep, [*path, name])
        state[name] = 2

    for name in modules:
        visit(name, [])
