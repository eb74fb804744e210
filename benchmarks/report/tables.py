"""Turn a benchmark's printed output into Markdown tables, and derive icapdlp-vs-peer ratios.

The benchmarks print fixed-width text tables (a header, a line of dashes,
rows, a blank line) or Markdown pipe tables. Column boundaries of a text
table are the character positions that are blank in the header and in every
row, which is how a person reads such a table too.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?x?$", re.I)


def _split_fixed(lines: list[str]) -> list[list[str]]:
    width = max(len(line) for line in lines)
    padded = [line.ljust(width) for line in lines]
    blank = [all(line[i] == " " for line in padded) for i in range(width)]
    cells_per_line: list[list[str]] = [[] for _ in padded]
    start = None
    for i in range(width + 1):
        is_blank = i == width or blank[i]
        if not is_blank and start is None:
            start = i
        elif is_blank and start is not None:
            for row, line in zip(cells_per_line, padded):
                row.append(line[start:i].strip())
            start = None
    return _merge_header_words(cells_per_line)


def _merge_header_words(rows: list[list[str]]) -> list[list[str]]:
    """A header like "median s/frame" over right-aligned numbers splits in two; rejoin it.

    A column with a header word and no data in any row is a piece of the next
    column's header (numbers are right-aligned under their header).
    """
    rows = _merge_unnamed_columns(rows)
    header, data = rows[0], rows[1:]
    keep: list[int] = []
    carry = ""
    for c, name in enumerate(header):
        if data and name and all(not row[c] for row in data) and c + 1 < len(header):
            carry = f"{carry} {name}".strip()
            continue
        header[c] = f"{carry} {name}".strip()
        carry = ""
        keep.append(c)
    return [[row[c] for c in keep] for row in rows]


def _merge_unnamed_columns(rows: list[list[str]]) -> list[list[str]]:
    """A left-aligned name with spaces ("whole pipeline (12-bit)") overhangs into a column of
    its own with no header; it belongs to the column on its left."""
    header = rows[0]
    merged = [[row[0]] if row else [] for row in rows]
    for c in range(1, len(header)):
        if not header[c] and header[c - 1]:
            for out, row in zip(merged, rows):
                out[-1] = f"{out[-1]} {row[c]}".strip()
        else:
            for out, row in zip(merged, rows):
                out.append(row[c])
    return merged


def _looks_fixed_width(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("|") and line.count("  ") >= 2


def extract_tables(text: str) -> list[list[list[str]]]:
    """Every table in ``text`` as rows of cells (first row = header)."""
    lines = text.splitlines()
    tables: list[list[list[str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.fullmatch(r"\|[\s:|-]+\|?", lines[i]):
                    block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            if len(block) > 1:
                tables.append(block)
            continue
        if i + 1 < len(lines) and re.fullmatch(r"-{8,}", lines[i + 1].strip()) and line.strip():
            block_lines = [line]
            j = i + 2
            while j < len(lines) and lines[j].strip():
                block_lines.append(lines[j])
                j += 1
            if len(block_lines) > 1:
                tables.append(_split_fixed(block_lines))
            i = j
            continue
        if _looks_fixed_width(line) and i + 1 < len(lines) and _looks_fixed_width(lines[i + 1]):
            j = i
            while j < len(lines) and _looks_fixed_width(lines[j]):
                j += 1
            table = _split_fixed(lines[i:j])
            if len(table[0]) >= 3:  # a real table, not two indented sentences
                tables.append(table)
            i = j
            continue
        i += 1
    return tables


def to_markdown(table: list[list[str]]) -> str:
    header, *rows = table
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row + [""] * (len(header) - len(row))) + " |" for row in rows]
    return "\n".join(out)


def _number(cell: str) -> float | None:
    cell = cell.replace(",", "").rstrip("x%")
    try:
        return float(cell)
    except ValueError:
        return None


def ratios(table: list[list[str]]) -> list[list[str]] | None:
    """For a table with an icapdlp row and peer rows: icapdlp / peer for every numeric column.

    Rows are grouped by the cells left of the tool column (e.g. the kind of
    file), so each peer is compared with icapdlp's row of the same group.
    """
    header, *rows = table
    tool_col = next((c for row in rows for c, cell in enumerate(row)
                     if cell.lower().startswith("icapdlp")), None)
    if tool_col is None:
        return None
    groups: dict[tuple[str, ...], list[list[str]]] = {}
    last_key: tuple[str, ...] = ()
    for row in rows:
        key = tuple(row[:tool_col])
        if not any(key) and last_key:
            key = last_key  # a blank group cell continues the group above
        last_key = key
        groups.setdefault(key, []).append(row)
    out = [header[:tool_col + 1] + [f"{h} (icapdlp ÷ peer)" for h in header[tool_col + 1:]]]
    for key, members in groups.items():
        ours = next((r for r in members if r[tool_col].lower().startswith("icapdlp")), None)
        if ours is None:
            continue
        for peer in members:
            if peer is ours:
                continue
            cells = []
            for c in range(tool_col + 1, len(header)):
                a = _number(ours[c]) if c < len(ours) else None
                b = _number(peer[c]) if c < len(peer) else None
                cells.append(f"{a / b:.2f}" if a is not None and b not in (None, 0) else "")
            if any(cells):
                out.append(list(key) + [f"vs {peer[tool_col]}"] + cells)
    return out if len(out) > 1 else None
