"""The dependency rules of harness/ (issue 15), checked on the import statements of
every module, function-level imports included:

* no import cycle anywhere;
* nothing in harness imports the CLI (``sweep``) or a test double (``mock_server.llm*``);
* the report stage never imports the generate or grade stages: reporting reads the
  store and never calls a model or builds anything;
* the grade stage never imports the generate stage (a grade is a function of the
  stored answer and the exam).
"""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "harness"

# Stage of each module that a rule speaks of (the others are shared plumbing:
# errors, results, proc, tables, stats, events, machine, ...).
GENERATE = {"client", "llamaswap", "local_server", "local_install", "served"}
GRADE = {"grading", "graders", "grader_stdio", "grader_checks", "grader_gotest", "answers", "extract", "driver",
         "checkkit", "exampkg", "gotool", "sandbox", "validate", "feedback"}
REPORT = {"report", "report_load", "report_reduce", "report_render", "report_quant", "html_report", "plots",
          "speed", "quant", "compare", "logs", "tables", "stats"}


def _imports(path: Path) -> set[str]:
    """Top-level names this module imports (``harness.x`` -> ``harness.x``, others as given)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "harness":
                out |= {f"harness.{a.name}" for a in node.names}
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    mods = {p.stem for p in HARNESS.glob("*.py")}
    graph = {}
    for p in HARNESS.glob("*.py"):
        deps = {m.split(".")[1] for m in _imports(p) if m.startswith("harness.")}
        graph[p.stem] = {d for d in deps if d in mods and d != p.stem}
    return graph


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


def test_harness_never_imports_the_cli_or_a_test_double():
    for p in HARNESS.glob("*.py"):
        bad = {m for m in _imports(p) if m == "sweep" or m.startswith(("mock_server.llm", "tests"))}
        if p.stem == "docgen":
            bad.discard("sweep")   # docs/cli.md is click's own --help output (harness/docgen.py says why)
        if p.stem == "demo":
            bad = {m for m in bad if not m.startswith("mock_server.llm")}   # the demo's scripted models
        assert not bad, f"harness/{p.name} imports {sorted(bad)}"


def test_stages_depend_one_way():
    graph = _graph()
    for mod, deps in graph.items():
        if mod in REPORT:
            assert not deps & (GENERATE | GRADE), f"report module {mod} imports {sorted(deps & (GENERATE | GRADE))}"
        if mod in GRADE:
            assert not deps & GENERATE, f"grade module {mod} imports {sorted(deps & GENERATE)}"


def test_the_rule_sets_name_real_modules():
    mods = {p.stem for p in HARNESS.glob("*.py")}
    stale = (GENERATE | GRADE | REPORT) - mods - {"feedback"}
    assert not stale, f"test_layers names modules that do not exist: {sorted(stale)}"
