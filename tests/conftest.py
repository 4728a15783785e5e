"""Shared test fixtures: composing the Hydra config the way run.py does, and one embedded
synthetic dataset cache per test session (generated once, reused by every test)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from common.cpus import cpu_budget  # noqa: E402  (no torch import: threads are set before torch loads)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: no spinning threads (engine/threads.py)
# pytest-xdist (``-n auto`` in pyproject's addopts) runs one worker per CPU this process may use
# (pytest_xdist_auto_num_workers below). Each worker, and every run.py it starts, then takes its
# share of the CPUs (OMP_NUM_THREADS, which engine.threads honours), so workers never oversubscribe.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = max(1, int(os.environ.get("OMP_NUM_THREADS") or cpu_budget().cpus) // _WORKERS)
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)
import torch  # noqa: E402

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(min(2, _THREADS))

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module, with ``benchmarks/`` on ``sys.path`` as when it runs as a
    script (the benchmarks import their siblings by name)."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """What runs cache under ``paths.cache_dir`` (the tiny CLIP, dVAE tokenizers, embedded data of runs
    that do not name ``data.synthetic.root``) goes to one folder of this test session, shared by its
    xdist workers: never to the checkout's ``.cache/`` or a user's ``FACEMOE_CACHE``, so no test reads
    what an earlier session left (every session starts cold, as CI does). Subprocesses inherit it."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = tmp_path_factory.getbasetemp().parent / "facemoe-cache"
    else:
        root = tmp_path_factory.mktemp("facemoe-cache")
    root.mkdir(parents=True, exist_ok=True)
    os.environ["FACEMOE_CACHE"] = str(root)
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """The session's synthetic data cache (FACEMOE_TEST_CACHE reuses one across sessions)."""
    shared = os.environ.get("FACEMOE_TEST_CACHE")
    if shared:
        return Path(shared)
    if "PYTEST_XDIST_WORKER" in os.environ:
        # One cache for all workers of this run (their base temps share a parent); the generator
        # builds it once under a lock and renames it into place (datamodules/synthetic.py).
        return tmp_path_factory.getbasetemp().parent / "synthetic"
    return tmp_path_factory.mktemp("synthetic")


CLIP_TEST_IMAGE_SIZE = 32
"""Input size of the tiny CLIP the CLIP-method tests share (``clip_file``)."""


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    """A tiny CLIP (``CLIP_TEST_IMAGE_SIZE`` px) saved to disk: ``(model, path)``; a detector loads the
    file as its ``pretrained`` weights, the test keeps the original to compare with."""
    from detectors.backbones.clip import build_clip

    torch.manual_seed(0)
    clip = build_clip("ViT-B-16", size="tiny", image_size=CLIP_TEST_IMAGE_SIZE).eval()
    path = tmp_path_factory.mktemp("clip") / "tiny_clip.pt"
    torch.save(clip.state_dict(), path)
    return clip, str(path)


def tiny_detector(cls, aux_loss_weights, overrides, *, input_size: int = 64, optimizer=None, **defaults):
    """``cls`` at test size: ``size='tiny'``, ``input_size``, Adam at lr 1e-3 unless ``optimizer`` is
    given, the test's ``aux_loss_weights`` and ``defaults``; ``overrides`` (the test's keywords) win."""
    import functools

    kwargs = dict(
        size="tiny", input_size=input_size, optimizer=optimizer or functools.partial(torch.optim.Adam, lr=1e-3),
        aux_loss_weights=aux_loss_weights, **defaults,
    )
    return cls(**{**kwargs, **overrides})


def compose(overrides: list[str], output_dir: Path, synthetic_root: Path | None = None):
    """Compose ``conf/train.yaml`` as run.py would, with the run directory at ``output_dir``."""
    from engine.compose import compose_run_config

    extra = [f"paths.log_dir={output_dir / 'logs'}", "logger=csv"]
    if synthetic_root is not None:
        extra.append(f"data.synthetic.root={synthetic_root}")
        extra.append("data.synthetic.progress=false")
    cfg = compose_run_config([*extra, *overrides], output_dir)
    return cfg


def compose_jobs(jobs: list[list[str]], compose_groups) -> list:
    """Each job's config of a multirun: jobs that choose the same config groups share one composition,
    ``compose_groups(group_overrides)``; their value overrides (``seed=1``, ``detector.top_k=3``) are then
    applied as Hydra applies command-line values, after the defaults merge. (A full compose per job is
    ~0.2-0.35 s; the sweeps and the documented multiruns have hundreds of jobs.)"""
    import copy

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    cache: dict[tuple[str, ...], object] = {}
    configs = []
    for overrides in jobs:
        parsed = parser.parse_overrides(overrides)
        groups = tuple(o.input_line for o in parsed if (CONF / o.key_or_group).is_dir())
        if groups not in cache:
            cache[groups] = compose_groups(list(groups))
        cfg = copy.deepcopy(cache[groups])
        for override in parsed:
            if override.input_line not in groups:
                OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
        configs.append(cfg)
    return configs


# Runs whose test reads no figure train without them (~2-5 s of matplotlib a run on 2 busy cores): every
# experiment's expert-usage heatmaps, and one experiment's ROC/DET curves and histograms, are checked in
# test_training.py's fast-dev-runs, their content in test_plots.py.
NO_FIGURES = ["~callbacks.plots"]


def trained_metrics(overrides: list[str], output_dir: Path, synthetic_root: Path):
    """Train ``overrides`` in-process (``engine.pipeline.run``) into ``output_dir``; its ``csv/metrics.csv``."""
    import pandas as pd

    from engine.pipeline import run

    run(compose([*overrides, *NO_FIGURES], output_dir, synthetic_root))
    return pd.read_csv(output_dir / "csv" / "metrics.csv")


def trained_aucs(overrides: list[str], output_dir: Path, synthetic_root: Path) -> tuple[float, dict[str, float]]:
    """Train ``overrides`` in-process into ``output_dir``; the validation frame AUC and each test set's
    frame AUC (rounded to 4 places), both printed for the record."""
    from engine.pipeline import run
    from evaluation.results import load_results

    run(compose([*overrides, *NO_FIGURES], output_dir, synthetic_root))
    results = load_results(output_dir / "results.json")
    aucs = {name: round(t["frame"]["auc"], 4) for name, t in results["tests"].items()}
    validation = results["validation"]["metrics"]["frame"]["auc"]
    print("validation", round(validation, 4), "tests", aucs)
    return validation, aucs


# A wall-clock budget for a whole test session (CI's slow suite: FACEMOE_TEST_BUDGET_S). Once it is
# spent, every test not yet started is skipped with the reason and its name (pytest reports the skip at this file's
# line), so the summary counts and names what did not run;
# a test already running finishes (bounded by --timeout, or by its own timeout marker: such a test starts
# only while it can end by the time a test started at the end of the budget would).
_SESSION_START = None


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: the CPUs this process may use (affinity, SLURM, cgroup quota; engine/threads.py),
    not the machine's core count."""
    return cpu_budget().cpus


def pytest_sessionstart(session):
    global _SESSION_START
    import time

    _SESSION_START = time.monotonic()


def pytest_runtest_setup(item):
    budget = os.environ.get("FACEMOE_TEST_BUDGET_S")
    if not budget or _SESSION_START is None:
        return
    import time

    spent = time.monotonic() - _SESSION_START
    if spent > float(budget):
        pytest.skip(f"{item.nodeid}: test budget FACEMOE_TEST_BUDGET_S={budget} s spent ({spent:.0f} s): not run")
    # A test allowed longer than the session's --timeout (its own timeout marker) must also end by the
    # time a test started at the end of the budget would.
    marker = item.get_closest_marker("timeout")
    session_timeout = float(item.config.getoption("timeout", None) or 0)
    extra = float(marker.args[0]) - session_timeout if marker and marker.args and session_timeout else 0.0
    if extra > 0 and spent + extra > float(budget):
        pytest.skip(f"{item.nodeid}: test budget FACEMOE_TEST_BUDGET_S={budget} s: {spent:.0f} s spent, and it may take "
                    f"{extra:.0f} s longer than --timeout {session_timeout:.0f}: not run")


def tests_sharing_module_fixtures(tests_dir: Path = Path(__file__).parent) -> dict[str, set[str]]:
    """``{"tests/test_x.py": {test names}}``: the tests that request a module-scoped fixture (one of
    their module's or one of this conftest's), directly or through another fixture of the module,
    read from the source (the xdist controller schedules before any worker has collected)."""
    import ast

    def requested(function: ast.FunctionDef) -> set[str]:
        return {a.arg for a in function.args.args}

    def is_module_fixture(function: ast.FunctionDef) -> bool:
        return any(
            isinstance(k, ast.keyword) and k.arg == "scope" and getattr(k.value, "value", None) == "module"
            for d in function.decorator_list for k in ast.walk(d)
        )

    def functions_of(path: Path) -> list[ast.FunctionDef]:
        return [n for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)]

    from_conftest = {f.name for f in functions_of(tests_dir / "conftest.py") if is_module_fixture(f)}
    sharing: dict[str, set[str]] = {}
    for path in sorted(tests_dir.glob("test_*.py")):
        functions = functions_of(path)
        shared = from_conftest | {f.name for f in functions if is_module_fixture(f)}
        fixtures = {f.name: f for f in functions if f.name not in shared and not f.name.startswith("test_")}
        grew = True
        while grew:  # fixtures of the module that use a shared one share it too
            grew = False
            for name, function in fixtures.items():
                if name not in shared and requested(function) & shared:
                    shared.add(name)
                    grew = True
        tests = {f.name for f in functions if f.name.startswith("test_") and requested(f) & shared}
        autouse = any("autouse" in ast.unparse(d) for f in functions if f.name in shared for d in f.decorator_list)
        if autouse:  # an autouse module fixture: every test of the module shares it
            tests = {f.name for f in functions if f.name.startswith("test_")}
        if tests:
            sharing[f"{tests_dir.name}/{path.name}"] = tests
    return sharing


# Longest first. Under pytest-xdist the suite's wall time is its work divided among the workers plus a
# tail: the test still running when the other workers have nothing left. Collected in file order, the
# 41 s learning check (test_training.py, near the end of the alphabet) started last and left a worker idle
# for up to its length. These tests (each over 5 s on 2 idle cores, 2026-12-04) go first, longest first
# (tests/test_suite_order.py: each entry still names a test).
LONGEST_FIRST = (
    "tests/test_training.py::test_baseline_learns_the_embedded_data",
    "tests/test_entry_points.py::test_documented_console_scripts_run_as_typed",
    "tests/test_synthetic_pretraining.py::test_pretraining_learns_the_captions_is_cached_and_loads_into_the_detector",
    "tests/test_training.py::test_every_experiment_fast_dev_runs",
    "tests/test_augment.py::test_each_experiment_uses_the_documented_set",
    "tests/test_gmdf.py::test_gmdf_multidomain_runs_end_to_end_and_caches_its_tokenizer",
    "tests/test_gather_ddp.py::test_ddp_gather_equals_single_process",
    "tests/test_training.py::test_auto_resume_from_last_checkpoint",
    "tests/test_loader_benchmark.py::test_the_documented_command_runs_small",
    # The slow suite's (`-m slow`), each over 2 min at one thread per worker (2026-12-05): the demo commands as
    # typed (one pretrains the tiny CLIP, then fine-tunes it: 633 s), SUEDE's end-to-end run (it pretrains SUEDE's
    # tower: 426 s), then 130-155 s each.
    "tests/test_doc_commands.py::test_demo_command_runs_as_typed",
    "tests/test_suede.py::test_suede_trains_end_to_end_and_logs_router_losses",
    "tests/test_dfmoe.py::test_dfmoe_ffpp_demo_recipe_learns_the_embedded_ffpp",
    "tests/test_inference.py::test_documented_commands",
    "tests/test_launchers.py::test_readme_submitit_local_sweep_from_a_fresh_directory",
    "tests/test_self_distill.py::test_chain_at_demo_scale_trains_a_teacher_and_a_distilled_student",
)
# Last, in their own order: the CLIP-family demos (tests/test_clip_demos.py ORDER). They are most of the slow suite's
# work (3,439 s of two workers in a clean-clone CI, against 1,923 s for all the other slow tests; 2026-12-05, docs/
# BENCHMARKS.md), which does not fit in CI's budget all together (.ci/run): the checks of the documented commands,
# resume and sweeps run before them, and a demo not started when the budget is spent is skipped and counted
# (pytest_runtest_setup below).
LAST = ("tests/test_clip_demos.py::test_clip_family_demo_learns_in_domain_and_held_out",)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.nodeid.split("[", 1)[0]
        if name in LAST:
            return len(LONGEST_FIRST) + 1 + LAST.index(name)
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order (parametrized tests: their parameters' order)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """Load balancing test by test, except that the tests of a module that share a module-scoped
    fixture (a trained run, a prepared dataset, the SLURM checks' jobs) go to one worker, so the
    fixture is built once; the module's other tests are balanced like the rest. (xdist's own
    ``loadgroup`` marks do not reach the scheduler under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    sharing = tests_sharing_module_fixtures()

    class ModuleFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module, _, test = nodeid.partition("::")
            if test.split("[", 1)[0] in sharing.get(module, ()):
                return f"{module}::<module fixtures>"
            return nodeid

    return ModuleFixtureScheduling(config, log)
