"""Docs generated from code stay in step with it."""

from harness.cli import docgen


def test_generated_docs_are_current():
    assert docgen.main(["--check"]) == 0, "run `python -m harness.cli.docgen` and commit docs/"


def test_cli_page_is_what_the_terminal_shows():
    """Each command's section of docs/cli.md is its real ``--help`` output (run through
    the group, as `sweep run -h` is): -h included, whatever ran before in this process."""
    from click.testing import CliRunner

    import sweep

    page = docgen.cli_markdown()
    for args in (["--help"], ["run", "--help"], ["exams", "validate", "-h"]):
        r = CliRunner().invoke(sweep.cli, args, prog_name="sweep", terminal_width=88, max_content_width=88)
        assert r.exit_code == 0, r.output
        assert r.output.rstrip() in page, args
        assert "-h, --help  " in r.output


def test_adding_an_exam_walkthrough_works(tmp_path, toolchain):
    """Follow docs/adding-an-exam.md literally: the exam it builds validates."""
    import re
    from pathlib import Path

    from harness.exams.exam import load_exam
    from harness.grade.validate import validate_exam

    doc = (Path(__file__).resolve().parent.parent / "docs" / "adding-an-exam.md").read_text()
    d = tmp_path / "fizzbuzz"
    (d / "prompts").mkdir(parents=True)
    (d / "bad").mkdir()
    prompt = doc[doc.index("```text\n") + len("```text\n"):doc.index("\n```\n\n## 3")]
    go = re.search(r"```go\n(.*?)```\n", doc, re.S).group(1)
    toml = re.search(r"```toml\n(.*?)```\n", doc, re.S).group(1)
    swapped = go.replace('case i%15 == 0:\n\t\t\tfmt.Println("FizzBuzz")\n\t\tcase i%3 == 0:\n\t\t\tfmt.Println("Fizz")',
                         'case i%3 == 0:\n\t\t\tfmt.Println("Fizz")\n\t\tcase i%15 == 0:\n\t\t\tfmt.Println("FizzBuzz")')
    assert swapped != go
    (d / "prompts" / "fizzbuzz.md.j2").write_text(prompt + "\n")
    (d / "reference.go").write_text(go)
    (d / "bad" / "order.go").write_text(swapped)
    (d / "exam.toml").write_text(toml)
    verdicts = validate_exam(load_exam(d), toolchain)
    assert [v.ok for v in verdicts] == [True, True], [v.describe() for v in verdicts]


def test_adding_an_exam_checks_and_gotest_walkthroughs_work(tmp_path, toolchain):
    """The checks and gotest sections: run their `sweep exams new` commands as the doc
    writes them, check that every file the doc shows is what was written, and that
    `sweep exams validate` passes on the result."""
    import re
    import shlex
    from pathlib import Path

    from click.testing import CliRunner

    import sweep
    from harness.exams.exam import load_exam
    from harness.grade.validate import validate_exam

    doc = (Path(__file__).resolve().parent.parent / "docs" / "adding-an-exam.md").read_text()
    shown = dict(re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```\n", doc, re.S))
    commands = re.findall(r"^sweep exams new (.+?) --dir ~/my-exams$", doc, re.M)
    assert len(commands) == 2 and len(shown) == 4, (commands, list(shown))
    runner = CliRunner()
    for cmd in commands:
        args = shlex.split(cmd)
        r = runner.invoke(sweep.cli, ["exams", "new", *args, "--dir", str(tmp_path)])
        assert r.exit_code == 0, r.output
        root = tmp_path / args[0]
        verdicts = validate_exam(load_exam(root), toolchain)
        assert verdicts and all(v.ok for v in verdicts), [v.describe() for v in verdicts]
    for rel, text in shown.items():
        assert (tmp_path / rel).read_text() == text, f"docs/adding-an-exam.md shows {rel} differently"
