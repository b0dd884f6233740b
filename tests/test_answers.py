"""harness.grade.answers: which code of an answer is graded, for each grader kind,
and what the grade records of it; real Go builds of single- and multi-file answers."""

from __future__ import annotations

import textwrap

import pytest

from harness.exams.exam import Exam, load_exam
from harness.grade.answers import Answer, classify, extract_answer, grade_answer, task_package
from harness.grade.grading import answer_files
from harness.results import Outcome
from tests.helpers import HELLO_GO, make_tiny_exam

BT = "```"


def fence(code: str, info: str = "go") -> str:
    return f"{BT}{info}\n{code}{BT}\n"


WRONG_GO = 'package main\n\nimport "fmt"\n\nfunc main() {\n\t// draft\n\tfmt.Println("hello,   world")\n\t_ = 1\n}\n'
MSG = 'package main\n\nconst msg = "hello, world"\n'
PRINT = 'package main\n\nimport "fmt"\n\nfunc show() { fmt.Println(msg) }\n'
MAIN = "package main\n\nfunc main() { show() }\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Exam:
    return make_tiny_exam(tmp_path_factory.mktemp("answers") / "exams")


def _gotest_exam(root) -> Exam:
    d = root / "probe"
    d.mkdir(parents=True)
    (d / "exam.toml").write_text(textwrap.dedent("""\
        id = "probe"
        title = "probe"
        version = 1
        grader = "gotest"
        [[tasks]]
        id = "probe"
        prompt = "p.md"
        points = 1
        reference = "ref.go"
        tests = ["probe_test.go"]
        checks = [{ name = "TestValue", points = 1 }]
        """))
    (d / "p.md").write_text("Write package probe.\n")
    (d / "ref.go").write_text("package probe\n\nfunc Value() int { return 1 }\n")
    (d / "probe_test.go").write_text('package probe\n\nimport "testing"\n\n'
                                     'func TestValue(t *testing.T) {\n\tif Value() != 1 {\n\t\tt.Fatal(Value())\n\t}\n}\n')
    return load_exam(d)


def test_the_task_package_decides(tiny, tmp_path):
    probe = _gotest_exam(tmp_path)
    assert task_package(tiny, tiny.tasks[0]) == "main"
    assert task_package(probe, probe.tasks[0]) == "probe"
    answer = fence("package probe\n\nfunc Value() int { return 1 }\n") + "Usage:\n" + fence(HELLO_GO)
    assert extract_answer(probe, probe.tasks[0], answer).code == "package probe\n\nfunc Value() int { return 1 }\n"
    assert extract_answer(tiny, tiny.tasks[0], answer).code == HELLO_GO
    assert answer_files(probe, "x") == {"answer.go": "x"} and answer_files(tiny, "x") == {"main.go": "x"}


def test_classification_carries_the_files_and_what_was_dropped():
    c = classify(Answer(fence("// file: msg.go\n" + MSG) + fence("// file: main.go\n" + MAIN + PRINT[13:])))
    assert c.gen_outcome == "ok" and set(c.files) == {"msg.go", "main.go"}
    assert c.source() == c.files
    rec = c.record()
    assert rec["files"] == c.files and len(rec["taken"]) == 2 and rec["dropped"] == [] and rec["refused"] == []
    single = classify(Answer(fence(HELLO_GO)))
    assert single.files == {} and single.source() == HELLO_GO and "files" not in single.record()


def test_a_shorter_fix_after_a_draft_is_graded(tiny, toolchain):
    g = grade_answer(tiny, tiny.tasks[0], Answer(fence(WRONG_GO) + "Oops, fixed:\n" + fence(HELLO_GO)), toolchain)
    assert g.outcome is Outcome.RAN and g.points == 3, g.explanation
    ex = g.details["extraction"]
    assert ex["code"] == HELLO_GO and ex["taken"] == ["block 2 (go)"]
    assert ex["dropped"] == ["block 1 (go): an earlier block of package main"]


def test_an_answer_in_three_named_files_builds_as_one_package(tiny, toolchain):
    answer = ("Three files:\n\n" + fence("// file: msg.go\n" + MSG) + "**print.go**\n" + fence(PRINT)
              + fence(MAIN, "go title=main.go") + "Test:\n" + fence(
                  '// file: main_test.go\npackage main\n\nimport "testing"\n\nfunc TestX(t *testing.T) {}\n'))
    g = grade_answer(tiny, tiny.tasks[0], Answer(answer.replace("\n", "\r\n")), toolchain)
    assert g.outcome is Outcome.RAN and g.points == 3, g.explanation
    ex = g.details["extraction"]
    assert list(ex["files"]) == ["msg.go", "print.go", "main.go"]
    assert ex["files"]["print.go"] == PRINT
    assert ex["dropped"] == ["block 4 (go, main_test.go): a test file: answers may not bring tests"]
    # Without their names, the blocks are not assembled: the last one alone does not build.
    g = grade_answer(tiny, tiny.tasks[0], Answer(fence(MSG) + fence(PRINT) + fence(MAIN)), toolchain)
    assert g.outcome is Outcome.BUILD_FAILED and "undefined: show" in g.explanation
    assert "block 1 (go): has no func main" in g.details["extraction"]["note"]


def test_refused_file_names_are_recorded(tiny, toolchain):
    answer = fence("// file: ../msg.go\n" + MSG) + fence("// file: main.go\n" + MAIN) + fence("// file: print.go\n" + PRINT)
    g = grade_answer(tiny, tiny.tasks[0], Answer(answer), toolchain)
    ex = g.details["extraction"]
    assert ex["refused"] == ["'../msg.go' (block 1): a path: the answer is one package, in one directory"]
    assert list(ex["files"]) == ["main.go", "print.go"]
    assert g.outcome is Outcome.BUILD_FAILED and "undefined: msg" in g.explanation


def test_a_gotest_answer_is_its_package_block(tmp_path, toolchain):
    probe = _gotest_exam(tmp_path)
    draft = "package probe\n\n// Value returns the value (draft).\nfunc Value() int {\n\tv := 0\n\treturn v\n}\n"
    answer = fence(draft) + "Fixed:\n" + fence("package probe\n\nfunc Value() int { return 1 }\n") + fence(HELLO_GO)
    g = grade_answer(probe, probe.tasks[0], Answer(answer), toolchain)
    assert g.outcome is Outcome.RAN and g.points == 1, g.explanation
    ex = g.details["extraction"]
    assert ex["taken"] == ["block 2 (go)"]
    assert ex["dropped"] == ["block 1 (go): an earlier block of package probe",
                             "block 3 (go): declares package main, not probe"]
