"""The library's front door (harness.api): its declared names, each documented in
docs/python-api.md; a sweep, a regrade, a validation and a file grade through it
against a real loopback endpoint and real Go builds, reporting typed events and
printing nothing."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from harness import api
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.events import Event, EventKind
from harness.runtime import machine
from harness.store.db import open_existing
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam

DOC = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"


def test_public_names_exist_and_are_documented():
    assert sorted(api.__all__) == sorted(set(api.__all__))
    for name in api.__all__:
        assert hasattr(api, name), name
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## The front door"):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    missing = [n for n in api.__all__ if not re.search(rf"`[^`\n]*\b{n}\b[^`\n]*`", section)]
    assert missing == [], f"not documented in docs/python-api.md's front-door section: {missing}"


def test_the_documented_functions_are_the_callables():
    functions = {n for n in api.__all__ if inspect.isfunction(getattr(api, n))}
    assert functions == {"grade_file", "list_models", "regrade", "run_sweep", "toolchain", "validate",
                         "write_html_report"}


def test_run_sweep_then_regrade_typed_and_silent(tmp_path, toolchain, capsys, monkeypatch):
    monkeypatch.setenv("SWEEP_CHECK_TIME_SCALE", "1.5")
    exam = make_tiny_exam(tmp_path / "exams")
    events: list[Event] = []
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        cfg = RunConfig(endpoint=llm.url, models=("m",), exams=(str(exam.root),), seeds=(1, 2),
                        out_dir=tmp_path / "out", retries=0)
        summary = api.run_sweep(cfg, progress=events.append, command="notebook")
    assert summary.ok and summary.total_cells == 2 and summary.generated == 2 and summary.graded == 2
    assert summary.outcomes == {"ran": 2} and summary.elapsed_s > 0
    assert all(isinstance(e.kind, EventKind) for e in events)
    graded = [e for e in events if e.kind is EventKind.GRADED]
    assert [(e.points, e.max_points) for e in graded] == [(3, 3), (3, 3)]
    assert all(not e.message.startswith("3/3") for e in graded)    # points are fields, not text
    assert [e.done for e in events if e.kind is EventKind.GENERATED] == [1, 2]
    assert any(e.kind is EventKind.NOTICE and "isolation" in e.message.lower() for e in events)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""                           # the library never prints

    st = open_existing(tmp_path / "out")
    [run] = st.query("SELECT command, host_json FROM runs")
    assert run["command"] == "notebook"
    stored = json.loads(run["host_json"])["machine_settings"]
    assert stored == machine.read().to_json() and stored["check_time_scale"] == "1.5"
    st.close()

    again: list[Event] = []
    result = api.regrade(tmp_path / "out", progress=again.append)
    assert result.graded == 0 and "already had a grade by the current grader" in result.description
    assert capsys.readouterr().out == ""


def test_run_sweep_refuses_a_model_the_endpoint_does_not_serve(tmp_path):
    exam = make_tiny_exam(tmp_path / "exams")
    with ScriptedLLM({"m": Reply("x")}) as llm:
        cfg = RunConfig(endpoint=llm.url, models=("typo",), exams=(str(exam.root),), out_dir=tmp_path / "out")
        with pytest.raises(ConfigError, match="does not serve 'typo'"):
            api.run_sweep(cfg)
        assert llm.chat_requests() == []


def test_validate_and_grade_file(tmp_path, toolchain):
    exam = make_tiny_exam(tmp_path / "exams")
    [found] = list(api.validate([str(exam.root)]))
    assert found.exam.id == "tiny" and found.ok and [v.expectation.name for v in found.verdicts] == ["reference"]

    answer = tmp_path / "answer.md"
    answer.write_text("Here:\n\n" + scripted_fence(HELLO_GO))
    g = api.grade_file(answer, str(exam.root), "hello")
    assert (g.task.id, g.grade.points, g.grade.max_points) == ("hello", 3, 3)
    prose = tmp_path / "prose.md"
    prose.write_text("No code here, sorry.")
    with pytest.raises(ConfigError, match="contains no Go code"):
        api.grade_file(prose, str(exam.root), "hello")


def test_machine_settings_are_read_in_one_place(monkeypatch):
    for var in machine.VARIABLES.values():
        monkeypatch.delenv(var, raising=False)
    assert machine.read() == machine.Machine()
    m = machine.read({"SWEEP_GO": "/opt/go/bin/go", "SWEEP_ISOLATION": "", "SWEEP_SANDBOX_RUN_UID": "7000"})
    assert (m.go, m.isolation, m.sandbox_run_uid, m.sandbox_build_uid) == ("/opt/go/bin/go", "auto", 7000, 64190)
    with pytest.raises(ConfigError, match="SWEEP_SANDBOX_BUILD_UID"):
        machine.read({"SWEEP_SANDBOX_BUILD_UID": "root"})
    root = Path(__file__).resolve().parent.parent / "harness"
    names = "|".join(v for k, v in machine.VARIABLES.items() if k not in ("llama_server", "local_model"))
    read = re.compile(rf"""(environ(\.get)?|getenv)\W+["']({names})["']""")
    readers = sorted(p.name for p in root.glob("*.py") if p.name != "machine.py" and read.search(p.read_text()))
    assert readers == []


def test_library_code_never_prints():
    """Output is the CLI's: harness reports through return values and progress events.
    The exceptions are programs of their own: docgen's `python -m` entry point and the
    check driver, whose stdout is its protocol with the grader (a child process)."""
    root = Path(__file__).resolve().parent.parent / "harness"
    writes = re.compile(r"^\s*[^#\n]*\b(print\(|click\.echo|sys\.std(out|err)\.write)", re.M)
    found = sorted(p.name for p in root.rglob("*.py") if writes.search(p.read_text(encoding="utf-8")))
    assert found == ["docgen.py", "driver.py"]
