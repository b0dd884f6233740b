"""The layout and dependency rules of harness/ (issue 15), checked on the import
statements of every module, function-level imports included.

harness/ is split by stage, and a package may import only the packages below it:

    cli        the command line's helpers (progress line, demo, sweep file, docgen)
    api        the front door: run_sweep, regrade, validate, ...
    generate   asking the endpoint, the sweep loop          report   reading the store back
    grade      a grade from a stored answer and the exam    (core and store only)
    exams      exams as data, the kit their checks use
    runtime    processes, sandbox, Go toolchain, machine    store    the SQLite store
    core       errors, results, events, wire, quant, config (the shared vocabulary)

So: report never imports generate or grade (reporting reads the store and never
calls a model or builds anything); grade never imports generate (a grade is a
function of the stored answer and the exam); nothing imports the CLI or a test
double; no import cycle anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "harness"

CORE = {"errors", "results", "events", "wire", "quant", "config"}   # harness/<name>.py, the shared vocabulary
STAGES = {"runtime", "store", "exams", "grade", "generate", "report", "cli"}   # harness/<name>/

# What each part may import (besides itself). "core" is every CORE module.
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "runtime": {"core"},
    "store": {"core"},
    "exams": {"core", "runtime"},
    "grade": {"core", "runtime", "store", "exams"},
    "generate": {"core", "runtime", "store", "exams", "grade"},
    "report": {"core", "store"},
    "api": {"core", "runtime", "store", "exams", "grade", "generate", "report"},
    "cli": {"core", "runtime", "store", "exams", "grade", "generate", "report", "api"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(HARNESS.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in HARNESS.rglob("*.py")}


def _part(module: str) -> str:
    """harness.grade.driver -> grade; harness.errors -> core; harness.api -> api."""
    parts = module.split(".")
    if len(parts) == 1:
        return "core"      # the package's own __init__: a docstring
    if parts[1] in STAGES:
        return parts[1]
    return "api" if parts[1] == "api" else "core"


def _imports(path: Path, name: str) -> set[str]:
    """Every module name this module imports; ``from a import b`` gives ``a.b`` when
    that is a module of ours, else ``a``. Relative imports are resolved."""
    mods = _modules()
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join([*pkg[:len(pkg) - node.level + 1], *([base] if base else [])])
            for a in node.names:
                full = f"{base}.{a.name}"
                out.add(full if full in mods else base)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {d for d in _imports(p, name) if d in mods and d != name} for name, p in mods.items()}


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        path.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d)
        path.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_each_package_imports_only_the_packages_below_it():
    broken = []
    for mod, deps in _graph().items():
        part = _part(mod)
        for d in sorted(deps):
            if _part(d) != part and _part(d) not in ALLOWED[part]:
                broken.append(f"{mod} ({part}) imports {d} ({_part(d)})")
    assert not broken, "\n".join(broken)


def test_harness_never_imports_the_cli_or_a_test_double():
    for name, p in _modules().items():
        bad = {m for m in _imports(p, name) if m == "sweep" or m.startswith(("mock_server", "tests"))}
        if name == "harness.cli.docgen":
            bad.discard("sweep")   # docs/cli.md is click's own --help output (docgen says why)
        if name == "harness.cli.demo":
            bad = {m for m in bad if not m.startswith("mock_server.llm")}   # the demo's scripted models
        assert not bad, f"{p.relative_to(HARNESS.parent)} imports {sorted(bad)}"


def test_the_layout_is_the_one_the_rules_name():
    """Every folder of harness/ is a stage the rules know, every top-level module is
    core or the front door, and each stage package says what it holds."""
    folders = {p.name for p in HARNESS.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == STAGES
    top = {p.stem for p in HARNESS.glob("*.py")} - {"__init__"}
    assert top == CORE | {"api"}
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((HARNESS / stage / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"harness/{stage}/__init__.py has no docstring"


def test_the_rules_catch_a_wrong_import(tmp_path, monkeypatch):
    """The rule test itself can fail: a report module importing the grader is caught."""
    fake = tmp_path / "harness"
    for p in HARNESS.rglob("*.py"):
        dst = fake / p.relative_to(HARNESS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    (fake / "report" / "sneaky.py").write_text("from harness.grade import grading\n", encoding="utf-8")
    monkeypatch.setattr(__import__(__name__, fromlist=["HARNESS"]), "HARNESS", fake)
    try:
        test_each_package_imports_only_the_packages_below_it()
    except AssertionError as e:
        assert "harness.report.sneaky (report) imports harness.grade.grading (grade)" in str(e)
    else:
        raise AssertionError("a report module importing grade was not caught")
