"""Report tables on stores whose numbers are known by construction."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import report
from harness.report import tables
from tests.store_fixtures import Cell, frame, scores, write_store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def df(tmp_path):
    cells = [
        *scores("wobbly", [1, 2, 3]),          # mean 2, spread
        *scores("steady", [2, 2, 2]),          # mean 2, no spread: ranks above wobbly
        *scores("top", [3, 3, 3]),
        *scores("bottom", [0, 0, 0]),          # 0/3 on every seed
    ]
    return frame(tmp_path / "out", cells)


def _summary(df):
    return report.build(df).sections[0].tables[0]


def test_summary_table_shape_and_order(df):
    t = _summary(df)
    assert t.title == "fx v1 (/3; seeds 1, 2, 3)"
    assert t.header == ["Model", "Mean", "Range", "95% CI", "Builds", "Works", "Outcomes",
                        "Decode tok/s", "Prefill tok/s"]
    assert [r[0] for r in t.rows] == ["top", "steady", "wobbly", "bottom"]   # ties: lower variance first
    # bold: the same score on every seed, above zero ("bottom" scores 0 on every seed: not a winner)
    assert t.bold == [True, True, False, False]
    assert t.records[3]["consistent"] is True
    rows = {r[0]: r for r in t.rows}
    assert rows["wobbly"][1:3] == ["2.0", "1–3"]
    assert rows["top"][1:3] == ["3.0", "3–3"]
    # Builds: attempts that compiled; Works: also passed a check besides the build.
    assert rows["wobbly"][4:6] == ["3/3", "2/3"]
    assert rows["steady"][4:6] == ["3/3", "3/3"]
    assert rows["bottom"][4:7] == ["0/3", "0/3", "build_failed 3"]
    assert rows["top"][6:] == ["ran 3", "40.0", "400.0"]


def test_intervals_never_have_zero_width(df):
    t = _summary(df)
    for row in t.rows:
        lo, hi = (float(x) for x in row[3].split("–"))
        assert lo < hi, row
    rows = {r[0]: r[3] for r in t.rows}
    # 3/3 on every seed: Wilson for 3/3 on 0..3 is 0.4385 * 3 = 1.3 to 3; 0/3: 0 to 1.7.
    assert rows["top"] == "1.3–3.0"
    assert rows["bottom"] == "0.0–1.7"
    # Spread: Student t, mean 2, sd 1, t(0.975, 2) = 4.3027: 2 -/+ 2.48, clipped to 0..3.
    assert rows["wobbly"] == "0.0–3.0"


def test_records_carry_numbers(df):
    rec = {r["model"]: r for r in _summary(df).records}
    assert rec["wobbly"]["mean"] == 2.0 and rec["wobbly"]["min"] == 1.0 and rec["wobbly"]["max"] == 3.0
    assert rec["top"]["ci_low"] == pytest.approx(3 * 3 / (3 + 1.959963984540054 ** 2))
    assert rec["bottom"]["outcome_build_failed"] == 3 and rec["bottom"]["consistent"] is True


def test_markdown_has_bold_rows_and_sections(df):
    md = report.markdown(df)
    assert "## fx v1 (/3; seeds 1, 2, 3)" in md
    assert re.search(r"^\| \*\*top\*\* +\| \*\*3\.0\*\* ", md, re.M)
    assert re.search(r"^\| wobbly +\| 2\.0 ", md, re.M)
    assert "### fx v1 hello: per-check pass rates" in md
    assert "### fx v1 pass@k per task" in md
    assert "warning" not in md


def test_per_check_pass_rates(df):
    t = next(t for t in report.build(df).tables if t.kind == "checks")
    assert t.header == ["Model", "build", "runs", "case:a"]
    assert t.rows == [["top", "3/3", "3/3", "3/3"], ["steady", "3/3", "3/3", "0/3"],
                      ["wobbly", "3/3", "2/3", "1/3"], ["bottom", "0/3", "0/3", "0/3"]]
    assert t.notes == []


def test_check_nobody_passes_is_flagged(tmp_path):
    df = frame(tmp_path / "o", scores("a", [2, 2]) + scores("b", [1, 2]))
    t = next(t for t in report.build(df).tables if t.kind == "checks")
    assert t.notes == ["No model passed case:a: a hidden requirement or a grader bug?"]



def test_nothing_built_is_not_flagged_as_a_grader_bug(tmp_path):
    # A tiny model whose code never compiles fails every check for that reason alone.
    df = frame(tmp_path / "o", scores("tiny", [0, 0]))
    t = next(t for t in report.build(df).tables if t.kind == "checks")
    assert t.rows == [["tiny", "0/2", "0/2", "0/2"]] and t.notes == []


def test_nothing_built_without_a_build_check_is_not_flagged(tmp_path):
    # Exams with their own checks (scraper-resilience) have no check named "build".
    checks = ("OnlineFlow", "RaceDetector")
    df = frame(tmp_path / "o", [Cell("tiny", s, passed=(), checks=checks) for s in (1, 2)])
    t = next(t for t in report.build(df).tables if t.kind == "checks")
    assert t.notes == []
    built = [Cell("a", s, passed=("OnlineFlow",), checks=checks, built=True) for s in (1, 2)]
    t = next(t for t in report.build(frame(tmp_path / "o2", built)).tables if t.kind == "checks")
    assert t.notes == ["No model passed RaceDetector: a hidden requirement or a grader bug?"]


def test_speed_means_leave_out_answers_too_short_to_time(tmp_path):
    # A 1-token empty answer reports 0.0 tok/s; 9 uncached prompt tokens (the rest cached)
    # give a prefill figure that is mostly fixed cost.
    cells = [Cell("m", 1, tps=40.0, predicted_n=300, prefill=100.0, prompt_n=500),
             Cell("m", 2, tps=0.0, predicted_n=1, prefill=31.9, prompt_n=9),
             Cell("m", 3, tps=42.0, predicted_n=16, prefill=110.0, prompt_n=700)]
    rep = report.build(frame(tmp_path / "o", cells))
    row = rep.tables[0].rows[0]
    assert row[7:] == ["41.0", "105.0 (600 tok)"]
    assert rep.speed is not None and rep.speed.rows[0][2:4] == ["41.0", "105.0 (600 tok)"]
    cached = [Cell("c", 1, tps=40.0, predicted_n=300, prefill=31.9, prompt_n=9)]
    assert report.build(frame(tmp_path / "o2", cached)).tables[0].rows[0][8] == "n/a (~9 tok: cached)"


def test_quant_view_compares_the_same_exams_and_tasks_only(tmp_path):
    # Only Q4_K_M also ran the long-prompt exam, where it decodes slower: left out of its tok/s.
    cells = (scores("g-Q8_0", [3, 3], tps=30.0) + scores("g-Q4_K_M", [3, 3], tps=40.0)
             + scores("g-Q4_K_M", [1, 1], exam="long", tps=10.0))
    t = report.build(frame(tmp_path / "o", cells)).quant[0]
    assert t.header == ["Quant", "Model", "Size", "fx v1 (/3)", "Works", "tok/s"]
    assert [r[1] for r in t.rows] == ["g-Q8_0", "g-Q4_K_M"]
    assert t.rows[1][4:] == ["2/2", "40.0"]
    assert t.notes[-1] == "Left out, not answered by every quant: long v1 hello."


def test_pass_at_k(df):
    t = next(t for t in report.build(df).tables if t.kind == "pass_at_k")
    assert t.header == ["Model", "hello pass@1", "hello pass@3"]
    rows = {r[0]: r[1:] for r in t.rows}
    assert rows["wobbly"] == ["0.33 (1/3)", "1.00"]   # solved on one seed of three
    assert rows["steady"] == ["0.00 (0/3)", "0.00"]   # never full marks
    assert rows["top"] == ["1.00 (3/3)", "1.00"]


def test_identical_answers_across_seeds_are_flagged(tmp_path):
    cells = [Cell("same", s, code="package main // always the same\n") for s in (1, 2, 3)]
    cells += [Cell("varied", s) for s in (1, 2, 3)]
    df = frame(tmp_path / "o", cells)
    warnings = report.build(df).warnings
    assert warnings == ["warning: same gave byte-identical answers for different seeds on fx v1: "
                        "hello (seeds 1, 2, 3). The server may be ignoring the seed."]
    assert "The server may be ignoring the seed." in report.markdown(df)


def test_endpoint_errors_do_not_count(tmp_path):
    cells = scores("m", [3, 3]) + [Cell("m", 3, gen_outcome="endpoint_error")]
    t = _summary(frame(tmp_path / "o", cells))
    assert t.rows[0][1:6] == ["3.0", "3–3", "1.0–3.0", "2/2", "2/2"]   # Wilson 2/2: 2/(2 + z²) * 3 = 1.03
    assert t.rows[0][6] == "ran 2, endpoint_error 1"


def test_seed_missing_a_task_is_incomplete(tmp_path):
    cells = [Cell("m", 1, task="t1"), Cell("m", 1, task="t2"), Cell("m", 2, task="t1")]
    s = report.build(frame(tmp_path / "o", cells)).sections[0].summaries[0]
    assert s.scores == {1: 6.0} and s.max_points == 6.0


def test_quant_view_appears_when_models_share_a_base(tmp_path):
    cells = scores("qwen3-8b-Q4_K_M", [2, 3]) + scores("qwen3-8b-Q8_0", [3, 3]) + scores("other", [1, 1])
    df = frame(tmp_path / "o", cells)
    rep = report.build(df)
    assert len(rep.quant) == 1
    t = rep.quant[0]
    assert t.title == "qwen3-8b: quantizations"
    assert t.header == ["Quant", "Model", "Size", "fx v1 (/3)", "Works", "tok/s"]
    assert [r[:3] for r in t.rows] == [["Q8_0", "qwen3-8b-Q8_0", "n/a"], ["Q4_K_M", "qwen3-8b-Q4_K_M", "n/a"]]
    assert t.rows[1][3].startswith("2.5 [") and t.rows[1][4:] == ["2/2", "40.0"]
    assert t.notes[0].startswith("Q4_K_M vs Q8_0: Cannot separate qwen3-8b-Q4_K_M and qwen3-8b-Q8_0")
    assert "## Quantizations" in report.markdown(df)
    # With the server's view (e.g. a llama-swap config): sizes, and its base and quant names.
    known = {"qwen3-8b-Q4_K_M": {"base": "Qwen3-8B", "quant": "Q4_K_M", "size_bytes": 5_000_000_000},
             "qwen3-8b-Q8_0": {"base": "Qwen3-8B", "quant": "Q8_0", "size_bytes": 8_700_000_000}}
    t = report.build(df, known=known).quant[0]
    assert t.title == "Qwen3-8B: quantizations"
    assert [r[2] for r in t.rows] == ["8.7 GB", "5.0 GB"]
    assert "Base, quant and size from the server." in t.notes[-1]
    # --by-quant: every base, shared or not.
    assert len(report.build(df, by_quant=True).quant) == 2


def test_csv_and_json(df):
    rep = report.build(df)
    data = json.loads(tables.to_json(rep.tables, rep.warnings))
    assert [t["kind"] for t in data["tables"]] == ["summary", "checks", "pass_at_k", "speed"]
    assert data["tables"][0]["bold"] == [True, True, False, False]
    csv = tables.to_csv(rep.tables).splitlines()
    assert csv[0].startswith("table,exam,exam_version,model,")
    assert sum(line.startswith("summary,") for line in csv) == 4
    assert sum(line.startswith("checks,") for line in csv) == 12


def test_load_has_every_stored_field(df):
    for col in ["attempt_id", "request_id", "usage", "timings", "checks", "check_details", "grade_details",
                "graded_at", "sampling", "content", "extracted_code", "decode_tps", "prefill_tps"]:
        assert col in df.columns
    assert df.iloc[0]["check_details"]["build"] == {"status": "pass", "points": 1.0, "max_points": 1.0,
                                                     "detail": ""}


def test_empty_store(tmp_path):
    from harness.store.db import Store

    Store(tmp_path / "o").close()
    df = report.load(tmp_path / "o")
    assert report.markdown(df) == "No attempts stored yet.\n"
    assert report.build(df).tables == []


def _sweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=os.environ, timeout=180)


def test_cli_report_formats(tmp_path):
    write_store(tmp_path / "o", scores("qwen3-8b-Q4_K_M", [2, 3]) + scores("qwen3-8b-Q8_0", [3, 3]))
    page = tmp_path / "r.html"
    r = _sweep("report", str(tmp_path / "o"), "--html", str(page))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("## fx v1 (/3; seeds 1, 2)") and "## Quantizations" in r.stdout
    assert f"wrote {page}" in r.stderr and page.read_text().count("<svg") == 3
    # The other formats in-process (the same click command, without a new interpreter each).
    from click.testing import CliRunner

    import sweep

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(sweep.cli, ["report", str(tmp_path / "o"), *args], catch_exceptions=True)

    r = run("--format", "json")
    assert [t["kind"] for t in json.loads(r.stdout)["tables"]] == ["summary", "checks", "pass_at_k", "speed", "quant"]
    r = run("--format", "csv")
    assert r.stdout.splitlines()[0].startswith("table,exam,exam_version,model,")
    r = run("--format", "html")
    assert r.stdout.startswith("<!DOCTYPE html>")
    r = run("--attempts", "--format", "csv")
    assert r.stdout.splitlines()[0].startswith("attempt_id,run_id,model,exam,") and len(r.stdout.splitlines()) == 5
    r = run("--attempts")
    assert "--attempts prints csv or json" in str(r.exception)


def test_cli_report_with_llama_swap_config(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "Qwen3-8B-Q4_K_M.gguf").write_bytes(b"\0" * 5000)
    (tmp_path / "Qwen3-8B-Q8_0.gguf").write_bytes(b"\0" * 8700)
    (tmp_path / "config.yaml").write_text(
        'models:\n'
        '  "small":\n    cmd: llama-server --port ${PORT} -m Qwen3-8B-Q4_K_M.gguf\n    aliases: ["s"]\n'
        '  "big":\n    cmd: llama-server --port ${PORT} -m Qwen3-8B-Q8_0.gguf\n')
    write_store(tmp_path / "o", scores("s", [2, 3]) + scores("big", [3, 3]))   # "s" is an alias of "small"
    r = _sweep("report", str(tmp_path / "o"), "--llama-swap-config", str(tmp_path / "config.yaml"),
               "--format", "json")
    assert r.returncode == 0, r.stderr
    quant_table = next(t for t in json.loads(r.stdout)["tables"] if t["kind"] == "quant")
    assert quant_table["title"] == "Qwen3-8B: quantizations"
    assert [(x["quant"], x["model"], x["size_bytes"]) for x in quant_table["records"]] == [
        ("Q8_0", "big", 8700), ("Q4_K_M", "s", 5000)]


def test_cli_run_with_an_exam_directory_then_report_logs_and_regrade(tmp_path):
    """`sweep run --exam ./my-exam` then `sweep report`: the grades are the run's own
    grader's, not "graded by an older grader" (the exam is not installed); `sweep
    regrade` finds the exam again in its directory after it changed there."""
    from mock_server.llm import Reply, ScriptedLLM, scripted_fence
    from tests.helpers import HELLO_GO, make_tiny_exam

    exam = make_tiny_exam(tmp_path / "my-exams")
    out = str(tmp_path / "out")
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        r = _sweep("run", "--endpoint", llm.url, "--model", "m", "--exam", str(exam.root), "--seeds", "1",
                   "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    for args in (("report", out), ("logs", out)):
        r = _sweep(*args)
        assert r.returncode == 0, r.stderr
        assert "older grader" not in r.stdout and "not installed" not in r.stderr, (args, r.stdout, r.stderr)
    assert "| m " in _sweep("report", out).stdout
    make_tiny_exam(tmp_path / "my-exams", expect="goodbye\n")       # the exam changes where it was run from
    r = _sweep("regrade", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "graded 1 of 1 stored answer(s) with the current grader" in r.stderr and "not installed" not in r.stderr
    assert "older grader" not in r.stdout
    r = _sweep("regrade", out, "--quiet")                            # everything is current now
    assert r.returncode == 0, r.stderr
    assert ("nothing to regrade: 1 of 1 stored answer(s) already had a grade by the current grader" in r.stderr
            and "graded 0" not in r.stderr), r.stderr
    df = report.load(out)
    assert list(df["points"]) == [2.0] and bool(df.iloc[0]["grade_current"])
