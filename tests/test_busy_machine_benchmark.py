"""The busy-machine benchmark's ``--command`` mode (docs/BENCHMARKS.md, "Busy machine"): it times a command
idle and beside the CPU-bound processes it starts itself, prints the ratio, stops its background processes,
and fails loudly when the command fails. No timing is asserted (the machine is shared)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "busy_machine.py"


def _run(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--settings", "new", "--background", "1", "--rounds", "1", "--command", command],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_a_command_is_timed_idle_and_loaded_with_its_ratio(tmp_path):
    marker = tmp_path / "ran"
    done = _run(f"{sys.executable} -c \"import pathlib; p = pathlib.Path('{marker}'); p.write_text(p.read_text() + 'x' if p.exists() else 'x')\"")
    assert done.returncode == 0, done.stderr[-2000:]
    assert marker.read_text() == "xx"  # once idle, once loaded
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("new ")]
    assert [row[1] for row in rows] == ["0", "1"], done.stdout  # background 0 and 1
    assert float(rows[0][4]) == 1.0 and float(rows[1][4]) > 0, done.stdout  # loaded / unloaded


def test_a_failing_command_fails_the_benchmark_with_its_output():
    done = _run(f"{sys.executable} -c \"import sys; print('boom'); sys.exit(3)\"")
    assert done.returncode != 0
    assert "exited 3" in done.stderr and "boom" in done.stderr, done.stderr[-2000:]
