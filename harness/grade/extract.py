"""Finding the Go program in a model's answer.

A pure module: text in, ``Extraction`` out. The rules below are the product's
contract; a change to them is a grader change (this file is in the grader hash).

1. Newlines: CRLF becomes LF before anything else.
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
   A fence that is never closed (a truncated answer) runs to the end of the text.
4. Candidates: blocks whose info string's first word is ``go``, ``golang``, ends
   in ``.go`` (``main.go``), or is empty. Blocks labelled with another language
   (bash, python, text, json, go.mod...) are candidates only when no go or
   unlabelled block exists, and then only those with a ``package main`` line.
5. Choice among candidates: the last with both a ``package main`` line and a
   ``func main(``; else the last with ``package main``; else the longest (last on
   ties) among those mentioning ``package`` or ``func`` (a snippet: it is returned
   and will fail to build, which is the model's fault); else no Go code.
6. Bare code: when no candidate was chosen, the last line outside fences that is
   exactly ``package main`` starts the code, which ends at the last line that is a
   ``}`` at column 0 before the next fence (or the end). Filename and marker lines
   (``// main.go``, ``#START main.go#``) before or after it are thus left out.
   Without any such ``}`` the code runs to the next fence or the end.
7. Marker lines in the chosen block: at its top and at its bottom (blank lines
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
8. The code is returned as written except: leading blank lines dropped, trailing
   whitespace stripped, exactly one trailing newline added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Extraction", "extract_go", "strip_thinking"]

_TAGS = r"(?:think|thinking|reasoning)"
_PAIRED = re.compile(rf"<({_TAGS})\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_OPEN = re.compile(rf"<{_TAGS}\b[^>]*>", re.IGNORECASE)
_CLOSE = re.compile(rf"</{_TAGS}\s*>", re.IGNORECASE)

_FENCE_OPEN = re.compile(r"^( *)(`{3,}|~{3,})(.*)$")
_PACKAGE_MAIN = re.compile(r"^package\s+main\s*;?\s*(?://.*)?$", re.MULTILINE)
_FUNC_MAIN = re.compile(r"^func\s+main\s*\(", re.MULTILINE)
_GO_WORDS = re.compile(r"\b(?:package|func)\b")
_GO_LABELS = {"go", "golang"}
_DECOR = r"[-=*_<>\[\]()]*"
_MARKER = re.compile(
    rf"""^\s*(?:\#.*                                          # '#' starts no Go line
         |{_DECOR}\s*(?:(?:file|filename|file\ name|path)\s*:\s*)?  # --- File: main.go ---
          [\w.-][\w./-]*\.go\s*:?\s*{_DECOR})\s*$""",
    re.IGNORECASE | re.VERBOSE)


@dataclass(frozen=True)
class Extraction:
    code: str | None        # the Go source to build, or None when the answer has no Go code
    method: str             # how it was found: "fence", "fence-unclosed", "bare", "none"
    blocks: int             # how many candidate code blocks the answer had
    note: str               # short human explanation
    thinking_removed: bool  # a reasoning section was stripped first


@dataclass(frozen=True)
class _Block:
    label: str    # first word of the info string, lower-cased ("" when unlabelled)
    body: str     # dedented content
    start: int    # index of the opening fence line
    end: int      # index of the closing fence line (len(lines) when unclosed)
    closed: bool


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


def _label(info: str) -> str:
    words = info.strip().strip("{}").lstrip(".").split()
    return words[0].lower() if words else ""


def _dedent(line: str, indent: int) -> str:
    n = len(line) - len(line.lstrip(" "))
    return line[min(n, indent):]


def _find_blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    i = 0
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
        blocks.append(_Block(_label(m.group(3)), body, i, j, j < len(lines)))
        i = j + 1
    return blocks


def _is_go(label: str) -> bool:
    return label in _GO_LABELS or label == "" or label.endswith(".go")


def _finish(code: str) -> str:
    lines = code.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip() + "\n"


def _drop_markers(body: str) -> tuple[str, list[str]]:
    """Rule 7: drop marker and file-name lines at the top and bottom of a block."""
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


def _choose(cands: list[_Block]) -> tuple[_Block | None, str]:
    both = [b for b in cands if _PACKAGE_MAIN.search(b.body) and _FUNC_MAIN.search(b.body)]
    if both:
        return both[-1], "package main and func main"
    pkg = [b for b in cands if _PACKAGE_MAIN.search(b.body)]
    if pkg:
        return pkg[-1], "package main but no func main"
    snippets = [b for b in cands if _GO_WORDS.search(b.body)]
    if snippets:
        longest = max(len(b.body) for b in snippets)
        return [b for b in snippets if len(b.body) == longest][-1], "a snippet without package main"
    return None, ""


def _bare(lines: list[str], blocks: list[_Block]) -> str | None:
    fenced = [False] * len(lines)
    for b in blocks:
        for k in range(b.start, min(b.end + 1, len(lines))):
            fenced[k] = True
    starts = [k for k, line in enumerate(lines) if not fenced[k] and _PACKAGE_MAIN.match(line)]
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


def extract_go(text: str) -> Extraction:
    """Find the Go program in an answer, following the rules in the module docstring."""
    text, thinking = strip_thinking(text.replace("\r\n", "\n"))
    if not text.strip():
        why = "answer is empty after removing reasoning" if thinking else "answer is empty"
        return Extraction(None, "none", 0, why, thinking)

    lines = text.split("\n")
    blocks = _find_blocks(lines)
    cands = [b for b in blocks if _is_go(b.label)]
    fallback = not cands
    if fallback:
        cands = [b for b in blocks if _PACKAGE_MAIN.search(b.body)]

    chosen, why = _choose(cands)
    if chosen is not None:
        method = "fence" if chosen.closed else "fence-unclosed"
        pos = cands.index(chosen) + 1
        where = "the only block" if len(cands) == 1 else f"block {pos} of {len(cands)}"
        label = chosen.label or "unlabelled"
        note = f"picked {where} ({label}): {why}"
        if not chosen.closed:
            note += "; closing fence missing"
        body, dropped = _drop_markers(chosen.body)
        if dropped:
            note += "; dropped marker line(s) " + ", ".join(repr(d) for d in dropped)
        return Extraction(_finish(body), method, len(cands), note, thinking)

    bare = _bare(lines, blocks)
    if bare is not None:
        note = "no usable code block; bare code from 'package main'"
        return Extraction(_finish(bare), "bare", len(cands), note, thinking)

    if not blocks:
        note = "no code block and no 'package main' line"
    elif fallback:
        note = _describe(blocks)
    else:
        note = "code blocks contain no 'package' or 'func'"
    return Extraction(None, "none", len(cands), note, thinking)
