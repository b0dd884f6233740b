"""Table-driven tests of harness.grade.extract: real-world answer shapes -> exact code."""

from __future__ import annotations

import random

import pytest

from harness.grade.extract import MAX_FILES, Extraction, extract_go, join_files, strip_thinking

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
         "took block 3 of 3 (golang): the last complete block of package main with func main; "
         "dropped block 1 (go): no package clause (a snippet); block 2 (go): an earlier block of package main"),
        (fence(PROG, ""), "took the only block (unlabelled): package main with func main"),
        ("```go\n" + PROG, "took the only block (go): package main with func main; closing fence missing"),
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
    assert got.note == ("took the only block (go, main.go): package main with func main; "
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


# --- which block is graded: one rule for programs and packages (rules 5-7, 9) ---------

# A package answer (a gotest exam's task): a long buggy draft, then a shorter fix.
PKG_DRAFT = """package copier

import "sync"

// Copier copies (draft: the counter races).
type Copier struct {
\tn int
}

func New() *Copier { return &Copier{} }

func (c *Copier) Run(ids []int) int {
\tvar wg sync.WaitGroup
\tfor range ids {
\t\twg.Add(1)
\t\tgo func() { defer wg.Done(); c.n++ }()
\t}
\twg.Wait()
\treturn c.n
}
"""

PKG_FIX = """package copier

type Copier struct{}

func New() *Copier { return &Copier{} }

func (c *Copier) Run(ids []int) int { return len(ids) }
"""

PKG_TYPES = "package copier\n\ntype Copier struct{ n int }\n"
PKG_FUNCS = "package copier\n\nfunc New() *Copier { return &Copier{} }\n"
PKG_TEST = 'package copier\n\nimport "testing"\n\nfunc TestRun(t *testing.T) {}\n'

BUFFER = "// file: buffer.go\npackage main\n\ntype buffer struct{ items []string }\n"
FLUSH = "// file: flush.go\npackage main\n\nfunc (b *buffer) flush() { b.items = nil }\n"
MAIN = "// file: main.go\npackage main\n\nfunc main() {\n\tb := &buffer{}\n\tb.flush()\n}\n"


def _files(*pairs: tuple[str, str]) -> dict[str, str]:
    return dict(pairs)


# (id, answer, package, code, files, substrings of the note)
CHOICE: list[tuple[str, str, str, str | None, dict[str, str], tuple[str, ...]]] = [
    ("package-buggy-draft-then-shorter-fix",
     "First try:\n" + fence(PKG_DRAFT) + "That races; fixed:\n" + fence(PKG_FIX),
     "copier", PKG_FIX, {}, ("took block 2 of 2 (go): the last complete block of package copier",
                             "dropped block 1 (go): an earlier block of package copier")),
    ("program-long-draft-then-shorter-fix",
     fence(PROG2) + "Simpler:\n" + fence(PROG),
     "main", PROG, {}, ("took block 2 of 2", "block 1 (go): an earlier block of package main")),
    ("two-unnamed-fences-of-one-package",
     "Types:\n" + fence(PKG_TYPES) + "Functions:\n" + fence(PKG_FUNCS),
     "copier", PKG_FUNCS, {}, ("dropped block 1 (go): an earlier block of package copier",)),
    ("package-then-test-file-in-second-fence",
     fence(PKG_FIX) + "And a test:\n" + fence(PKG_TEST),
     "copier", PKG_FIX, {}, ("took block 1 of 2", "block 2 (go): a test file: answers may not bring tests")),
    ("test-file-named-by-prose-before-the-package",
     "**copier_test.go**\n" + fence('package copier\n\nfunc helper() {}\n') + "**copier.go**\n" + fence(PKG_FIX),
     "copier", PKG_FIX, {}, ("block 1 (go, copier_test.go): a test file",)),
    ("package-golang-fence",
     "Here:\n" + fence(PKG_FIX, "golang"),
     "copier", PKG_FIX, {}, ("took the only block (golang): package copier",)),
    ("package-windows-line-endings",
     ("Answer:\n" + fence(PKG_DRAFT) + fence(PKG_FIX)).replace("\n", "\r\n"),
     "copier", PKG_FIX, {}, ("took block 2 of 2",)),
    ("byte-order-mark-before-the-fence",
     "\ufeff" + fence(PKG_FIX),
     "copier", PKG_FIX, {}, ("took the only block (go)",)),
    ("byte-order-mark-after-prose-and-in-the-code",
     "Here is the program:\n\ufeff```go\n\ufeff" + PROG + "```\n",
     "main", PROG, {}, ("took the only block (go)",)),
    ("byte-order-mark-before-bare-code",
     "\ufeff" + PKG_FIX,
     "copier", PKG_FIX, {}, ("bare code from 'package copier'",)),
    ("three-files-with-file-headers",
     "The program in three files.\n\n" + fence(BUFFER) + "\n" + fence(FLUSH) + "\n" + fence(MAIN),
     "main", None, _files(("buffer.go", BUFFER), ("flush.go", FLUSH), ("main.go", MAIN)),
     ("took block 1 (go, buffer.go), block 2 (go, flush.go), block 3 (go, main.go) of 3 blocks: 3 files",)),
    ("three-files-named-by-prose-and-info-strings-crlf",
     ("**buffer.go**\n" + fence(BUFFER.split("\n", 1)[1]) + "Create `flush.go`:\n"
      + fence(FLUSH.split("\n", 1)[1]) + fence(MAIN.split("\n", 1)[1], "go title=main.go")).replace("\n", "\r\n"),
     "main", None, _files(("buffer.go", BUFFER.split("\n", 1)[1]), ("flush.go", FLUSH.split("\n", 1)[1]),
                          ("main.go", MAIN.split("\n", 1)[1])), ("3 files of package main",)),
    ("files-with-an-earlier-version-and-an-unnamed-block",
     fence(BUFFER.replace("items", "old")) + fence(MAIN) + fence("package main\n\nfunc helper() {}\n") + fence(BUFFER),
     "main", None, _files(("buffer.go", BUFFER), ("main.go", MAIN)),
     ("block 1 (go, buffer.go): an earlier version of buffer.go",
      "block 3 (go): no file name, while the answer's other files are named")),
    ("files-then-one-unnamed-whole-program",
     fence(BUFFER) + fence(MAIN) + "All in one file:\n" + fence(PROG),
     "main", PROG, {}, ("took block 3 of 3 (go): the last complete block of package main with func main",
                        "block 1 (go, buffer.go): has no func main", "block 2 (go, main.go): an earlier block")),
    ("files-with-a-test-file",
     fence(BUFFER) + fence(MAIN) + fence("// file: main_test.go\n" + PKG_TEST.replace("copier", "main")),
     "main", None, _files(("buffer.go", BUFFER), ("main.go", MAIN)),
     ("block 3 (go, main_test.go): a test file",)),
    ("one-named-file-is-one-file",
     fence(MAIN.replace("b := &buffer{}\n\tb.flush()", "println(1)")),
     "main", MAIN.replace("b := &buffer{}\n\tb.flush()", "println(1)"), {}, ("took the only block (go, main.go)",)),
    ("refused-file-names-count-as-unnamed",
     fence("// file: ../buffer.go\n" + BUFFER.split("\n", 1)[1]) + fence("// file: _flush.go\n" + FLUSH.split("\n", 1)[1])
     + fence(MAIN),
     "main", MAIN, {}, ("refused file name(s) '../buffer.go' (block 1): a path",
                        "'_flush.go' (block 2): Go ignores files whose name starts with '_'")),
    ("package-answer-of-the-wrong-package",
     fence(PROG),
     "copier", PROG, {}, ("no block of package copier; the last complete one declares package main",)),
    ("package-answer-prefers-its-package-over-main",
     fence(PKG_FIX) + "Usage:\n" + fence(PROG),
     "copier", PKG_FIX, {}, ("block 2 (go): declares package main, not copier",)),
    ("complete-block-preferred-over-a-cut-off-rewrite",
     fence(PKG_FIX) + "Let me rewrite it:\n```go\npackage copier\n\ntype Copier struct {\n",
     "copier", PKG_FIX, {}, ("block 2 (go): incomplete (no closing fence)",)),
    ("only-a-test-file-is-graded-as-written",
     fence(PKG_TEST),
     "copier", PKG_TEST, {}, ("only test files of package copier",)),
]


@pytest.mark.parametrize(
    ("answer", "package", "code", "files", "notes"),
    [case[1:] for case in CHOICE],
    ids=[case[0] for case in CHOICE],
)
def test_which_block_is_graded(answer: str, package: str, code: str | None, files: dict[str, str],
                               notes: tuple[str, ...]) -> None:
    got = extract_go(answer, package)
    assert got.files == files
    if files:
        assert got.code == join_files(files)
        assert len(got.taken) == len(files)
    else:
        assert got.code == code
        assert len(got.taken) == 1
    for part in notes:
        assert part in got.note
    assert len(got.dropped) == got.blocks - len(got.taken) or got.method == "bare"
    assert got.method == ("bare" if "bare code" in " ".join(notes) else "fence")


def test_choice_ids_unique() -> None:
    ids = [case[0] for case in CHOICE] + [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


def test_joined_files_name_each_file() -> None:
    got = extract_go(fence(BUFFER) + fence(MAIN))
    assert got.code is not None and got.code.count("// file: ") == 4   # the join's line and each file's own
    assert got.code.startswith("// file: buffer.go\n// file: buffer.go\npackage main\n")


def test_file_count_and_size_are_bounded() -> None:
    many = "".join(fence(f"// file: f{i}.go\npackage main\n\nvar v{i} = {i}\n") for i in range(MAX_FILES + 3))
    got = extract_go(many + fence("// file: main.go\npackage main\n\nfunc main() {}\n"))
    assert len(got.files) == MAX_FILES
    assert "main.go" in got.files      # the primary file is always kept, the others while the bounds allow
    assert sorted(got.files) == sorted(["main.go"] + [f"f{i}.go" for i in range(MAX_FILES - 1)])
    assert sum("more than 16 files" in r for r in got.refused) == 4


def test_refused_names_are_reported() -> None:
    got = extract_go(fence("// file: cmd/x/main.go\n" + PROG) + fence("// file: buf-fer.go\npackage main\n"))
    assert got.files == {} and got.code == "// file: cmd/x/main.go\n" + PROG
    assert [r.split(":", 1)[0] for r in got.refused] == ["'cmd/x/main.go' (block 1)", "'buf-fer.go' (block 2)"]


def test_a_path_header_of_a_one_file_answer_is_no_refusal() -> None:
    got = extract_go(fence("// file: cmd/app/main.go\n" + PROG) + fence(SNIPPET))
    assert got.code == "// file: cmd/app/main.go\n" + PROG and got.refused == () and "refused" not in got.note
    assert got.taken == ("block 1 (go, cmd/app/main.go)",)
