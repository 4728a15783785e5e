"""Which exceptions are the user's to fix (a config value, a file, a full disk, a diverging
configuration) rather than bugs: ``run.py`` prints their message alone, without a traceback, and
exits with status 2. Every other exception keeps its traceback, because it is a bug to report.

Each class lives beside the code that raises it; this module only lists them (imports go one way:
the entry point and the engine know the lower layers, not the reverse).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from datamodules.frame_dataset import UnreadableImageError
from datamodules.protocol import ProtocolError
from datamodules.sources import DatasetNotFoundError
from detectors.guards import NonFiniteScoresError, TrainingDivergedError
from detectors.weights_file import WeightsFileError
from engine.preflight import UserConfigError
from evaluation.results import OutputWriteError

log = logging.getLogger(__name__)

USER_ERRORS: tuple[type[BaseException], ...] = (
    UserConfigError,
    ProtocolError,
    DatasetNotFoundError,
    UnreadableImageError,
    WeightsFileError,
    OutputWriteError,
    TrainingDivergedError,
    NonFiniteScoresError,
)
USER_ERROR_EXIT_CODE = 2


def exit_on_user_error(task: Callable[..., Any], *args: Any) -> Any:
    """``task(*args)``; a user error becomes one ``error: <message>`` line on stderr and exit status 2."""
    try:
        return task(*args)
    except Exception as error:
        mistake = user_error(error)
        if mistake is None:
            raise
        if logging.getLogger().handlers:  # Hydra's console + job log file
            log.error("error: %s", mistake)
        else:
            print(f"error: {mistake}", file=sys.stderr, flush=True)
        raise SystemExit(USER_ERROR_EXIT_CODE) from None


def user_error(error: BaseException) -> BaseException | None:
    """``error`` or the user error it wraps (Hydra's ``InstantiationException`` wraps what a
    constructor raised, e.g. a refused weights file), else None: a bug."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, USER_ERRORS):
            return error
        seen.add(id(error))
        error = error.__cause__
    return None
