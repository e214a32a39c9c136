"""The public API: what `import harness` gives, what it does not import, and no import cycles."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import harness
import harness.results

PACKAGE = Path(harness.__file__).parent


def test_import_harness_imports_neither_ray_nor_keras():
    heavy = ("ray", "keras", "tensorflow", "jax", "torch")
    code = f"import sys, harness; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


CURATED = {
    "RESULTS_FORMAT", "__version__",
    "search", "Study", "load_study", "Data",
    "load_spec", "SearchSpec", "run_search", "dry_run", "DryRun", "run_suite",
    "load_leaderboard", "sort_leaderboard", "pareto_front", "load_curves", "select_trial",
    "export_trial", "evaluate_trial", "Evaluation", "predict_images",
    "TrialRecord", "EpochRecord", "Provenance", "TrialStatus", "StopReason", "ErrorKind",
    "HarnessError", "SpecError", "DataError", "ArgumentError", "ExportError", "TrialFailed", "InternalError",
}  # fmt: skip
"""The public API as its reference page lists it: a name added or dropped is a decision, made here too."""

UNDOCUMENTED: set[str] = set()
"""Exported names still without a docstring of their own (issue 22): empty it as each gets one."""


def _own_doc(obj: object) -> str:
    """The object's own docstring: not inherited, not a dataclass' generated signature, not Enum's."""
    doc = (vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__) or ""
    generated = doc.startswith(f"{getattr(obj, '__name__', '')}(") or doc == "An enumeration."
    return "" if generated else doc.strip()


def test_all_is_the_curated_api_and_exports_everything_the_package_imports():
    assert len(harness.__all__) == len(set(harness.__all__)), "a name listed twice in __all__"
    assert set(harness.__all__) == CURATED
    imported = {
        name for name, obj in vars(harness).items()
        if not name.startswith("_") and not inspect.ismodule(obj) and name != "annotations"  # __future__
    }  # fmt: skip
    assert imported == CURATED - {"__version__"}  # `from harness import *` gives all of it, and only it


def test_every_exported_object_is_defined_in_a_private_module_under_its_own_name():
    for name in sorted(CURATED - {"RESULTS_FORMAT", "__version__"}):
        obj = getattr(harness, name)
        assert inspect.isclass(obj) or inspect.isfunction(obj), name
        assert obj.__name__ == name and obj.__module__.startswith("harness._"), (name, obj.__module__)
        assert getattr(sys.modules[obj.__module__], name) is obj, name  # found where it says it lives


def test_every_exported_class_and_function_is_documented_in_its_docstring_and_the_reference():
    reference = "\n".join(
        (PACKAGE.parent / "docs" / "reference" / page).read_text() for page in ("api.md", "errors.md")
    )
    missing = set()
    for name in sorted(CURATED - {"RESULTS_FORMAT", "__version__"}):
        obj = getattr(harness, name)
        if not _own_doc(obj):
            missing.add(name)
        assert re.search(rf"::: harness\.{name}\b", reference), f"{name} has no entry in docs/reference"
    assert missing == UNDOCUMENTED, "exported without a docstring (or UNDOCUMENTED is out of date)"


def test_versions_agree_with_the_installed_package_and_the_results_format():
    assert harness.__version__ == importlib.metadata.version("harness")
    assert isinstance(harness.RESULTS_FORMAT, int) and harness.RESULTS_FORMAT >= 2


def test_results_is_a_documented_path_to_the_same_objects_and_private_modules_stay_private():
    for name in harness.results.__all__:
        obj = getattr(harness.results, name)
        assert getattr(harness, name, obj) is obj and _own_doc(obj), name  # the same function, documented
    assert harness.results.load_leaderboard is harness.load_leaderboard
    public_modules = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    assert public_modules == {"cli", "results"}


def test_optional_parameters_are_keyword_only():
    for fn in (harness.search, harness.load_study, harness.run_search, harness.select_trial,
               harness.export_trial, harness.evaluate_trial, harness.dry_run, harness.run_suite,
               harness.sort_leaderboard):  # fmt: skip
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


STAGES = (
    ("harness._errors", "harness._version", "harness._names", "harness._storage"),  # the ground
    ("harness._spec",),  # what a search is
    ("harness._data",),  # datasets
    ("harness._results",),  # records, tables, queries, kept models
    ("harness._trial",),  # the worker side
    ("harness._search",),  # the driver side
    ("harness._reports",),  # report, evaluation, export, benchmark suites
    ("harness._study", "harness.results", "harness.cli", "harness.__main__", "harness"),  # the public API
)
"""The package's stages, in the order data flows through them: a module imports only its own
stage and those before it (each subpackage's docstring says the same)."""


def _stage(module: str) -> int:
    matches = [(len(prefix), i) for i, prefixes in enumerate(STAGES) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]  # fmt: skip
    assert matches, f"{module} belongs to no stage: add it to STAGES"
    return max(matches)[1]


def test_imports_only_go_down_the_stages():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        upward += [f"{name} -> {dep}" for dep in sorted(_imports(path)) if _stage(dep) > _stage(name)]
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)
    assert len(list(PACKAGE.glob("*.py"))) <= 10  # the rest lives in the stages' subpackages


def test_every_leaderboard_and_curve_column_is_described_in_the_results_reference():
    from harness._results.record import ROW_FIELDS, USER_HYPERPARAMETERS, EpochRecord

    page = (PACKAGE.parent / "docs" / "reference" / "results.md").read_text()
    columns = {*ROW_FIELDS, USER_HYPERPARAMETERS, "hp_<name>", *(f.name for f in fields(EpochRecord))}
    assert not {c for c in columns if f"`{c}`" not in page}, "columns missing from docs/reference/results.md"
