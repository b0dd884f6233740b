"""The HTML report: self-contained, deterministic, and it displays in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.report import html as html_report
from tests.store_fixtures import Cell, frame, scores

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def df(tmp_path):
    cells = (scores("qwen3-8b-Q8_0", [3, 3, 3], tps=30.0) + scores("qwen3-8b-Q4_K_M", [1, 3, 2], tps=55.0)
             + [Cell("echo", s, code="package main // same\n", tps=80.0) for s in (1, 2, 3)])
    return frame(tmp_path / "o", cells)


def test_html_has_tables_plots_and_warnings(df):
    page = html_report.render(df, source="results")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3                      # score vs speed, seed spread, check heatmap
    assert '<tr class="consistent"><td>qwen3-8b-Q8_0</td>' in page
    assert "The server may be ignoring the seed." in page
    assert "<h2>Quantizations</h2>" in page and "qwen3-8b: quantizations" in page
    assert "hello: per-check pass rates" in page and "pass@k per task" in page


def test_html_is_self_contained_and_deterministic(df):
    page = html_report.render(df, source="results")
    assert page == html_report.render(df, source="results")
    assert "<script" not in page and "<link" not in page and "<img" not in page
    # The only URLs are XML namespace names, which browsers never fetch.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink",
                    "http://creativecommons.org/ns#", "http://purl.org/dc/elements/1.1/",
                    "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "http://purl.org/dc/dcmitype/StillImage",
                    "https://matplotlib.org/"}, urls


def test_html_escapes_model_names(tmp_path):
    page = html_report.render(frame(tmp_path / "o", scores("<b>evil</b>", [1, 2])))
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _screenshot(page: Path, png: Path, height: int) -> None:
    """A headless-chromium screenshot of `page`, 1280 pixels wide and `height` high, into
    `png`: it must be a PNG of that size with more on it than a blank page."""
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="sweep-chromium-") as profile:
        r = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size=1280,{height}", page.as_uri()],
            capture_output=True, text=True, timeout=180)
    assert png.is_file(), r.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, height)     # width, height
    assert len(data) > 50_000        # a blank page is a few kB; tables and plots are far more


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (.ci/run installs it)")
def test_html_report_displays_in_headless_chromium(tmp_path):
    """The real pipeline (the scripted demo: HTTP, Go builds, checks), then `sweep report
    --html`, then a headless-chromium screenshot kept in test-artifacts/report.png."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "results"
    r = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "demo", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    page = tmp_path / "report.html"
    r = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "report", str(out), "--html", str(page)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"wrote {page}" in r.stderr and "## go-basics v1" in r.stdout
    assert "## Speed" in r.stdout and 'id="speed"' in page.read_text()    # the demo streams: TTFT is shown
    assert "not streamed" not in r.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(page, ARTIFACTS / "report.html")
    _screenshot(page, ARTIFACTS / "report.png", height=2000)


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (.ci/run installs it)")
def test_long_names_and_many_zero_models_screenshot(tmp_path):
    """Twelve models with 60-character names, half of them scoring 0 on every seed: the
    page renders in headless chromium (test-artifacts/report-long-names.png, to look at),
    no zero row is bold, and the score-vs-speed key lists every model beside the plot."""
    names = [f"unsloth-Qwen3-Coder-30B-A3B-Instruct-1M-variant-{i:02d}-UD-Q4_K_XL" for i in range(12)]
    cells = [c for i, m in enumerate(names) for c in scores(m, [0, 0, 0] if i % 2 else [1, 2, 3],
                                                            tps=30.0 + (i // 4))]
    html = html_report.render(frame(tmp_path / "results", cells), source="long names")
    assert html.count('class="consistent"') == 0          # 1-2-3 is not consistent, 0-0-0 is not bold
    assert html.count("variant-") >= 12 * 3
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "report-long-names.html"
    page.write_text(html, encoding="utf-8")
    _screenshot(page, ARTIFACTS / "report-long-names.png", height=2400)
