"""The suites' scheduling under pytest-xdist (tests/conftest.py): the tests they start first and last exist."""

from __future__ import annotations

import ast

from conftest import LAST, LONGEST_FIRST, REPO


def test_every_longest_first_entry_names_a_test_function():
    for node_id in (*LONGEST_FIRST, *LAST):
        path, _, name = node_id.partition("::")
        functions = {f.name for f in ast.parse((REPO / path).read_text()).body if isinstance(f, ast.FunctionDef)}
        assert name in functions, f"tests/conftest.py LONGEST_FIRST / LAST: {node_id} is not a test function (renamed or removed?)"


def test_the_slow_suite_runs_the_clip_demos_last_and_its_longest_first(pytestconfig):
    from conftest import pytest_collection_modifyitems

    class Item:
        def __init__(self, nodeid: str):
            self.nodeid = nodeid

    names = ["tests/test_a.py::test_x", f"{LAST[0]}[gmdf_ffpp-method]", LONGEST_FIRST[-1], f"{LAST[0]}[moa_ffpp-method]",
             "tests/test_b.py::test_y", f"{LONGEST_FIRST[0]}[one]"]
    items = [Item(n) for n in names]
    pytest_collection_modifyitems(pytestconfig, items)
    assert [i.nodeid for i in items] == [names[5], names[2], names[0], names[4], names[1], names[3]]


def test_a_test_the_budget_cannot_fit_is_skipped_by_name(monkeypatch):
    import time

    import conftest
    import pytest

    class Item:
        nodeid = "tests/test_clip_demos.py::test_x[gmdf_ffpp-method]"

        def __init__(self, timeout: float | None):
            self.timeout = timeout
            self.config = self

        def get_closest_marker(self, name):
            return pytest.mark.timeout(self.timeout).mark if self.timeout else None

        def getoption(self, name, default=None):
            return 900

    monkeypatch.setenv("FACEMOE_TEST_BUDGET_S", "3000")
    monkeypatch.setattr(conftest, "_SESSION_START", time.monotonic() - 2000)
    conftest.pytest_runtest_setup(Item(None))  # within the budget: starts
    conftest.pytest_runtest_setup(Item(1800))  # 2000 s spent + 900 s beyond --timeout <= 3000: starts
    with pytest.raises(pytest.skip.Exception, match=r"test_x\[gmdf_ffpp-method\]: .* it may take 1500 s longer"):
        conftest.pytest_runtest_setup(Item(2400))  # 2000 + 1500 > 3000
    monkeypatch.setattr(conftest, "_SESSION_START", time.monotonic() - 3100)
    with pytest.raises(pytest.skip.Exception, match=r"test_x\[gmdf_ffpp-method\]: test budget .* spent"):
        conftest.pytest_runtest_setup(Item(None))
