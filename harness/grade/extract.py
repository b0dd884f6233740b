"""Finding the Go code in a model's answer.

A pure module: text in, ``Extraction`` out. The rules below are the product's
contract; a change to them is a grader change (this file is in the grader hash).
``package`` is the task's package: ``main`` for a program (``stdio``, ``checks``),
the exam's test package for a ``gotest`` exam (``harness.grade.answers`` passes it).

1. Text: CRLF (and a lone CR) becomes LF, and byte-order marks (U+FEFF) at the
   start of a line are removed, before anything else. (Go rejects a BOM anywhere
   but at the very start of a file, so no buildable code loses one.)
2. Reasoning: ``<think>``, ``<thinking>`` and ``<reasoning>`` sections (any case,
   any number) are removed with their content. Code inside them is never graded.
   - An opening tag that is never closed drops everything from the tag to the end:
     the model ran out of tokens while still reasoning, so what follows is a draft.
   - A closing tag with no opening tag (some servers strip the opener) means
     everything before it was reasoning.
   Tags are matched anywhere in the text, even inside code.
3. Fences: lines opening with 3+ backticks or tildes, indented by any number of
   spaces (list items); the block ends at a line holding only the same character,
   at least as many times, indented by at most 3 spaces more than the opener. A
   backtick opener's info string may not contain backticks. The opener's
   indentation is removed from every line of the block (up to that many spaces).
   A fence that is never closed (a truncated answer) runs to the end of the text;
   it is *incomplete*, every other block is complete.
4. Candidates: blocks whose info string's first word is ``go``, ``golang``, ends
   in ``.go`` (``main.go``, ``go:main.go``), or is empty. Blocks labelled with another
   language (bash, python, text, json, go.mod...) are candidates only when no go or
   unlabelled block exists, and then only those with a package clause.
5. What each candidate is: its package is its first package clause (comments and
   marker lines skipped); it is a *test file* when its file name (rule 9) ends in
   ``_test.go``, or when it imports ``testing`` and declares a ``func Test...``.
6. The graded block (the *primary* one), the first rule that finds one:
   a. a block of the task's package that is no test file: the last complete one
      (the last incomplete one when none is complete); for ``package main``, the last
      with a ``func main(`` when any has one. A buggy draft followed by a shorter fix
      grades the fix: a reader reads the last complete version;
   b. bare code (rule 8) from a line ``package <the task's package>``;
   c. a test file of the task's package (the answer is only a test: graded as
      written, and the gotest screen refuses it);
   d. a block of another package (the last complete one): graded, so the build or
      the gotest screen says which package it declares;
   e. a block mentioning ``package`` or ``func`` (a snippet): the longest (last on
      ties); it will fail to build, which is the model's fault;
   else no Go code.
7. Several files: when the primary block carries a file name (rule 9) and blocks of
   the task's package (no test files) carry at least two different names, the answer
   is those files, one package: for each name, the last complete block with it (the
   last incomplete one when none is complete), in the order they first appear.
   Blocks of the package without a name are then dropped, and so are earlier versions
   of a file. Without names, blocks are never assembled: two blocks of one package
   are a draft and its fix as often as two halves, and only the answer can say which.
   File names are untrusted: a name is accepted only as ``[A-Za-z0-9][A-Za-z0-9_]*.go``
   (no path, no ``_test.go``, not ``_``-led, which Go ignores), at most
   ``MAX_FILES`` files and ``MAX_BYTES`` in all; a block whose name is refused
   counts as unnamed. Refusals are reported when the answer names files (the graded
   block and another block of the package carry names); a lone ``cmd/app/main.go``
   header of a one-file answer is no file list.
8. Bare code: the last line outside fences that is exactly ``package <pkg>`` starts
   the code, which ends at the last line that is a ``}`` at column 0 before the next
   fence (or the end). Filename and marker lines (``// main.go``, ``#START main.go#``)
   before or after it are thus left out. Without any such ``}`` the code runs to the
   next fence or the end.
9. A block's file name, the first found of: a word of its info string ending in
   ``.go`` (```` ```go buffer.go ````, ```` ```buffer.go ````, ``title="buffer.go"``); a header
   line above its package clause (``// file: buffer.go``, ``// buffer.go``,
   ``// buffer.go: the ring buffer``, or a marker line of rule 10 naming a ``.go``
   file); the last non-blank line before its fence, outside any block, when that
   line is only a file name with decoration (``**buffer.go**``, ```` `buffer.go`: ````,
   ``### File: buffer.go``, ``2. main.go``).
10. Marker lines in the graded blocks: at the top and at the bottom (blank lines
   skipped), lines that mark or name a file and cannot be Go are dropped, so a
   model that copies the prompt's file markers into its fence is graded on its
   code. Such a line is either
   - one whose first non-blank character is ``#`` (``#START scraper.go#``,
     ``#END scraper.go#``, ``### main.go``): ``#`` is no Go token; or
   - a ``.go`` file name alone, optionally after ``File:``, ``Filename:`` or
     ``Path:``, optionally followed by ``:`` and wrapped in ``-``, ``=``, ``*``,
     ``_``, ``<>``, ``[]`` or ``()`` (``main.go``, ``File: main.go``,
     ``--- main.go ---``, ``**main.go**``).
   Line comments (``// main.go``) are Go: they stay, and the scan passes over
   them (unless they hold a backtick). It stops at any other line, so block
   comments (``/* main.go */``) and everything between the first and the last
   line of code stay (two files in one block are graded as written). Nothing
   valid is lost: before the package clause only comments may stand, after the
   last declaration only comments, and no raw string can be open at either end
   of a file that builds (the scanned lines have no backtick).
11. Each file is returned as written except: leading blank lines dropped, trailing
   whitespace stripped, exactly one trailing newline added.

The ``Extraction`` names what it took and what it dropped, and why: ``note`` in one
line, ``taken``, ``dropped`` and ``refused`` one entry per block or name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["MAX_BYTES", "MAX_FILES", "Extraction", "extract_go", "join_files", "strip_thinking"]

MAX_FILES = 16              # files of one multi-file answer
MAX_BYTES = 1024 * 1024     # their total size, in UTF-8 bytes

_TAGS = r"(?:think|thinking|reasoning)"
_PAIRED = re.compile(rf"<({_TAGS})\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_OPEN = re.compile(rf"<{_TAGS}\b[^>]*>", re.IGNORECASE)
_CLOSE = re.compile(rf"</{_TAGS}\s*>", re.IGNORECASE)

_BOM = re.compile("^\ufeff+", re.MULTILINE)
_FENCE_OPEN = re.compile(r"^( *)(`{3,}|~{3,})(.*)$")
_PACKAGE_CLAUSE = re.compile(r"^\s*package\s+([A-Za-z_]\w*)\s*;?\s*$", re.MULTILINE)
_FUNC_MAIN = re.compile(r"^func\s+main\s*\(", re.MULTILINE)
_GO_WORDS = re.compile(r"\b(?:package|func)\b")
_TESTING = re.compile(r'^\s*(?:import\s+)?(?:[\w.]+\s+)?"testing"', re.MULTILINE)
_TEST_FUNC = re.compile(r"^func\s+Test\w*\s*\(", re.MULTILINE)
_GO_LABELS = {"go", "golang"}
_DECOR = r"[-=*_<>\[\]()]*"
_MARKER = re.compile(
    rf"""^\s*(?:\#.*                                          # '#' starts no Go line
         |{_DECOR}\s*(?:(?:file|filename|file\ name|path)\s*:\s*)?  # --- File: main.go ---
          [\w.-][\w./-]*\.go\s*:?\s*{_DECOR})\s*$""",
    re.IGNORECASE | re.VERBOSE)
_PATH = r"[\w.-][\w./-]*\.go"
_NAME_IN = re.compile(rf"(?<![\w./-])({_PATH})(?![\w./-])", re.IGNORECASE)
_COMMENT_HEADER = re.compile(
    rf"^\s*//\s*(?:(?:file|filename|file\ name|path)\s*:\s*)?({_PATH})\s*(?:[:(\u2013\u2014-].*)?$", re.IGNORECASE)
_PROSE_HEADER = re.compile(rf"^(.*?)[*_`]*({_PATH})[*_`]*\s*(:?)[*_`\s]*$", re.IGNORECASE)
_PROSE_LEAD = re.compile(r"^\s*(?:\d+[.)]\s*)?[#>*_`\s-]*(?:(?:file|filename|file name|path)\s*:?\s*)?[*_`\s]*$",
                         re.IGNORECASE)
_HEADER_MAX = 200          # a line naming a file is short (and the header patterns need not scan long ones)
_GOOD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*\.go$")


@dataclass(frozen=True)
class Extraction:
    code: str | None        # the Go source (several files: joined by join_files), or None without Go code
    method: str             # how it was found: "fence", "fence-unclosed", "bare", "none"
    blocks: int             # how many candidate code blocks the answer had
    note: str               # short human explanation: what was taken and what was dropped
    thinking_removed: bool  # a reasoning section was stripped first
    files: dict[str, str] = field(default_factory=dict)   # several files: name -> source; {} for one file
    taken: tuple[str, ...] = ()      # the block(s) graded, e.g. "block 3 (go, buffer.go)"
    dropped: tuple[str, ...] = ()    # every other candidate block, with why
    refused: tuple[str, ...] = ()    # file names refused, with why


@dataclass(frozen=True)
class _Block:
    n: int        # 1-based position among the answer's fenced blocks (of any language)
    label: str    # first word of the info string, lower-cased ("" when unlabelled)
    info: str     # the whole info string
    body: str     # dedented content
    start: int    # index of the opening fence line
    end: int      # index of the closing fence line (len(lines) when unclosed)
    closed: bool
    prose: str    # the last non-blank line before the fence, outside any block ("" if none)


@dataclass(frozen=True)
class _Cand:
    block: _Block
    package: str | None
    test: bool
    name: str | None        # the accepted file name
    named: str | None       # the file name as written (accepted or not)
    refusal: str | None     # why that name was refused

    def describe(self) -> str:
        what = ", ".join(x for x in (self.block.label or "unlabelled", self.named) if x)
        return f"block {self.block.n} ({what})"


def strip_thinking(text: str) -> tuple[str, bool]:
    """Remove reasoning sections (rule 2); return the rest and whether any was found."""
    rest, n = _PAIRED.subn("", text)
    removed = n > 0
    close = _CLOSE.search(rest)
    opening = _OPEN.search(rest)
    if close and (opening is None or close.start() < opening.start()):
        rest, removed = rest[close.end():], True
        opening = _OPEN.search(rest)
    if opening:
        rest, removed = rest[:opening.start()], True
    return rest, removed


def join_files(files: dict[str, str]) -> str:
    """Several files as one text (for display and for graders that read text): each
    after a ``// file: NAME`` line. One file is returned as it is."""
    if len(files) == 1:
        return next(iter(files.values()))
    return "\n".join(f"// file: {name}\n{src}" for name, src in files.items())


def _label(info: str) -> str:
    words = info.strip().strip("{}").lstrip(".").split()
    return words[0].lower() if words else ""


def _dedent(line: str, indent: int) -> str:
    n = len(line) - len(line.lstrip(" "))
    return line[min(n, indent):]


def _find_blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    i = 0
    after = 0          # the first line after the previous block
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m or (m.group(2)[0] == "`" and "`" in m.group(3)):
            i += 1
            continue
        indent, fence = len(m.group(1)), m.group(2)
        closer = re.compile(rf"^ {{0,{indent + 3}}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not closer.match(lines[j]):
            j += 1
        body = "\n".join(_dedent(line, indent) for line in lines[i + 1:j])
        before = [ln for ln in lines[after:i] if ln.strip()]
        blocks.append(_Block(len(blocks) + 1, _label(m.group(3)), m.group(3), body, i, j, j < len(lines),
                             before[-1].strip() if before else ""))
        i = after = j + 1
    return blocks


def _is_go(label: str) -> bool:
    return label in _GO_LABELS or label == "" or label.endswith(".go")


def _finish(code: str) -> str:
    lines = code.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip() + "\n"


def _drop_markers(body: str) -> tuple[str, list[str]]:
    """Rule 10: drop marker and file-name lines at the top and bottom of a block."""
    lines = body.split("\n")
    drop: dict[int, str] = {}
    for step in (1, -1):
        k = 0 if step == 1 else len(lines) - 1
        while 0 <= k < len(lines):
            line = lines[k].strip()
            if _MARKER.match(line):
                drop[k] = line
            elif line and not (line.startswith("//") and "`" not in line):
                break
            k += step
    kept = "\n".join(line for k, line in enumerate(lines) if k not in drop)
    return kept, [drop[k] for k in sorted(drop)]


def _code_only(body: str) -> str:
    """The body without comments (roughly: strings are not parsed) and marker lines."""
    body = re.sub(r"/\*.*?\*/", " ", body, flags=re.S)
    body = re.sub(r"//.*", "", body)
    return "\n".join(ln for ln in body.split("\n") if not _MARKER.match(ln.strip()))


def _file_name(b: _Block) -> str | None:
    """Rule 9: the file name a block carries, as written."""
    for word in b.info.replace("=", " ").replace(":", " ").split():
        word = word.strip("\"'{}")
        if word.lower().endswith(".go") and word.lower() != ".go":
            return word
    for line in b.body.split("\n"):
        text = line.strip()
        if not text:
            continue
        m = _COMMENT_HEADER.match(text) if len(text) <= _HEADER_MAX else None
        if m:
            return m.group(1)
        if _MARKER.match(text):
            hit = _NAME_IN.search(text)
            if hit:
                return hit.group(1)
            continue
        if text.startswith("//"):
            continue
        break
    m = _PROSE_HEADER.match(b.prose) if len(b.prose) <= _HEADER_MAX else None
    if m is None:
        return None
    lead = m.group(1)
    if _PROSE_LEAD.match(lead) or (m.group(3) and len(lead) <= 60 and lead[-1:] in (" ", "`", "*", "_")):
        return m.group(2)
    return None


def _refusal(name: str) -> str | None:
    if "/" in name or "\\" in name:
        return "a path: the answer is one package, in one directory"
    if name.lower().endswith("_test.go"):
        return "a test file: answers may not bring tests"
    if name.startswith(("_", ".")):
        return "Go ignores files whose name starts with '_' or '.'"
    if not _GOOD_NAME.match(name):
        return "only letters, digits and '_' before '.go'"
    return None


def _candidate(b: _Block) -> _Cand:
    code = _code_only(b.body)
    m = _PACKAGE_CLAUSE.search(code)
    named = _file_name(b)
    test = bool(named and named.lower().endswith("_test.go")) or bool(
        _TESTING.search(code) and _TEST_FUNC.search(code))
    why = _refusal(named) if named is not None else None
    return _Cand(b, m.group(1) if m else None, test, None if why else named, named, why)


def _last_complete(cands: list[_Cand]) -> _Cand:
    closed = [c for c in cands if c.block.closed]
    return (closed or cands)[-1]


def _primary(cands: list[_Cand], package: str) -> tuple[_Cand | None, str]:
    """Rule 6a: the last complete block of the task's package that is no test file."""
    own = [c for c in cands if c.package == package and not c.test]
    if not own:
        return None, ""
    pool, what = own, f"package {package}"
    if package == "main":
        with_main = [c for c in own if _FUNC_MAIN.search(c.block.body)]
        pool, what = (with_main, "package main with func main") if with_main else (own, "package main, no func main")
    return _last_complete(pool), what if len(pool) == 1 else f"the last complete block of {what}"


def _fallback(cands: list[_Cand], package: str) -> tuple[_Cand | None, str]:
    """Rule 6 c, d and e (b, bare code, is tried by the caller before)."""
    tests = [c for c in cands if c.package == package]
    if tests:
        return _last_complete(tests), f"only test files of package {package}"
    other = [c for c in cands if c.package is not None]
    if other:
        c = _last_complete(other)
        return c, f"no block of package {package}; the last complete one declares package {c.package}"
    snippets = [c for c in cands if _GO_WORDS.search(c.block.body)]
    if snippets:
        longest = max(len(c.block.body) for c in snippets)
        return [c for c in snippets if len(c.block.body) == longest][-1], f"a snippet without package {package}"
    return None, ""


def _why_dropped(c: _Cand, package: str, taken: list[_Cand], multi: bool) -> str:
    if c.package is None:
        return "no package clause (a snippet)"
    if c.package != package:
        return f"declares package {c.package}, not {package}"
    if c.test:
        return "a test file: answers may not bring tests"
    if multi:
        if c.name is None:
            return "no file name, while the answer's other files are named"
        if any(t.name == c.name for t in taken):
            if c.block.n < next(t.block.n for t in taken if t.name == c.name):
                return f"an earlier version of {c.name}"
            return f"a later version of {c.name}, {'incomplete' if not c.block.closed else 'without func main'}"
        return f"{c.name}: more than {MAX_FILES} files or {MAX_BYTES // 1024} KiB"
    primary = taken[0]
    if not c.block.closed and primary.block.closed:
        return "incomplete (no closing fence)"
    if package == "main" and not _FUNC_MAIN.search(c.block.body) and _FUNC_MAIN.search(primary.block.body):
        return "has no func main"
    return f"{'an earlier' if c.block.n < primary.block.n else 'a later'} block of package {package}"


def _assemble(cands: list[_Cand], primary: _Cand, package: str, refused: list[str]) -> list[_Cand]:
    """Rule 7: the files of a multi-file answer, or just the primary block. Refused
    names are reported when the answer names files: the primary block and one more."""
    own = [c for c in cands if c.package == package and not c.test]
    if primary.named is not None and len({c.named for c in own if c.named is not None}) >= 2:
        refused += [f"{c.named!r} (block {c.block.n}): {c.refusal}" for c in own if c.refusal]
    own = [c for c in own if c.name is not None]
    names = list(dict.fromkeys(c.name for c in own if c.name is not None))
    if primary.name is None or len(names) < 2:
        return [primary]
    chosen = {name: primary if name == primary.name else _last_complete([x for x in own if x.name == name])
              for name in names}
    # The primary file first, then the others in order, while the bounds allow.
    size = len(primary.block.body.encode("utf-8"))
    keep: set[str] = {primary.name}
    for name in names:
        c = chosen[name]
        if c is primary:
            continue
        nbytes = len(c.block.body.encode("utf-8"))
        if len(keep) >= MAX_FILES or size + nbytes > MAX_BYTES:
            refused.append(f"{name!r} (block {c.block.n}): more than {MAX_FILES} files or "
                           f"{MAX_BYTES // 1024} KiB in all")
            continue
        keep.add(name)
        size += nbytes
    files = [chosen[n] for n in names if n in keep]
    return files if len(files) >= 2 else [primary]


def _bare(lines: list[str], blocks: list[_Block], package: str) -> str | None:
    fenced = [False] * len(lines)
    for b in blocks:
        for k in range(b.start, min(b.end + 1, len(lines))):
            fenced[k] = True
    clause = re.compile(rf"^package\s+{re.escape(package)}\s*;?\s*(?://.*)?$")
    starts = [k for k, line in enumerate(lines) if not fenced[k] and clause.match(line)]
    if not starts:
        return None
    first = stop = starts[-1]
    last = None
    while stop < len(lines) and not fenced[stop]:
        if lines[stop].rstrip() == "}":
            last = stop
        stop += 1
    return "\n".join(lines[first:(last + 1 if last is not None else stop)])


def _describe(blocks: list[_Block]) -> str:
    labels = sorted({b.label for b in blocks})
    kind = ", ".join(labels)
    return f"only {'a ' + kind + ' block' if len(blocks) == 1 else kind + ' blocks'}"


def _normalize(text: str) -> str:
    return _BOM.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def extract_go(text: str, package: str = "main") -> Extraction:
    """Find the Go code of a task of package ``package`` in an answer, following the
    rules in the module docstring."""
    text, thinking = strip_thinking(_normalize(text))
    if not text.strip():
        why = "answer is empty after removing reasoning" if thinking else "answer is empty"
        return Extraction(None, "none", 0, why, thinking)

    lines = text.split("\n")
    blocks = _find_blocks(lines)
    go_blocks = [b for b in blocks if _is_go(b.label)]
    fallback = not go_blocks
    refused: list[str] = []
    if fallback:
        cands = [c for c in map(_candidate, blocks) if c.package is not None]
    else:
        cands = [_candidate(b) for b in go_blocks]

    primary, why = _primary(cands, package)
    if primary is None:
        bare = _bare(lines, blocks, package)
        if bare is not None:
            dropped = tuple(f"{c.describe()}: {_why_dropped(c, package, [], False)}" for c in cands)
            note = f"no usable code block; bare code from 'package {package}'"
            if dropped:
                note += "; dropped " + "; ".join(dropped)
            return Extraction(_finish(bare), "bare", len(cands), note, thinking, taken=("bare code",),
                              dropped=dropped)
        primary, why = _fallback(cands, package)
    if primary is None:
        if not blocks:
            note = f"no code block and no 'package {package}' line"
        elif fallback:
            note = _describe(blocks)
        else:
            note = "code blocks contain no 'package' or 'func'"
        return Extraction(None, "none", len(cands), note, thinking)

    taken = _assemble(cands, primary, package, refused)
    multi = len(taken) > 1
    if multi:
        why = f"{len(taken)} files of package {package}, each the last complete block with its name"
    codes: dict[str, str] = {}
    markers: list[str] = []
    for c in taken:
        body, dropped_lines = _drop_markers(c.block.body)
        markers += dropped_lines
        codes[c.name or ""] = _finish(body)
    ids = {id(c) for c in taken}
    dropped = tuple(f"{c.describe()}: {_why_dropped(c, package, taken, multi)}" for c in cands if id(c) not in ids)

    if multi:
        note = f"took {', '.join(c.describe() for c in taken)} of {len(blocks)} blocks: {why}"
    else:
        what = taken[0].describe().split(" (", 1)[1]
        where = "the only block" if len(blocks) == 1 else f"block {taken[0].block.n} of {len(blocks)}"
        note = f"took {where} ({what}: {why}"
    if any(not c.block.closed for c in taken):
        note += "; closing fence missing"
    if markers:
        note += "; dropped marker line(s) " + ", ".join(repr(d) for d in markers)
    if dropped:
        note += "; dropped " + "; ".join(dropped)
    if refused:
        note += "; refused file name(s) " + "; ".join(refused)
    method = "fence" if all(c.block.closed for c in taken) else "fence-unclosed"
    files = codes if multi else {}
    code = join_files(files) if multi else next(iter(codes.values()))
    return Extraction(code, method, len(cands), note, thinking, files,
                      tuple(c.describe() for c in taken), dropped, tuple(refused))
