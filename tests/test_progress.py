"""The live status line's state and text (a fake clock), the CLI renderer in both
modes, and the end-of-sweep summary line."""

from __future__ import annotations

from collections import Counter

from harness.cli.progress import LiveStatus, duration, summary_line
from harness.events import Event, EventKind
from harness.generate.runner import SweepSummary
from harness.results import CellKey


def _key(model: str = "qwen3", seed: int = 1) -> CellKey:
    return CellKey(model, "go-basics", 1, "factorial", seed)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_status_line_and_eta():
    clock = Clock()
    st = LiveStatus(clock)
    st.update(Event(EventKind.INFO, "10 cells", total=10))
    clock.t += 20
    st.update(Event(EventKind.GENERATED, "ok", _key(), "ok", 1, 10, wall_s=19.0, tokens_per_s=41.25))
    clock.t += 20
    st.update(Event(EventKind.GENERATED, "ok", _key(seed=2), "ok", 2, 10, wall_s=20.0, tokens_per_s=40.0))
    st.update(Event(EventKind.GRADED, "all checks passed", _key(), "ran", total=10, points=5, max_points=5))
    assert st.eta_s() == 160.0                     # 20 s per generated cell x 8 cells left
    line = st.line(200)
    assert line == "[2/10] qwen3 | last: ran 5/5 | 40.0 tok/s | graded 1/2 | ETA 2m40s"
    assert len(st.line(20)) == 20 and st.line(20).endswith("…")


def test_skips_count_as_done_and_errors_as_last_outcome():
    clock = Clock()
    st = LiveStatus(clock)
    st.update(Event(EventKind.INFO, "4 cells", total=4))
    st.update(Event(EventKind.SKIP, "already done", _key(), "ok", 1, 4))
    st.update(Event(EventKind.ERROR, "HTTP 500", _key("b"), "endpoint_error", 2, 4))
    assert st.line().startswith("[2/4] b | last: endpoint_error")
    assert st.eta_s() is None                      # nothing generated yet


def test_grading_after_the_last_cell():
    clock = Clock()
    st = LiveStatus(clock)
    st.update(Event(EventKind.INFO, "1 cells", total=1))
    st.update(Event(EventKind.GENERATED, "ok", _key(), "ok", 1, 1, tokens_per_s=None))
    assert st.line().endswith("graded 0/1 | grading")


def test_duration():
    assert [duration(x) for x in (0, 59.4, 61, 3599, 3600 * 2 + 120)] == ["0s", "59s", "1m01s", "59m59s", "2h02m"]


def test_summary_line():
    s = SweepSummary(run_id=1, total_cells=6, generated=4, skipped=2, graded=4,
                     outcomes=Counter({"ran": 3, "build_failed": 1}))
    assert summary_line(s, 75) == ("sweep finished in 1m15s: 6 cells, 4 generated, 2 already stored, 4 graded "
                                   "(build_failed 1, ran 3)")
    s.errors.append("x")
    assert summary_line(s, 1).startswith("sweep ended with errors") and summary_line(s, 1).endswith("1 error(s)")


def test_cli_renderer_live_and_plain(capsys):
    import sweep

    live = sweep.Progress(quiet=False, live=True)
    live(Event(EventKind.INFO, "2 cells", total=2))
    live(Event(EventKind.GENERATED, "ok", _key(), "ok", 1, 2, tokens_per_s=12.0))
    live(Event(EventKind.ERROR, "HTTP 500", _key(seed=2), "endpoint_error", 2, 2))
    live.close()
    err = capsys.readouterr().err
    assert "\r\x1b[2K[1/2] qwen3 | 12.0 tok/s" in err            # redrawn in place
    assert "  ! qwen3 / go-basics v1 / factorial / seed 2: HTTP 500\n" in err   # errors stay as lines
    assert err.endswith("\r\x1b[2K")                              # status removed at the end
    plain = sweep.Progress(quiet=False)
    plain(Event(EventKind.GENERATED, "ok", _key(), "ok", 1, 2))
    plain(Event(EventKind.WARNING, "n_ctx small", None))
    err = capsys.readouterr().err
    assert err == "[1/2] qwen3 / go-basics v1 / factorial / seed 1: answer ok\n  warning: n_ctx small\n"
    quiet = sweep.Progress(quiet=True, live=True)
    quiet(Event(EventKind.GENERATED, "ok", _key(), "ok", 1, 2))
    quiet(Event(EventKind.ERROR, "boom", None))
    assert capsys.readouterr().err == "  ! boom\n"
