"""Generate the reference docs that must match the code: docs/cli.md (every
command's --help) and docs/store.md (the SQLite schema from the migrations).

    python -m harness.cli.docgen          # rewrite both files
    python -m harness.cli.docgen --check  # exit 1 if either is stale (the tests run this)

docs/cli.md is the click commands' own ``--help``, so ``cli_markdown`` must load
the click group, which lives in the CLI module ``sweep`` (sweep.py, next to the
package). That is the one import of ``sweep`` from ``harness``, on purpose and
inside the function: the reference must be what ``sweep --help`` prints, not a
second description of the options that could drift from it. Nothing else in
``harness`` imports the CLI, and the library never needs it.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

DOCS = Path(__file__).resolve().parents[2] / "docs"


def cli_markdown() -> str:
    import sweep

    out = ["# Command-line reference", "",
           "Generated from the code by `python -m harness.cli.docgen`; do not edit by hand.", ""]

    def walk(cmd: click.Command, path: list[str], parent: click.Context | None) -> None:
        # The context chain `sweep SUB --help` builds: a subcommand inherits the group's
        # settings (-h as well as --help), so the page is what the terminal shows.
        ctx = click.Context(cmd, parent=parent, info_name=path[-1], terminal_width=88, max_content_width=88,
                            **cmd.context_settings)
        out.extend([f"## `{' '.join(path)}`", "", "```text", cmd.get_help(ctx).rstrip(), "```", ""])
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.commands):
                walk(cmd.commands[name], [*path, name], ctx)

    walk(sweep.cli, ["sweep"], None)
    return "\n".join(out)


def store_markdown() -> str:
    from harness.store import db as store

    db = sqlite3.connect(":memory:")
    for m in store.MIGRATIONS:
        m(db)
    out = ["# The results store", "",
           "Generated from the migrations in `harness/store/db.py` by `python -m harness.cli.docgen`; do not edit by hand.",
           "", (store.__doc__ or "").strip(), "",
           "Migrations, applied in order and recorded in `_migrations`: "
           + ", ".join(f"`{m.__name__}`" for m in store.MIGRATIONS) + ".", ""]
    for (name, sql) in db.execute("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') "
                                  "AND sql IS NOT NULL ORDER BY rowid"):
        out.extend([f"## `{name}`", "", "```sql", sql.strip(), "```", ""])
    return "\n".join(out)


FILES = {"cli.md": cli_markdown, "store.md": store_markdown}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, fn in FILES.items():
        path = DOCS / name
        text = fn()
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale generated docs: {', '.join(stale)}; run `python -m harness.cli.docgen`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
