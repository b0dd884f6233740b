"""Reports: read the store into pandas and reduce it. Never builds or calls anything.

The work is done in three steps, one module each, and re-exported here so that
``harness.report`` stays the one name to import (docs/python-api.md):

* ``harness.report.loader``: ``load(DIR)``, one row per attempt with every stored field;
* ``harness.report.reduce``: per-seed scores, per-model summaries, check pass rates,
  warnings (pure functions over that DataFrame);
* ``harness.report.render``: the tables, ``build`` (every table of the report) and
  ``markdown``; the quantization view in ``harness.report.quant_view``, the paired
  comparison in ``harness.report.compare``.
"""

from __future__ import annotations

from harness.report.loader import load
from harness.report.quant_view import quant_tables
from harness.report.reduce import (
    OUTCOME_ORDER,
    ModelSummary,
    check_rates,
    counts,
    identical_answers,
    known_models,
    seed_scores,
    summarize,
    works,
)
from harness.report.render import (
    ExamSection,
    Report,
    build,
    check_tables,
    exam_sections,
    isolation_note,
    markdown,
    pass_at_k_table,
    summary_table,
)

__all__ = [
    "OUTCOME_ORDER",
    "ExamSection",
    "ModelSummary",
    "Report",
    "build",
    "check_rates",
    "check_tables",
    "counts",
    "exam_sections",
    "identical_answers",
    "isolation_note",
    "known_models",
    "load",
    "markdown",
    "pass_at_k_table",
    "quant_tables",
    "seed_scores",
    "summarize",
    "summary_table",
    "works",
]
