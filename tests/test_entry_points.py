"""Every command a user runs is a console script (pyproject ``[project.scripts]``) whose target exists
and answers ``--help``; ``python run.py`` / ``python -m <module>`` stay the same programs."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO
from doc_commands import documented_commands

SCRIPTS = {
    "facemoe-train": "run:main",
    "facemoe-eval": "eval:main",
    "facemoe-predict": "predict:main",
    "facemoe-tokenizer": "engine.tokenizer:main",
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
def test_console_script_target_exists(script):
    """What the wrapper imports and calls (the ``--help`` of each runs below, as typed)."""
    module_name, _, attribute = SCRIPTS[script].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))


def test_documented_console_scripts_run_as_typed(tmp_path):
    """The README's ``facemoe-<x> --help`` lines in a fresh directory: the installed script when it is on
    PATH, else what its wrapper runs (``sys.exit(<target>())`` with the same arguments)."""
    documented = [c.command for c in documented_commands() if c.command.startswith("facemoe-")]
    assert sorted(c.split()[0] for c in documented) == sorted(SCRIPTS)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for command in documented:
        script, *arguments = command.split()
        module_name, _, attribute = SCRIPTS[script].partition(":")
        wrapper = [sys.executable, "-c", f"import sys; from {module_name} import {attribute}; sys.exit({attribute}())"]
        argv = [shutil.which(script)] if shutil.which(script) else wrapper
        done = subprocess.run([*argv, *arguments], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        assert HELP_TEXT[script] in done.stdout, command
