"""The report's plots as inline SVG strings (matplotlib, no pyplot, no GUI).

Figures are made with ``matplotlib.figure.Figure`` directly, so no global pyplot
state and no interactive backend is involved; SVG output is deterministic (fixed
``svg.hashsalt`` per plot, no date in the metadata, text kept as text), so the
same store always gives the same HTML.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from harness.report.reduce import ModelSummary

_RC = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
       "font.family": ["DejaVu Sans", "sans-serif"]}


def _rc(extra: dict[str, object] | None = None) -> Any:
    """The plots' rc settings (typed Any: matplotlib's stubs want literal keys)."""
    return {**_RC, **(extra or {})}


def _svg(fig: Figure, salt: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context(_rc({"svg.hashsalt": f"exam-sweep-{salt}"})):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher x and higher
    y are better; a point equal on one axis and better on the other dominates),
    ordered by x."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 >= x and y2 >= y and (x2 > x or y2 > y)) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def score_vs_speed(sums: list[ModelSummary], sizes: dict[str, int | None], salt: str) -> str | None:
    """Mean exam score (with its 95% CI) against decode tok/s, one point per model;
    marker area grows with model size when known; the Pareto front is drawn.

    Points are numbered and the names listed in a key beside the axes (one line per
    model, "1 model-name"), so long names and many models never overlap each other,
    the points or the legend; models at the same spot share one label ("1,2")."""
    with matplotlib.rc_context(_rc()):
        fig = score_vs_speed_figure(sums, sizes)
        return None if fig is None else _svg(fig, salt + "-speed")


def score_vs_speed_figure(sums: list[ModelSummary], sizes: dict[str, int | None]) -> Figure | None:
    """The figure of :func:`score_vs_speed` (call inside the plots' rc settings)."""
    pts = [(s, s.decode_tps, s.mean) for s in sums if s.decode_tps is not None and s.mean is not None]
    if not pts:
        return None
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    known = [size for s, _, _ in pts if (size := sizes.get(s.model))]
    biggest = max(known) if known else None
    front = pareto_front([(x, y) for _, x, y in pts])
    fx = [pts[i][1] for i in front]
    fy = [pts[i][2] for i in front]
    handles: list[Any] = [ax.step(fx, fy, where="post", color="#d62728", linewidth=1.2, alpha=0.7, zorder=1,
                       label="Pareto front (no model is both\nfaster and better)")[0]]
    at: dict[tuple[float, float], list[int]] = {}
    for i, (s, x, y) in enumerate(pts):
        size = sizes.get(s.model)
        area = 40.0 + 360.0 * (size / biggest) if size and biggest else 40.0
        on_front = i in front
        iv = s.interval
        if iv is not None:
            ax.errorbar([x], [y], yerr=[[y - iv.lo], [iv.hi - y]], fmt="none", ecolor="#999999",
                        elinewidth=1, capsize=2, zorder=2)
        handles.append(ax.scatter([x], [y], s=area, zorder=3, color="#d62728" if on_front else "#1f77b4",
                                  edgecolor="black", linewidth=0.6, alpha=0.85,
                                  label=f"{i + 1}  {_short(s.model, 40)}"))
        at.setdefault((round(x, 1), round(y, 2)), []).append(i + 1)
    for (x, y), numbers in at.items():
        text = ",".join(map(str, numbers)) if len(numbers) <= 6 else f"{numbers[0]}-{numbers[-1]}"
        ax.annotate(text, (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8, fontweight="bold")
    ax.set_xlabel("decode tok/s (mean over attempts)")
    ax.set_ylabel(f"mean exam score (/{sums[0].max_points:g}), 95% CI")
    ax.set_ylim(-0.03 * sums[0].max_points, sums[0].max_points * 1.08)
    xs = [x for _, x, _ in pts]
    pad = max(1.0, (max(xs) - min(xs)) * 0.15)
    ax.set_xlim(max(0.0, min(xs) - pad), max(xs) + pad * 2)
    title = "Score vs decode speed"
    if known:
        title += " (marker area: model size)"
    ax.set_title(title)
    # The key sits outside the axes: it can never cover a point, however many models.
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False,
              markerscale=0.5, ncols=1 if len(handles) <= 24 else 2, borderaxespad=0.0)
    ax.grid(alpha=0.25)
    return fig


def _short(name: str, width: int) -> str:
    """A model name cut to ``width`` characters in the middle, so the end (where names
    say the quant and variant) stays; the tables keep the whole name."""
    if len(name) <= width:
        return name
    tail = (width - 1) // 2
    return name[: width - 1 - tail] + "…" + name[-tail:]


def check_heatmap(rates: pd.DataFrame, models: list[str], salt: str) -> str | None:
    """Pass rate of each check (columns, grouped by task) for each model (rows)."""
    if rates.empty:
        return None
    cols = list(dict.fromkeys(zip(rates["task"], rates["check"])))
    cell = {(m, t, c): (p, n) for m, t, c, p, n in
            zip(rates["model"], rates["task"], rates["check"], rates["passed"], rates["n"])}
    rows = [m for m in models if any((m, t, c) in cell for t, c in cols)]
    grid = [[(cell[(m, t, c)][0] / cell[(m, t, c)][1]) if (m, t, c) in cell and cell[(m, t, c)][1] else float("nan")
             for t, c in cols] for m in rows]
    with matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(max(4.0, 0.55 * len(cols) + 2.5), max(1.6, 0.42 * len(rows) + 1.4)))
        ax = fig.subplots()
        # pcolormesh, not imshow: vector cells instead of an embedded bitmap.
        im = ax.pcolormesh([[float("nan") if v != v else v for v in row] for row in grid], cmap="RdYlGn",
                           vmin=0.0, vmax=1.0, edgecolors="white", linewidth=0.5)
        ax.set_xlim(0, len(cols))
        ax.set_ylim(len(rows), 0)
        for i, m in enumerate(rows):
            for j, (t, c) in enumerate(cols):
                if (m, t, c) in cell:
                    p, n = cell[(m, t, c)]
                    rate = p / n if n else 0.5
                    # RdYlGn is dark at both ends: white text there, black in the light middle.
                    ax.text(j + 0.5, i + 0.5, f"{p}/{n}", ha="center", va="center", fontsize=8,
                            color="white" if rate <= 0.2 or rate >= 0.85 else "black",
                            fontweight="bold")
        ax.set_yticks([i + 0.5 for i in range(len(rows))], [_short(m, 40) for m in rows])
        ax.set_xticks([j + 0.5 for j in range(len(cols))], [f"{t}/{c}" for t, c in cols], rotation=50,
                      ha="right")
        ax.tick_params(length=0)
        for j in range(1, len(cols)):
            if cols[j][0] != cols[j - 1][0]:
                ax.axvline(j, color="black", linewidth=1.5)
        ax.spines[:].set_visible(False)
        bar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="pass rate")
        if bar.solids is not None:
            bar.solids.set_rasterized(False)   # all vector: no bitmap inside the SVG
        ax.set_title("Per-check pass rate (model x check)")
        return _svg(fig, salt + "-checks")


def seed_strip(sums: list[ModelSummary], salt: str) -> str | None:
    """Every seed's exam score per model, with the mean and its 95% CI."""
    shown = [s for s in sums if s.scores]
    if not shown:
        return None
    mx = shown[0].max_points
    with matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(6.0, max(1.8, 0.45 * len(shown) + 1.2)))
        ax = fig.subplots()
        for i, s in enumerate(shown):
            y = len(shown) - 1 - i
            if s.interval is not None:
                ax.plot([s.interval.lo, s.interval.hi], [y, y], color="#999999", linewidth=3, alpha=0.6,
                        solid_capstyle="butt", zorder=1)
            scores = [s.scores[k] for k in sorted(s.scores)]
            # Equal scores are spread vertically so each seed stays visible.
            seen: dict[float, int] = {}
            for v in scores:
                k = seen.get(v, 0)
                seen[v] = k + 1
                ax.scatter([v], [y + (k - 0.5 * (scores.count(v) - 1)) * 0.12], s=28, color="#1f77b4",
                           edgecolor="black", linewidth=0.5, zorder=3)
            if s.mean is not None:
                ax.scatter([s.mean], [y], marker="|", s=300, color="black", zorder=4)
        ax.set_yticks(range(len(shown)), [_short(s.model, 40) for s in reversed(shown)])
        ax.set_xlim(-0.03 * mx, mx * 1.03)
        ax.set_ylim(-0.7, len(shown) - 0.3)
        ax.set_xlabel(f"exam score per seed (/{mx:g}); bar: mean; grey: 95% CI")
        ax.set_title("Spread over seeds")
        ax.grid(axis="x", alpha=0.25)
        return _svg(fig, salt + "-seeds")


def turn_curve(records: list[dict[str, Any]], salt: str) -> str | None:
    """Mean exam score after each repair turn, one line per model (the records of
    ``harness.report.turns.turns_table``)."""
    pts = [r for r in records if r.get("mean") is not None]
    if not pts:
        return None
    with matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(6.0, 3.6))
        ax = fig.subplots()
        for model in dict.fromkeys(r["model"] for r in pts):
            mine = [r for r in pts if r["model"] == model]
            ax.errorbar([r["turn"] for r in mine], [r["mean"] for r in mine],
                        yerr=[[r["mean"] - (r["ci_low"] if r["ci_low"] is not None else r["mean"]) for r in mine],
                              [(r["ci_high"] if r["ci_high"] is not None else r["mean"]) - r["mean"] for r in mine]],
                        marker="o", capsize=2, linewidth=1.2, label=_short(str(model), 40))
        turns = sorted({int(r["turn"]) for r in pts})
        ax.set_xticks(turns)
        ax.set_xlabel("after turn")
        mx = float(pts[0]["max_points"])
        ax.set_ylabel(f"mean exam score (/{mx:g}), 95% CI")
        ax.set_ylim(-0.03 * mx, mx * 1.08)
        ax.set_title("Score after each repair turn")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False, borderaxespad=0.0)
        ax.grid(alpha=0.25)
        return _svg(fig, salt + "-turns")
