"""What a run prints: Lightning's log lines once, the config tree at the start, and the results
table at the end (full width and with M_EER whether or not the output is a terminal)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
# Results table: (level, metric) columns.
TABLE_COLUMNS = (("frame", "auc"), ("frame", "eer"), ("frame", "ap"), ("frame", "acc"), ("video", "auc"), ("video", "eer"))


def single_lightning_log() -> None:
    """Lightning adds its own console handler when it is imported before logging is configured; under
    Hydra, whose handlers (console + the run's log file) the records also reach, every Lightning INFO
    line would print twice. Keep Hydra's: drop Lightning's own stream handlers when the root logger
    has handlers."""
    if not logging.getLogger().handlers:
        return
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def _console(renderable: Any = None):
    """A rich console; when the output is not a terminal (a log file, SLURM), wide enough for
    ``renderable`` instead of rich's 80-column default, so nothing is cut."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal and renderable is not None:
        width = Console(width=10_000).measure(renderable).maximum
        console = Console(width=max(80, width))
    return console


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value) else "nan"


def results_table(tests: Mapping[str, Mapping[str, Any]], title: str, m_eer: Mapping[str, float | None] | None = None):
    """Rich table of the test sets (``{set: {"metrics": {level: {...}}, "predictions": frame}}``) with a
    last row M_EER (max EER over the sets) under the EER columns."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("test set")
    for level, key in TABLE_COLUMNS:
        table.add_column(f"{level} {key}", justify="right")
    table.add_column("frames", justify="right")
    for name, result in tests.items():
        metrics = result["metrics"]
        table.add_row(name, *(_cell(metrics[level].get(key, float("nan"))) for level, key in TABLE_COLUMNS), str(len(result["predictions"])))
    if m_eer is not None:
        cells = [_cell(float("nan") if m_eer.get(level) is None else m_eer[level]) if key == "eer" else "" for level, key in TABLE_COLUMNS]
        table.add_section()
        table.add_row("M_EER (max EER)", *cells, "")
    return table


def print_results_table(tests: Mapping[str, Mapping[str, Any]], title: str, m_eer: Mapping[str, float | None] | None = None) -> None:
    table = results_table(tests, title, m_eer)
    _console(table).print(table)


def config_tree(cfg: DictConfig, fields: Sequence[str] | None = None):
    """The resolved config as a rich tree, one branch per top-level key (``fields`` first, in order)."""
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    keys = list(fields or []) + [k for k in cfg if k not in (fields or [])]
    for key in keys:
        if key not in cfg:
            continue
        value = cfg[key]
        branch = tree.add(str(key), guide_style="dim")
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(OmegaConf.to_container(OmegaConf.create({"v": value}), resolve=True)["v"])
        branch.add(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    return tree


def print_config_tree(cfg: DictConfig, fields: Sequence[str] | None = None) -> None:
    tree = config_tree(cfg, fields)
    _console(tree).print(tree)
