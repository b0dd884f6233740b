"""The report as one self-contained HTML file: the markdown report's tables plus
plots (inline SVG), rendered with a jinja2 template (``harness/report/templates``).

Nothing is fetched when the file is viewed: no scripts, fonts or stylesheets from
elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from harness import quant, report
from harness.report import plots

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _version() -> str:
    try:
        return metadata.version("exam-sweep")
    except metadata.PackageNotFoundError:
        return "dev"


def render(df: pd.DataFrame, *, source: str = "", known: Mapping[str, Mapping[str, Any]] | None = None,
           by_quant: bool = False) -> str:
    """The HTML report of ``df`` (from :func:`harness.report.load`)."""
    rep = report.build(df, known=known, by_quant=by_quant)
    sizes = {m: i.size_bytes for m, i in quant.resolve(list(dict.fromkeys(df["model"])) if not df.empty else [],
                                                       report.known_models(df, known)).items()}
    sections = []
    for i, s in enumerate(rep.sections):
        salt = f"{i}"
        models = [x.model for x in s.summaries]
        figures = [f for f in (
            ("Mean exam score (95% CI) against decode tok/s. Red: the Pareto front, models no other "
             "model beats on both.", plots.score_vs_speed(s.summaries, sizes, salt), "half"),
            ("One dot per seed's exam score; bar: mean; grey: 95% CI.", plots.seed_strip(s.summaries, salt),
             "half"),
            ("Passed/attempts per model and check; black lines separate tasks.",
             plots.check_heatmap(report.check_rates(s.frame), models, salt), "wide"),
            ("Mean exam score (95% CI) after each repair turn (sweep run --turns): each cell at its latest "
             "answer up to that turn.",
             plots.turn_curve([r for t in s.tables if t.kind == "turns" for r in t.records], salt), "half"),
        ) if f[1] is not None]
        sections.append({"id": f"exam-{i}", "title": s.title, "summary": s.tables[0], "tables": s.tables[1:],
                         "notes": s.notes, "warnings": s.warnings, "figures": figures})
    stored = sorted(df["created_at"].dropna()) if not df.empty else []
    return _env().get_template("report.html.j2").render(
        sections=sections, quant=rep.quant, speed=rep.speed, source=source, version=_version(),
        stored=(stored[0], stored[-1]) if stored else None, attempts=len(df),
        models=len(set(df["model"])) if not df.empty else 0)
