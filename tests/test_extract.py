"""Table-driven tests of harness.grade.extract: real-world answer shapes -> exact code."""

from __future__ import annotations

import random

import pytest

from harness.grade.extract import Extraction, extract_go, strip_thinking

PROG = """package main

import "fmt"

func main() {
\tfmt.Println("hello")
}
"""

PROG2 = """package main

import (
\t"fmt"
\t"os"
)

func main() {
\tfmt.Fprintln(os.Stderr, "v2")
\tos.Exit(0)
}
"""

SNIPPET = """func add(a, b int) int {
\treturn a + b
}
"""

BT = "```"


def fence(code: str, info: str = "go", mark: str = BT) -> str:
    return f"{mark}{info}\n{code}{mark}\n"


# (id, answer, code, method, blocks, thinking_removed)
CASES: list[tuple[str, str, str | None, str, int, bool]] = [
    ("go-fence-with-prose",
     "Here is the program:\n\n" + fence(PROG) + "\nIt prints hello.\n",
     PROG, "fence", 1, False),
    ("golang-label",
     "Sure!\n" + fence(PROG, "golang"),
     PROG, "fence", 1, False),
    ("Go-capitalised-label",
     fence(PROG, "Go"),
     PROG, "fence", 1, False),
    ("label-with-attributes",
     fence(PROG, "go title=main.go"),
     PROG, "fence", 1, False),
    ("filename-label",
     fence(PROG, "main.go"),
     PROG, "fence", 1, False),
    ("unlabelled-fence",
     "Solution:\n" + fence(PROG, ""),
     PROG, "fence", 1, False),
    ("tilde-fence",
     "~~~go\n" + PROG + "~~~\n",
     PROG, "fence", 1, False),
    ("tilde-fence-containing-backtick-line",
     "~~~go\n" + PROG + "/*\n```\n*/\n~~~\n",
     PROG + "/*\n```\n*/\n", "fence", 1, False),
    ("four-backticks-containing-three",
     "````go\n" + PROG + "\n/*\nUsage:\n```go\nx := 1\n```\n*/\nconst f = \"```\"\n````\n",
     PROG + "\n/*\nUsage:\n```go\nx := 1\n```\n*/\nconst f = \"```\"\n", "fence", 1, False),
    ("three-backticks-with-tilde-raw-string",
     fence("package main\n\nconst s = `\n~~~\n`\n\nfunc main() {}\n"),
     "package main\n\nconst s = `\n~~~\n`\n\nfunc main() {}\n", "fence", 1, False),
    ("bash-run-block-then-program",
     "Run with:\n" + fence("go run main.go\n", "bash") + "Code:\n" + fence(PROG),
     PROG, "fence", 1, False),
    ("program-then-bash-and-output",
     fence(PROG) + fence("$ go run .\n", "sh") + fence("hello\n", "text"),
     PROG, "fence", 1, False),
    ("snippet-then-full-program",
     "First the helper:\n" + fence(SNIPPET) + "Full program:\n" + fence(PROG2),
     PROG2, "fence", 2, False),
    ("two-full-programs-last-wins",
     fence(PROG) + "\nWait, improved version:\n" + fence(PROG2),
     PROG2, "fence", 2, False),
    ("full-program-then-snippet-explained",
     fence(PROG) + "The key part is:\n" + fence('fmt.Println("hello")\n'),
     PROG, "fence", 2, False),
    ("package-main-without-func-main-preferred-over-snippet",
     fence("package main\n\nfunc helper() {}\n") + fence(SNIPPET),
     "package main\n\nfunc helper() {}\n", "fence", 2, False),
    ("gomod-then-main-go",
     fence("module example.com/hello\n\ngo 1.22\n", "") + fence(PROG),
     PROG, "fence", 2, False),
    ("gomod-labelled-then-main-go",
     fence("module example.com/hello\n\ngo 1.22\n", "go.mod") + fence(PROG),
     PROG, "fence", 1, False),
    ("main-go-then-test-file",
     fence(PROG) + fence("package main\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) {}\n"),
     PROG, "fence", 2, False),
    ("other-language-with-package-main",
     fence(PROG, "text"),
     PROG, "fence", 1, False),
    ("only-python",
     "In Python:\n" + fence("print('hello')\n", "python"),
     None, "none", 0, False),
    ("only-bash-and-json",
     fence("go run .\n", "bash") + fence('{"a": 1}\n', "json"),
     None, "none", 0, False),
    ("snippet-only",
     "Add this function:\n" + fence(SNIPPET),
     SNIPPET, "fence", 1, False),
    ("longest-snippet",
     fence("func a() {}\n") + fence(SNIPPET) + fence("func b() {}\n"),
     SNIPPET, "fence", 3, False),
    ("go-block-without-go-code",
     fence("go run main.go\n"),
     None, "none", 1, False),
    ("think-with-draft-then-answer",
     "<think>\nDraft:\n" + fence(PROG) + "Hmm, better to use os.\n</think>\n\n" + fence(PROG2),
     PROG2, "fence", 1, True),
    ("thinking-tag-uppercase",
     "<THINKING>plan " + fence(PROG2) + "</THINKING>\n" + fence(PROG),
     PROG, "fence", 1, True),
    ("reasoning-tag",
     "<reasoning>draft</reasoning>" + fence(PROG),
     PROG, "fence", 1, True),
    ("several-think-sections",
     "<think>a</think>Intro\n<think>" + fence(PROG2) + "</think>\n" + fence(PROG),
     PROG, "fence", 1, True),
    ("unclosed-think-drops-rest",
     "<think>\nLet me write it:\n" + fence(PROG) + "and then",
     None, "none", 0, True),
    ("answer-then-unclosed-think",
     fence(PROG) + "<think>second thoughts " + fence(PROG2),
     PROG, "fence", 1, True),
    ("leading-close-tag",
     "The user wants hello.\n" + fence(PROG2) + "</think>\n\n" + fence(PROG),
     PROG, "fence", 1, True),
    ("only-thinking",
     "<think>I am not sure.</think>\n\n",
     None, "none", 0, True),
    ("truncated-missing-closing-fence",
     "Here:\n```go\npackage main\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n",
     "package main\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n", "fence-unclosed", 1, False),
    ("truncated-after-a-snippet",
     fence(SNIPPET) + "```go\n" + PROG,
     PROG, "fence-unclosed", 2, False),
    ("bare-code",
     PROG,
     PROG, "bare", 0, False),
    ("bare-code-with-prose-and-markers",
     "Here is the code.\n#START main.go#\n// main.go\n" + PROG + "#END main.go#\nDone.\n",
     PROG, "bare", 0, False),
    ("bare-code-next-to-bash-block",
     PROG + "\nRun it:\n" + fence("go run main.go\n", "bash"),
     PROG, "bare", 0, False),
    ("bare-code-truncated",
     "package main\n\nfunc main() {\n\tx := 1",
     "package main\n\nfunc main() {\n\tx := 1\n", "bare", 0, False),
    ("prose-mentioning-package-main",
     "Use package main and write func main to start.",
     None, "none", 0, False),
    ("empty", "", None, "none", 0, False),
    ("whitespace-only", "  \n\t\n ", None, "none", 0, False),
    ("prose-only",
     "I cannot help with that request.",
     None, "none", 0, False),
    ("crlf",
     ("Here:\n" + fence(PROG) + "Bye\n").replace("\n", "\r\n"),
     PROG, "fence", 1, False),
    ("windows-style-bare",
     ("// main.go\r\n" + PROG2).replace("\n", "\r\n").replace("\r\r\n", "\r\n"),
     PROG2, "bare", 0, False),
    ("indented-fence-in-list-item",
     "1. Create `main.go`:\n\n   ```go\n"
     + "".join(("   " + line if line else "") + "\n" for line in PROG.splitlines())
     + "   ```\n2. Run `go run .`\n",
     PROG, "fence", 1, False),
    ("list-item-closer-at-column-0",
     "- Code:\n    ```go\n    package main\n\n    func main() {\n    \tprintln(1)\n    }\n```\n",
     "package main\n\nfunc main() {\n\tprintln(1)\n}\n", "fence", 1, False),
    ("unicode-in-code",
     fence('package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("héllo, 世界 🌍")\n}\n'),
     'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("héllo, 世界 🌍")\n}\n',
     "fence", 1, False),
    ("blank-lines-and-trailing-spaces-trimmed",
     "```go\n\n\n" + PROG + "\n\n   \n```",
     PROG, "fence", 1, False),
    ("inline-triple-backticks-not-a-fence",
     "Wrap code in ```go ... ``` like so:\n" + fence(PROG),
     PROG, "fence", 1, False),
    # Rule 7: the prompt's file markers copied into the fence (2 of 33 real answers to
    # the scraper exam v2 port lost their build to them).
    ("prompt-markers-inside-go-fence",
     "Here is the updated file:\n\n```go\n#START scraper.go#\n" + PROG + "#END scraper.go#\n```\n",
     PROG, "fence", 1, False),
    ("markers-and-blank-lines-inside-fence",
     "```go\n\n#START main.go#\n\n" + PROG + "\n#END main.go#\n\n```\n",
     PROG, "fence", 1, False),
    ("filename-line-then-comment-inside-fence",
     fence("main.go\n// main.go: prints hello\n" + PROG),
     "// main.go: prints hello\n" + PROG, "fence", 1, False),
    ("marker-after-comment-inside-fence",
     fence("// main.go\n#START main.go#\n" + PROG + "// end of main.go\n#END main.go#\n"),
     "// main.go\n" + PROG + "// end of main.go\n", "fence", 1, False),
    ("markers-in-unclosed-fence",
     "```go\n#START main.go#\n" + PROG,
     PROG, "fence-unclosed", 1, False),
    ("markers-between-two-files-stay",
     fence("#START a.go#\n" + PROG + "#END a.go#\n#START b.go#\n" + SNIPPET + "#END b.go#\n"),
     PROG + "#END a.go#\n#START b.go#\n" + SNIPPET, "fence", 1, False),
    ("filename-inside-block-comment-stays",
     fence("/*\nmain.go\n*/\n" + PROG),
     "/*\nmain.go\n*/\n" + PROG, "fence", 1, False),
    ("raw-string-ending-in-a-filename-stays",
     fence(PROG + "\nconst usage = `run it as\nmain.go`\n"),
     PROG + "\nconst usage = `run it as\nmain.go`\n", "fence", 1, False),
]


@pytest.mark.parametrize(
    ("answer", "code", "method", "blocks", "thinking"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_extract_cases(answer: str, code: str | None, method: str, blocks: int, thinking: bool) -> None:
    got = extract_go(answer)
    assert got.code == code
    assert got.method == method
    assert got.blocks == blocks
    assert got.thinking_removed is thinking
    assert got.note


def test_case_ids_unique_and_enough() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids)) >= 30


@pytest.mark.parametrize(
    ("answer", "note"),
    [
        ("", "answer is empty"),
        ("   \n", "answer is empty"),
        ("<think>hmm</think>", "answer is empty after removing reasoning"),
        ("Just prose.", "no code block and no 'package main' line"),
        (fence("print(1)\n", "python"), "only a python block"),
        (fence("x\n", "bash") + fence("y\n", "text"), "only bash, text blocks"),
        (fence("go run .\n"), "code blocks contain no 'package' or 'func'"),
        (fence(SNIPPET) + fence(PROG) + fence(PROG2, "golang"),
         "picked block 3 of 3 (golang): package main and func main"),
        (fence(PROG, ""), "picked the only block (unlabelled): package main and func main"),
        ("```go\n" + PROG, "picked the only block (go): package main and func main; closing fence missing"),
    ],
)
def test_notes(answer: str, note: str) -> None:
    assert extract_go(answer).note == note


# Rule 7, line by line: (line, dropped) at the top and at the bottom of a go block.
MARKER_LINES: list[tuple[str, bool]] = [
    ("#START scraper.go#", True),
    ("#END scraper.go#", True),
    ("#START#", True),
    ("### main.go", True),
    ("# main.go", True),
    ("main.go", True),
    ("cmd/scraper/main.go", True),
    ("main.go:", True),
    ("File: main.go", True),
    ("file: main.go", True),
    ("Filename: scraper.go", True),
    ("Path: cmd/main.go", True),
    ("--- main.go ---", True),
    ("=== main.go ===", True),
    ("**main.go**", True),
    ("**File: main.go**", True),
    ("<main.go>", True),
    ("[main.go]", True),
    ("  main.go  ", True),
    # valid Go (or not a file marker): kept
    ("// main.go", False),
    ("// File: main.go", False),
    ("/* main.go */", False),
    ("//go:build linux", False),
    ("var name = \"main.go\"", False),
    ("const f = `main.go`", False),
    ("main.go`", False),
    ("go run main.go", False),
    ("main.py", False),
    ("Here is main.go:", False),
    ("}", False),
    (")", False),
]


@pytest.mark.parametrize(("line", "dropped"), MARKER_LINES, ids=[case[0] for case in MARKER_LINES])
def test_marker_lines_at_block_ends(line: str, dropped: bool) -> None:
    top = extract_go(fence(line + "\n" + PROG))
    bottom = extract_go(fence(PROG + line + "\n"))
    assert top.code == (PROG if dropped else _finish(line + "\n" + PROG))
    assert bottom.code == (PROG if dropped else PROG + line.rstrip() + "\n")
    assert ("dropped marker line" in top.note) is dropped
    assert ("dropped marker line" in bottom.note) is dropped


def _finish(code: str) -> str:
    return code.lstrip("\n").rstrip() + "\n"


def test_marker_lines_are_kept_in_the_middle() -> None:
    code = "package main\n\n#START x#\nfunc main() {}\n"
    assert extract_go(fence(code)).code == code


def test_marker_note_names_the_dropped_lines() -> None:
    got = extract_go(fence("#START main.go#\n" + PROG + "#END main.go#\n"))
    assert got.note == ("picked the only block (go): package main and func main; "
                        "dropped marker line(s) '#START main.go#', '#END main.go#'")


@pytest.mark.parametrize(
    ("text", "rest", "removed"),
    [
        ("no tags", "no tags", False),
        ("<think>x</think>y", "y", True),
        ("<Think>\nx\n</THINK>\ny", "\ny", True),
        ("a<thinking>x</thinking>b<reasoning>z</reasoning>c", "abc", True),
        ("plan </think>answer", "answer", True),
        ("answer <think>unfinished", "answer ", True),
        ("<think>x</think>ok<think>cut", "ok", True),
    ],
)
def test_strip_thinking(text: str, rest: str, removed: bool) -> None:
    assert strip_thinking(text) == (rest, removed)


def test_extraction_is_frozen() -> None:
    got = extract_go(fence(PROG))
    assert isinstance(got, Extraction)
    with pytest.raises(AttributeError):
        got.code = "x"  # type: ignore[misc]


# --- property-style: random programs survive every fence style exactly ---------

_LINES = [
    "\tx := 1", "\t// comment with ``` inside", '\ts := "~~~"', "\tif x > 0 {", "\t}",
    "\tfmt.Println(`raw`)", "", "\t/* block */", '\tr := "résumé ✓"', "\ty := x << 2",
    "\t\tdeep()", "    spaces := true",
]


def _random_program(rng: random.Random) -> str:
    body = [rng.choice(_LINES) for _ in range(rng.randint(0, 12))]
    code = "package main\n\nimport \"fmt\"\n\nfunc main() {\n" + "\n".join(body) + "\n}\n"
    return code.replace("\n\n}\n", "\n}\n")


@pytest.mark.parametrize("seed", range(20))
def test_fenced_code_roundtrips(seed: int) -> None:
    rng = random.Random(seed)
    code = _random_program(rng)
    for mark in ("```", "````", "~~~", "~~~~"):
        for info in ("go", "golang", "", "go title=main.go"):
            prose = rng.choice(["", "Here you go:\n\n", "Answer.\n"])
            got = extract_go(prose + fence(code, info, mark) + rng.choice(["", "\nDone."]))
            assert (got.code, got.method) == (code, "fence")


@pytest.mark.parametrize("seed", range(10))
def test_bare_and_wrapped_agree(seed: int) -> None:
    rng = random.Random(1000 + seed)
    code = _random_program(rng)
    assert extract_go(code).code == code
    assert extract_go(code.replace("\n", "\r\n")).code == code
    wrapped = f"<think>{fence(_random_program(rng))}</think>" + fence(code)
    assert extract_go(wrapped).code == code
    assert extract_go(fence(code)[:-4]).code == code  # closing fence lost
