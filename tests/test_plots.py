"""Plot helpers: the Pareto front, and SVGs that are deterministic and self-contained."""

from __future__ import annotations

import dataclasses

from harness import plots, report
from tests.store_fixtures import frame, scores


def test_pareto_front():
    pts = [(10, 5), (20, 3), (30, 3), (5, 5), (15, 1), (30, 1)]
    # (10, 5): fastest of the best; (30, 3): fastest of all with the better score.
    assert plots.pareto_front(pts) == [0, 2]
    assert plots.pareto_front([(1, 1)]) == [0]
    assert plots.pareto_front([(1, 1), (1, 1)]) == [0, 1]     # equal points do not dominate each other


def test_svgs_are_deterministic(tmp_path):
    df = frame(tmp_path / "o", scores("fast", [1, 2], tps=90.0) + scores("good", [3, 3], tps=20.0))
    sums = report.summarize(df)
    rates = report.check_rates(df)
    for make in (lambda: plots.score_vs_speed(sums, {"fast": 5_000_000_000}, "t"),
                 lambda: plots.seed_strip(sums, "t"),
                 lambda: plots.check_heatmap(rates, ["good", "fast"], "t")):
        a, b = make(), make()
        assert a == b and a.startswith("<svg") and "fast" in a and "good" in a
        assert "<dc:date>" not in a and "<image" not in a


def test_no_speed_no_speed_plot(tmp_path):
    df = frame(tmp_path / "o", scores("m", [1, 2], tps=None))
    [s] = report.summarize(df)
    assert s.tps_approx and s.decode_tps == 50.0      # no timings: usage / wall time (100 tokens / 2 s)
    assert plots.score_vs_speed([dataclasses.replace(s, decode_tps=None)], {}, "t") is None
