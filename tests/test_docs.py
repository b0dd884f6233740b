"""Docs generated from code stay in step with it."""

from harness import docgen


def test_generated_docs_are_current():
    assert docgen.main(["--check"]) == 0, "run `python -m harness.docgen` and commit docs/"


def test_adding_an_exam_walkthrough_works(tmp_path, toolchain):
    """Follow docs/adding-an-exam.md literally: the exam it builds validates."""
    import re
    from pathlib import Path

    from harness.exams import load_exam
    from harness.validate import validate_exam

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
