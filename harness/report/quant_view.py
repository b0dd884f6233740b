"""Reports: the quantization view. For each base model served in several quants
(``harness.quant``), one table of its quants side by side on the exams and tasks
they all answered, with the paired verdict (``harness.report.compare``) of each quant
against the largest one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from harness import quant
from harness.quant import QuantInfo
from harness.report import compare, speed
from harness.report.reduce import ModelSummary, counts, works
from harness.report.tables import Table, format_points


def quant_tables(df: pd.DataFrame, summaries: Mapping[tuple[str, int], list[ModelSummary]],
                 infos: dict[str, QuantInfo], *, everything: bool = False) -> list[Table]:
    """For each base model with two or more quants (every base with ``everything``):
    Quant | Size | one column per exam version | Works | tok/s, plus paired verdicts
    of each quant against the largest one. ``summaries``: the per-model summaries of
    each exam version, in report order."""
    groups = quant.shared_bases(infos)
    if everything:
        for info in infos.values():
            groups.setdefault(info.group, [info])
    out = []
    for key in sorted(groups):
        rows_info = quant.order(groups[key])
        # Compare like with like: only the exam versions and tasks every quant of this base
        # has answers on (a quant that alone ran a long-prompt exam would look slower).
        group_models = [i.model for i in rows_info]
        tasks_of = [set(zip(*(df.loc[df["model"] == m, c] for c in ("exam", "exam_version", "task"))))
                    for m in group_models]
        common = set.intersection(*tasks_of) if tasks_of else set()
        common_exams = {(e, v) for e, v, _ in common}
        cols = [(e, v, {x.model: x for x in sums}, sums[0].max_points if sums else 0.0)
                for (e, v), sums in summaries.items() if (e, v) in common_exams]
        left_out = sorted({(e, v, t) for ts in tasks_of for e, v, t in ts} - common)
        in_common = pd.Series([(e, v, t) in common for e, v, t in zip(df["exam"], df["exam_version"], df["task"])],
                              index=df.index, dtype=bool)
        header = ["Quant", "Model", "Size", *[f"{e} v{v} (/{format_points(mx)})" for e, v, _, mx in cols], "Works", "tok/s"]
        rows, records = [], []
        for info in rows_info:
            m = df[(df["model"] == info.model) & in_common]
            row = [info.quant or "n/a", info.model, quant.format_size(info.size_bytes)]
            rec: dict[str, Any] = {"base": rows_info[0].base, "quant": info.quant, "model": info.model,
                                   "size_bytes": info.size_bytes, "source": info.source}
            for e, v, by_model, _ in cols:
                s = by_model.get(info.model)
                if s is None or s.mean is None or s.interval is None:
                    row.append("n/a")
                    continue
                row.append(f"{s.mean:.1f} [{s.interval.lo:.1f}–{s.interval.hi:.1f}]")
                rec[f"{e} v{v} mean"] = s.mean
            counted = m[m["outcome"].map(counts)]
            w = sum(works(c, b) for c, b in zip(counted["checks"], counted["built"]))
            dec, approx = speed.mean_decode(m)
            row += [f"{w}/{len(counted)}", speed.format_tps(dec, approx)]
            rec.update(works=w, attempts=len(counted), decode_tps=dec)
            rows.append(row)
            records.append(rec)
        notes = []
        ref = rows_info[0]
        for info in rows_info[1:]:
            notes += [f"{info.quant} vs {ref.quant}: {v}." for v in compare.verdicts(df, info.model, ref.model)]
        src = "the server" if all(i.source == "server" for i in rows_info) else "model names"
        notes.append(f"Cells: mean exam score [95% CI] over seeds. Works and tok/s over the exams and tasks every "
                     f"quant here answered. Base, quant and size from {src}.")
        if left_out:
            notes.append("Left out, not answered by every quant: "
                         + ", ".join(f"{e} v{v} {t}" for e, v, t in left_out) + ".")
        out.append(Table("quant", f"{rows_info[0].base}: quantizations", header, rows, [], notes, records))
    return out
