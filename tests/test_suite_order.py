"""The default suite's scheduling under pytest-xdist (tests/conftest.py): the tests it starts first exist."""

from __future__ import annotations

import ast

from conftest import LONGEST_FIRST, REPO


def test_every_longest_first_entry_names_a_test_function():
    for node_id in LONGEST_FIRST:
        path, _, name = node_id.partition("::")
        functions = {f.name for f in ast.parse((REPO / path).read_text()).body if isinstance(f, ast.FunctionDef)}
        assert name in functions, f"tests/conftest.py LONGEST_FIRST: {node_id} is not a test function (renamed or removed?)"
