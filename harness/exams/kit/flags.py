"""Reading a program's flags from its ``-h`` output.

Models rename and retype flags, so a behavioural check asks the binary what it
accepts instead of assuming the prompt's names: ``read_flags(ctx)`` runs it with
``-h`` (Go's ``flag`` package prints to standard error and exits 0, or 2 on older
toolchains) and ``parse_help`` turns the text into ``Flag`` records. Mapping flags
to what a check needs (synonyms, units) is the exam's business: see
``exams/scraper-resilience/flagmap.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.exams.checkkit import CheckContext
from harness.runtime import proc

__all__ = ["Flag", "HelpText", "parse_help", "read_flags"]

# "  -name type", "  -v\tusage", "  --name=TYPE   usage", "  -name <type>  usage"
_FLAG_LINE = re.compile(
    r"^\s{0,8}(?P<dashes>-{1,2})(?P<name>[A-Za-z0-9][\w.\-]*)"
    r"(?:(?:=| )(?P<type>[<\[]?[A-Za-z][\w\-]*[>\]]?))?"
    r"(?P<rest>(?:\s|,\s).*)?$"
)
_DEFAULT = re.compile(r"\(default (\"(?:[^\"\\]|\\.)*\"|[^)]*)\)\s*$")


@dataclass(frozen=True)
class Flag:
    """One flag as ``-h`` describes it."""

    name: str
    type_word: str = ""     # what Go printed after the name ("duration", "int", "URL", "")
    usage: str = ""
    default: str | None = None


@dataclass(frozen=True)
class HelpText:
    """What ``-h`` printed (both streams) and how the program exited."""

    text: str
    exit: str
    flags: list[Flag]


def parse_help(text: str) -> list[Flag]:
    """Flags listed in ``-h`` output: Go's ``flag.PrintDefaults`` format (name line,
    then tab-indented usage lines) and common hand-written one-line formats; ``-h``
    and ``-help`` themselves are left out, and a name listed twice counts once."""
    specs: list[Flag] = []
    cur: dict[str, object] | None = None

    def flush() -> None:
        if cur is not None:
            usage = " ".join(str(u) for u in cur["usage"]).strip()  # type: ignore[attr-defined]
            m = _DEFAULT.search(usage)
            default = None
            if m:
                default = m.group(1)
                if default.startswith('"'):
                    default = default[1:-1]
                usage = usage[: m.start()].strip()
            specs.append(Flag(str(cur["name"]), str(cur["type"]), usage, default))

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        m = _FLAG_LINE.match(line)
        if m and not line.startswith("    \t"):
            flush()
            type_word = (m.group("type") or "").strip("<>[]")
            rest = (m.group("rest") or "").strip().lstrip(",").strip()
            cur = {"name": m.group("name"), "type": type_word, "usage": [rest] if rest else []}
            continue
        if cur is not None and line.strip() and (raw.startswith((" ", "\t"))):
            cur["usage"].append(line.strip())  # type: ignore[attr-defined]
            continue
        if not line.strip():
            continue
        flush()
        cur = None
    flush()
    seen: set[str] = set()
    unique = []
    for s in specs:
        if s.name not in seen and s.name not in ("h", "help"):
            seen.add(s.name)
            unique.append(s)
    return unique


def read_flags(ctx: CheckContext, *, wall_s: float = 5.0) -> HelpText:
    """Run the built binary with ``-h`` (bounded: ``wall_s``, 256 KiB of output) and
    parse what it printed on either stream."""
    limits = proc.Limits(wall_s=wall_s, cpu_s=int(wall_s) + 5, address_space=ctx.limits.address_space,
                         output_bytes=256 * 1024)
    res = ctx.run(["-h"], limits=limits)
    text = res.stdout_text() + "\n" + res.stderr_text()
    return HelpText(text, res.describe_exit(), parse_help(text))
