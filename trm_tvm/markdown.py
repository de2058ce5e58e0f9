"""Markdown tables, one spelling for every stage's summary.md and the report."""
from __future__ import annotations


def table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table: header, separator, one line per row (cells as str)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
