"""Check a table's transcribed numbers against the paper's extracted text (``tests/test_aggregate.py``,
``python -m sweeps.tables --check``)."""

from __future__ import annotations

import re

from sweeps.tables.schema import PaperTable, Row

PAPER_ROW_WINDOW = (-5, 45)
"""Lines around a table's anchor (before, after) where its rows must be found in the paper text."""


def paper_sequence(table: PaperTable, row: Row) -> list[float]:
    """The row's published numbers in the order the paper prints them (value, then its std)."""
    sequence: list[float] = []
    for column in table.columns:
        value = row.paper.get(column.key)
        if value is not None:
            sequence.append(float(value))
        if column.key in row.paper_std:
            sequence.append(float(row.paper_std[column.key]))
    return sequence


def check_transcription(table: PaperTable, paper_text: str) -> list[str]:
    """Problems with ``table``'s paper numbers against the paper's text (empty list = all found).

    Each row's numbers must appear, in order (other numbers may sit between them), on one line
    within :data:`PAPER_ROW_WINDOW` lines of the first line containing ``table.anchor``;
    numbers on a line are read with ``table.number_pattern``. A figure's anchor (its caption)
    must be found; its rows carry no numbers.
    """
    lines = paper_text.splitlines()
    anchors = [i for i, line in enumerate(lines) if table.anchor in line]
    if not anchors:
        return [f"{table.name}: anchor {table.anchor!r} not found in the {table.paper} paper text"]
    if table.figure:  # a plot: nothing to transcribe, the caption names what is measured
        return [
            f"{table.name}, row {row.key}: a figure has no paper numbers" for row in table.rows if row.paper
        ]
    first, last = anchors[0] + PAPER_ROW_WINDOW[0], anchors[0] + PAPER_ROW_WINDOW[1]
    window = lines[max(0, first) : last + 1]
    pattern = re.compile(table.number_pattern)
    numbers_by_line = [[float(token) for token in pattern.findall(line)] for line in window]
    problems = []
    for row in table.rows:
        expected = paper_sequence(table, row)
        if not expected:
            problems.append(f"{table.name}, row {row.key}: no paper numbers")
        elif not any(_is_subsequence(expected, numbers) for numbers in numbers_by_line):
            problems.append(
                f"{table.name}, row {row.key}: numbers {expected} not found in order on one line within "
                f"{PAPER_ROW_WINDOW} lines of {table.anchor!r}"
            )
    return problems


def _is_subsequence(expected: list[float], numbers: list[float]) -> bool:
    position = 0
    for number in numbers:
        if position < len(expected) and abs(number - expected[position]) < 1e-9:
            position += 1
    return position == len(expected)
