"""A report table and its renderings (markdown, CSV, JSON).

A ``Table`` carries both what a reader sees (``header``/``rows``, formatted strings,
with rows to show in bold) and what a program reads (``records``: one dict per
fact, numbers unformatted), so every output format comes from one reduction.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tabulate import tabulate


def format_points(x: float) -> str:
    """Points in a cell: whole numbers without decimals, else one decimal."""
    return f"{x:.1f}" if abs(x - round(x)) > 1e-9 else f"{x:.0f}"


@dataclass(frozen=True)
class Table:
    kind: str                    # "summary", "checks", "pass_at_k", "quant"
    title: str
    header: list[str]
    rows: list[list[str]]
    bold: list[bool] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def is_bold(self, i: int) -> bool:
        return i < len(self.bold) and self.bold[i]

    def markdown(self) -> str:
        rows = [[f"**{c}**" if self.is_bold(i) and c else c for c in row] for i, row in enumerate(self.rows)]
        return tabulate(rows, headers=self.header, tablefmt="github", disable_numparse=True)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "header": self.header, "rows": self.rows,
                "bold": [self.is_bold(i) for i in range(len(self.rows))], "notes": self.notes,
                "records": [_clean(r) for r in self.records]}


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe values: NaN becomes null, numpy scalars become Python numbers."""
    out = {}
    for k, v in record.items():
        if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out


def to_json(tables: list[Table], warnings: list[str]) -> str:
    return json.dumps({"tables": [t.to_json() for t in tables], "warnings": warnings}, indent=2,
                      ensure_ascii=False)


def to_csv(tables: list[Table]) -> str:
    """Every table's records in one long CSV: a ``table`` column says which table a
    row belongs to; columns a table does not have are empty."""
    records = [{"table": t.kind, **_clean(r)} for t in tables for r in t.records]
    if not records:
        return ""
    buf = io.StringIO()
    pd.DataFrame.from_records(records).convert_dtypes().to_csv(buf, index=False)
    return buf.getvalue()
