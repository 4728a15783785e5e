"""facemoe entry point: ``python run.py experiment=<name> [scale=demo] [key=value ...]``.

Builds datamodule, detector, callbacks, loggers and trainer from the Hydra config, trains,
selects the checkpoint on validation of the training domains, tests every configured test set
and writes ``results.json`` + ``predictions/`` in the run directory (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path

from engine.threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch loads OpenMP (engine/threads.py)

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from engine.resolvers import register_resolvers  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(Path(__file__).resolve().parent / "conf"), config_name="train")
def main(cfg: DictConfig) -> float | None:
    from engine.failures import run_fail_soft
    from engine.jobs import run_job
    from engine.user_errors import exit_on_user_error

    # A user mistake (bad value, missing file, full disk) is one readable line; bugs keep tracebacks.
    return exit_on_user_error(run_fail_soft, run_job, cfg)


if __name__ == "__main__":
    main()
