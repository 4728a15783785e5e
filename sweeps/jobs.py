"""The job directories of a sweep, read back: where they are (a job: results.json, failed.json or
``.hydra/``; runs nested in a job, such as self-distillation generations, are jobs of their own), what
each was configured as and how it ended (:class:`Job`). Used by the table aggregator
(``sweeps/aggregate.py``) and the per-knob summary (``sweeps/summary.py``), so neither imports the other.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from engine.failures import FAILED_FILE_NAME, read_failure
from evaluation.results import RESULTS_FILE_NAME, ResultsFileError, load_results
from sweeps.tables import GENERATION

HYDRA_DIR = ".hydra"
ROBUSTNESS_FILE_NAME = "robustness.json"  # engine.robustness writes it (not imported: it needs torch)
SELF_DISTILL_FILE_NAME = "self_distill.json"  # engine.self_distill writes it in the chain's directory
_GENERATION_DIR = re.compile(r"gen(\d+)")
_SKIPPED_DIRS = {
    ".submitit",
    "wandb",
    "checkpoints",
    "predictions",
    "csv",
    "tensorboard",
    "tables",
    HYDRA_DIR,
}
_MISSING = object()


JOB_DONE = "done"
JOB_FAILED = "failed"
JOB_NO_RESULT = "no_result"
JOB_CHAIN = "chain"  # a self-distillation chain's own directory: its generations are the jobs


class AggregateError(RuntimeError):
    """Nothing to aggregate (no such directory, no job directory below it)."""


@dataclass
class Job:
    """One job directory: what it was configured as and how it ended."""

    directory: Path
    status: str
    config: Any
    choices: dict[str, str]
    results: dict | None = None
    failure: dict | None = None
    problem: str = ""
    robustness: dict | None = None
    derived: dict[str, Any] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """A config-group choice (``detector``), a dotted config value, or a value derived from
        the job's place (``self_distill.generation`` of a ``gen<g>/`` run); ``_MISSING`` if absent."""
        if key in self.choices:
            return self.choices[key]
        try:
            found = OmegaConf.select(self.config, key, default=_MISSING, throw_on_missing=False)
        except Exception:  # an interpolation that cannot resolve outside the job counts as absent
            found = _MISSING
        if found is _MISSING:
            return self.derived.get(key, _MISSING)
        if OmegaConf.is_config(found):
            return OmegaConf.to_container(found, resolve=True)
        return found

    @property
    def seed(self) -> str:
        value = self.value("seed")
        return "?" if value is _MISSING else canonical(value)


def discover_jobs(paths: Iterable[str | Path]) -> list[Job]:
    """Every job directory at or below ``paths``, loaded; raises AggregateError if none."""
    paths = list(paths)
    directories: dict[Path, Path | None] = {}
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.exists():
            raise AggregateError(f"{root}: no such directory (expected a sweep directory or a job directory)")
        for candidate, parent in _job_directories(root, None):
            directories.setdefault(candidate.resolve(), parent)
    if not directories:
        raise AggregateError(
            f"no job directory (results.json, {FAILED_FILE_NAME} or {HYDRA_DIR}/) found under {[str(p) for p in paths]}"
        )
    jobs = [
        load_job(directory, directories[directory]) for directory in sorted(directories, key=_natural_key)
    ]
    return jobs + _missing_generations(jobs, directories)


def _missing_generations(jobs: Sequence[Job], parents: Mapping[Path, Path | None]) -> list[Job]:
    """Placeholders for the generations a self-distillation chain did not reach (it failed, was
    killed or still runs), so their cells say FAILED / no result instead of "not run"."""
    placeholders = []
    for chain in jobs:
        generations = chain.value("self_distill.generations")
        if chain.value("pipeline") != "self_distill" or not isinstance(generations, int):
            continue
        reached = {
            job.derived.get(GENERATION)
            for job in jobs
            if (parent := parents.get(job.directory.resolve())) is not None
            and Path(parent).resolve() == chain.directory.resolve()
        }
        status = JOB_FAILED if chain.status == JOB_FAILED else JOB_NO_RESULT
        for generation in range(generations + 1):
            if generation not in reached:
                placeholders.append(
                    Job(
                        chain.directory / f"gen{generation}",
                        status,
                        chain.config,
                        chain.choices,
                        failure=chain.failure,
                        problem=f"generation {generation} of the chain in {chain.directory} has no run",
                        derived={GENERATION: generation},
                    )
                )
    return placeholders


def _job_directories(root: Path, parent: Path | None) -> Iterable[tuple[Path, Path | None]]:
    """Job directories with the nearest enclosing job directory (runs nested in a job, such as the
    generations ``gen<g>/`` of DTN's self-distillation chain, are jobs of their own)."""
    if not root.is_dir():
        return
    if _is_job_directory(root):
        yield root, parent
        parent = root
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name not in _SKIPPED_DIRS and not child.name.startswith("."):
            yield from _job_directories(child, parent)


def _is_job_directory(path: Path) -> bool:
    return (
        (path / RESULTS_FILE_NAME).is_file()
        or (path / FAILED_FILE_NAME).is_file()
        or (path / HYDRA_DIR / "config.yaml").is_file()
    )


def _natural_key(path: Path) -> tuple:
    """Job 2 before job 10: numeric path parts compare as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)


def load_job(directory: str | Path, parent: str | Path | None = None) -> Job:
    """Read one job directory (never raises for a broken job: it is reported as such). A nested
    run without its own ``.hydra/`` takes the config-group choices of the enclosing job ``parent``."""
    path = Path(directory)
    choices = _hydra_choices(path)
    if not (path / HYDRA_DIR).is_dir() and parent is not None:
        choices = _hydra_choices(Path(parent))
    results = failure = None
    problem = ""
    if (path / RESULTS_FILE_NAME).is_file():
        try:
            results = load_results(path / RESULTS_FILE_NAME)
        except ResultsFileError as error:
            problem = str(error)
    failure = read_failure(path)
    if results is not None:
        status, config = JOB_DONE, results["config"]
    elif failure is not None:
        status, config = JOB_FAILED, failure.get("config") or _hydra_config(path)
    else:
        chain = (path / SELF_DISTILL_FILE_NAME).is_file()
        status, config = (JOB_CHAIN if chain else JOB_NO_RESULT), _hydra_config(path)
    derived = {}
    generation = _GENERATION_DIR.fullmatch(path.name)
    if parent is not None and generation:
        derived[GENERATION] = int(generation.group(1))
    return Job(
        path,
        status,
        OmegaConf.create(config or {}),
        choices,
        results,
        failure,
        problem,
        _robustness(path),
        derived,
    )


def _robustness(path: Path) -> dict | None:
    """The job's robustness.json (engine.robustness), or None (absent or unreadable, with a warning)."""
    report = path / ROBUSTNESS_FILE_NAME
    if not report.is_file():
        return None
    try:
        return json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        warnings.warn(f"{report}: unreadable ({error}); its cells count as missing", stacklevel=2)
        return None


def _hydra_choices(path: Path) -> dict[str, str]:
    hydra_file = path / HYDRA_DIR / "hydra.yaml"
    if not hydra_file.is_file():
        return {}
    try:
        content = yaml.safe_load(hydra_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        warnings.warn(f"{hydra_file}: unreadable ({error}); matching on config values only", stacklevel=2)
        return {}
    choices = ((content.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    return {str(k): str(v) for k, v in choices.items() if not str(k).startswith("hydra/")}


def _hydra_config(path: Path) -> dict:
    config_file = path / HYDRA_DIR / "config.yaml"
    if not config_file.is_file():
        return {}
    try:
        return yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        warnings.warn(f"{config_file}: unreadable ({error})", stacklevel=2)
        return {}


def canonical(value: Any) -> str:
    """A value as Hydra's command line writes it: ``true``, ``null``, ``0.1``, ``[a,b]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{canonical(v)}" for k, v in value.items()) + "}"
    return str(value)
