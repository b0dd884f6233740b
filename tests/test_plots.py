"""Plot helpers: the Pareto front, and SVGs that are deterministic and self-contained."""

from __future__ import annotations

import dataclasses

from harness import report
from harness.report import plots
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


def _long_named_summaries(tmp_path, n=12):
    from tests.store_fixtures import frame, scores

    names = [f"unsloth-Qwen3-Coder-30B-A3B-Instruct-1M-variant-{i:02d}-UD-Q4_K_XL" for i in range(n)]
    cells = [c for i, m in enumerate(names) for c in scores(m, [0, 0, 0] if i % 2 else [1, 2, 3],
                                                            tps=30.0 + (i // 4))]
    return report.build(frame(tmp_path / "o", cells)).sections[0].summaries


def test_score_vs_speed_stays_readable_with_long_names_and_many_models(tmp_path):
    """Twelve models with 60-character names, half of them at the same spot (all zero):
    the key sits beside the axes (never over a point), and no two point labels overlap."""
    import matplotlib

    sums = _long_named_summaries(tmp_path)
    with matplotlib.rc_context(plots._rc()):
        fig = plots.score_vs_speed_figure(sums, {})
        assert fig is not None
        fig.draw_without_rendering()
        ax = fig.axes[0]
        box = ax.get_window_extent()
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= box.x1, (legend, box)           # beside the axes, not over them
        labels = [t for t in ax.texts]
        extents = [t.get_window_extent() for t in labels]
        for i, a in enumerate(extents):
            for b in extents[i + 1:]:
                assert not a.overlaps(b), [t.get_text() for t in labels]
        # models at one spot share a label; each model is in the key once, by number
        texts = [t.get_text() for t in labels]
        assert any("," in t for t in texts)
        key = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(key) == 13 and key[1].startswith("1  unsloth-Qwen3-Cod") and key[1].endswith("riant-00-UD-Q4_K_XL")
    assert len(set(key)) == 13 and all("…" in k for k in key[1:])


def test_heatmap_text_contrasts_with_its_cell(tmp_path):
    from tests.store_fixtures import frame, scores

    df = frame(tmp_path / "o", scores("a", [3, 3]) + scores("b", [0, 0]))
    svg = plots.check_heatmap(report.check_rates(df), ["a", "b"], "t")
    assert svg is not None and 'fill: #ffffff' in svg       # white on the dark red and green ends
