"""Every command a user runs is a console script (pyproject ``[project.scripts]``) whose target exists
and answers ``--help``; ``python run.py`` / ``python -m <module>`` stay the same programs."""

from __future__ import annotations

import importlib
import sys
import tomllib

import pytest
from conftest import REPO

SCRIPTS = {
    "facemoe-train": "run:main",
    "facemoe-eval": "eval:main",
    "facemoe-predict": "predict:main",
    "facemoe-tokenizer": "detectors.dvae:main",
    "facemoe-robustness": "engine.robustness:main",
    "facemoe-preprocess": "datamodules.preprocess.__main__:main",
    "facemoe-aggregate": "sweeps.aggregate:main",
}
# What each --help shows: Hydra's help lists the config groups; the others their usage.
HELP_TEXT = {
    "facemoe-train": "experiment:", "facemoe-eval": "Powered by Hydra", "facemoe-predict": "Powered by Hydra",
    "facemoe-tokenizer": "experiment:", "facemoe-robustness": "run_dir=<run dir>",
    "facemoe-preprocess": "--dataset", "facemoe-aggregate": "--table",
}


def test_every_command_is_a_declared_console_script():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert declared == SCRIPTS


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_target_exists_and_prints_help(script, monkeypatch, capsys):
    module_name, _, attribute = SCRIPTS[script].partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    assert callable(target)
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    try:
        code = target(["--help"]) if script in ("facemoe-robustness", "facemoe-preprocess", "facemoe-aggregate") else target()
    except SystemExit as exit_:
        code = exit_.code
    assert code in (0, None)
    assert HELP_TEXT[script] in capsys.readouterr().out
