"""Every command the README and docs/ show runs, as a user types it, in a fresh directory.

``tests/doc_commands.py`` extracts the commands (fenced ``bash`` blocks, inline ``python ...``
spans); ``REGISTRY`` below says for each how it is tested. A documented command missing from the
registry (or a registered one no longer documented) fails ``test_every_documented_command_is_registered``.

How (``kind``):
- ``demo``: runs as typed (slow: trainings), exit 0 and a results.json in a new run directory;
- ``cheap``: runs as typed in the default suite, exit 0;
- ``paper``: paper-scale jobs need the real datasets and a GPU: the command as typed plus
  ``--cfg job --resolve`` (single run) composes and resolves; a ``-m`` command's jobs (its sweep
  values and the sweep config's) each compose and resolve, in-process with Hydra's own sweep expansion;
- ``data``: preprocessing of a real dataset at ``/data/...``: runs as typed and stops with the
  reader's one-line error naming the missing root (the options parse; no data here);
- ``ci``: the README's install + test line; ``.ci/run`` runs the same steps on a fresh clone;
- ``example``: a placeholder (``<dir>``, ``S``) or synopsis; ``EXAMPLES`` gives the concrete form the
  slow test runs, or the note says which registered command runs the same thing;
- ``external``: not this project's command (FaceForensics++'s download script), or a benchmark
  (benchmarks print measurements; their own tests run them small);
- ``elsewhere``: run as typed by the test the note names (a module of its own needs its fixtures:
  a trained run for eval/predict, a SLURM cluster, prepared crops; or the run is one a learning check
  trains anyway: the README's main job, in tests/test_clip_demos.py).

Environment: ``WANDB_MODE=offline``, ``OMP_NUM_THREADS=1``, ``FACEMOE_CACHE`` (shared synthetic data
and tiny-CLIP caches, when set) -- nothing a user would not set.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import compose_jobs
from doc_commands import REPO, DocCommand, documented_commands

DEMO, CHEAP, PAPER, DATA, CI, EXAMPLE, EXTERNAL, ELSEWHERE = "demo", "cheap", "paper", "data", "ci", "example", "external", "elsewhere"

REGISTRY: dict[str, tuple[str, str]] = {
    # README.md
    "python3 -m venv .venv && . .venv/bin/activate && pip install -U pip && pip install -e '.[dev]' && python run.py experiment=gmdf_multidomain scale=demo":
        (CI, "install: .ci/run; the job: the docs/GMDF.md demo command"),
    "python3 -m venv .venv && . .venv/bin/activate && pip install -U pip && pip install -e '.[dev]' && python -m pytest -q":
        (CI, ".ci/run"),
    "python run.py experiment=baseline_ffpp detector=xception": (PAPER, ""),
    "python run.py experiment=gmdf_multidomain scale=demo":
        (ELSEWHERE, "tests/test_clip_demos.py::test_clip_family_demo_learns_in_domain_and_held_out[gmdf_multidomain-method] "
                    "runs it as typed and holds its AUC"),
    "python run.py experiment=baseline_multidomain scale=demo": (DEMO, ""),
    "python run.py experiment=suede_jfsfdb scale=demo":
        (ELSEWHERE, "tests/test_clip_demos.py::test_clip_family_demo_learns_in_domain_and_held_out[suede_jfsfdb-method] "
                    "trains its configuration (seed 0, the default) and holds its AUC"),
    "python run.py experiment=moa_ffpp scale=demo":
        (ELSEWHERE, "tests/test_clip_demos.py::test_clip_family_demo_learns_in_domain_and_held_out[moa_ffpp-method] "
                    "trains its configuration (seed 0, the default) and holds its AUC"),
    "python run.py experiment=moa_diff scale=demo":
        (ELSEWHERE, "tests/test_clip_demos.py::test_clip_family_demo_learns_in_domain_and_held_out[moa_diff-method] "
                    "trains its configuration (seed 0, the default) and holds its AUC"),
    "python run.py experiment=baseline_ffpp trainer=ddp": (PAPER, "all GPUs of a node"),
    "python run.py -m experiment=baseline_ffpp detector=xception,resnet50 launcher=submitit_slurm_a100": (PAPER, "SLURM"),
    "python run.py -m experiment=baseline_multidomain scale=demo seed=0,1": (DEMO, "a demo multirun"),
    "python -m sweeps.aggregate logs/train/multiruns/*": (EXAMPLE, "after the demo multirun: EXAMPLES"),
    "python run.py experiment=baseline_multidomain scale=demo debug=fast_dev_run": (DEMO, ""),
    # README.md, Commands: the console scripts (pyproject [project.scripts])
    "facemoe-train --help": (ELSEWHERE, "tests/test_entry_points.py::test_documented_console_scripts_run_as_typed"),
    "facemoe-eval --help": (ELSEWHERE, "tests/test_entry_points.py::test_documented_console_scripts_run_as_typed"),
    "facemoe-predict --help": (ELSEWHERE, "tests/test_entry_points.py::test_documented_console_scripts_run_as_typed"),
    "facemoe-tokenizer --help": (ELSEWHERE, "tests/test_entry_points.py::test_documented_console_scripts_run_as_typed"),
    "facemoe-robustness --help": (ELSEWHERE, "tests/test_entry_points.py::test_documented_console_scripts_run_as_typed"),
    "facemoe-preprocess --help": (ELSEWHERE, "tests/test_entry_points.py::test_documented_console_scripts_run_as_typed"),
    "facemoe-aggregate --help": (ELSEWHERE, "tests/test_entry_points.py::test_documented_console_scripts_run_as_typed"),
    "python run.py experiment=baseline_multidomain scale=demo 'logger=[csv,wandb,tensorboard]'": (DEMO, "W&B offline in the test"),
    "python run.py -m hparams_search=optuna experiment=baseline_multidomain scale=demo hydra.sweeper.n_trials=2": (DEMO, "2 trials"),
    "python -m pytest -q -m slow": (CI, ".ci/run"),
    "python run.py -m +sweep=<table>": (EXAMPLE, "docs/SWEEPS.md: python run.py -m +sweep=ffpp_baselines"),
    "python -m sweeps.aggregate <sweep dir>": (EXAMPLE, "EXAMPLES"),
    "python benchmarks/train_step.py": (EXTERNAL, "benchmarks: issue-17 tests them (tests/test_*benchmark*)"),
    "python benchmarks/loader_throughput.py": (EXTERNAL, "benchmarks: tests/test_loader_benchmark.py"),
    "python benchmarks/expert_layer.py": (EXTERNAL, "benchmarks: issue-17"),
    "python benchmarks/clip_methods_demo.py": (EXTERNAL, "benchmarks: issue-17"),
    "python benchmarks/frozen_probe.py": (EXTERNAL, "benchmarks: tests/test_frozen_probe_benchmark.py"),
    # docs/ARCHITECTURE.md (Layers: module command lines named)
    "python -m engine.robustness": (EXAMPLE, "the module's name; its commands: docs/SWEEPS.md entries, EXAMPLES"),
    "python -m engine.tokenizer": (EXAMPLE, "the module's name; its command: the docs/GMDF.md PAPER entry"),
    # docs/BENCHMARKS.md
    "python -m pytest -q": (CI, ".ci/run"),
    "python benchmarks/train_step.py --detectors <...> --scales demo --batch-size 32 --steps 5 --workers 0": (EXTERNAL, "benchmarks: issue-17"),
    # docs/CLIP_METHODS.md
    "python run.py experiment=suede_uniattack_p1": (PAPER, ""),
    "python run.py -m experiment=suede_uniattack_p2 protocol=uniattack_p2_1,uniattack_p2_2": (PAPER, ""),
    "python run.py experiment=suede_jfsfdb": (PAPER, ""),
    "python run.py experiment=suede_uniattack_p1 detector.placement=visual_moe": (PAPER, ""),
    "python run.py -m experiment=suede_uniattack_p1 detector.moe_layers=early,middle,late,all": (PAPER, ""),
    "python run.py experiment=moa_ffpp": (PAPER, ""),
    "python run.py -m experiment=moa_diff protocol=diff_train_t2i,diff_train_i2i,diff_train_fs,diff_train_fe": (PAPER, ""),
    "python run.py -m experiment=moa_ffpp detector.aux_loss_weights.cross_domain_similarity=0,0.1": (PAPER, ""),
    "python run.py -m experiment=moa_ffpp detector.model_name=ViT-B-32,ViT-B-16,ViT-L-14": (PAPER, ""),
    "python run.py -m experiment=moa_ffpp detector.adapter_dim=64,128,256": (PAPER, ""),
    "python run.py -m experiment=moa_ffpp protocol=ffpp_moa_df_fs,ffpp_moa_df_fs_nt,ffpp_cross_dataset_moa": (PAPER, ""),
    "python -m sweeps.aggregate <dirs> --table suede_table1": (EXAMPLE, "EXAMPLES (--table on a demo sweep)"),
    "python benchmarks/clip_methods_demo.py --epochs 10 --lr 3e-4 --seeds 0 1 2": (EXTERNAL, "benchmarks: issue-17"),
    # docs/CNN_METHODS.md
    "python run.py experiment=dtn_self_distill": (PAPER, ""),
    # docs/DATASETS.md
    "python download-FaceForensics.py <root> -d all -c c23 -t videos": (EXTERNAL, "FaceForensics++'s own download script"),
    "python download-FaceForensics.py <root> -d all -t masks": (EXTERNAL, "FaceForensics++'s own download script"),
    "python -c \"from datamodules.index import build_index; print(build_index('ffpp', '/data/FaceForensics++', '.cache/index', compression='c23'))\"":
        (EXTERNAL, "needs the real FF++ tree; build_index on layout fixtures: tests/test_index.py"),
    # docs/GMDF.md
    "python run.py experiment=gmdf_multidomain": (PAPER, ""),
    "python run.py experiment=gmdf_multidomain protocol=multidomain_leave_diff": (PAPER, ""),
    "python run.py experiment=gmdf_ffpp": (PAPER, ""),
    "python run.py experiment=gmdf_gid protocol=gid_f2f_c40": (PAPER, ""),
    "python -m engine.tokenizer experiment=gmdf_multidomain": (PAPER, "tokenizer training on the real data"),
    "python run.py experiment=baseline_multidomain detector=clip_finetune scale=demo demo_pretrained=synthetic": (DEMO, ""),
    "python run.py experiment=gmdf_multidomain scale=demo seed=S": (EXAMPLE, "S = 0: the demo command"),
    "python run.py experiment=baseline_multidomain detector=clip_finetune scale=demo demo_pretrained=synthetic demo_epochs=10 detector.optimizer.lr=3e-4 seed=S":
        (EXAMPLE, "EXAMPLES (S = 1)"),
    "python benchmarks/clip_methods_demo.py --comparisons gmdf_multidomain --epochs 10 --seeds 0 1 2": (EXTERNAL, "benchmarks: issue-17"),
    # docs/SWEEPS.md
    "python run.py -m +sweep=ffpp_baselines": (PAPER, ""),
    "python run.py -m +sweep=ffpp_baselines seed=0,1,2 launcher=submitit_slurm_a100": (PAPER, "SLURM"),
    "python -m sweeps.aggregate logs/sweep_ffpp_baselines/multiruns/<id>": (EXAMPLE, "EXAMPLES"),
    "python -m sweeps.aggregate <dir> [<dir> ...] --table dfmoe_table2 [--format csv] [--wandb]": (EXAMPLE, "EXAMPLES, test_a_paper_sweep_at_demo_scale"),
    "python -m engine.robustness run_dir=<job dir>": (EXAMPLE, "EXAMPLES"),
    "python -m sweeps.aggregate": (EXAMPLE, "the module's name; its commands: EXAMPLES"),
    "python -m sweeps": (EXAMPLE, "the module's name (same CLI as sweeps.aggregate)"),
    "python run.py +sweep=<name> --cfg hydra --package hydra.sweeper": (EXAMPLE, "EXAMPLES (cheap)"),
    "python -m sweeps.aggregate logs/": (EXAMPLE, "EXAMPLES"),
    "python -m sweeps.tables [--check /work/shared/papers]": (EXAMPLE, "EXAMPLES (cheap)"),
    "python -m sweeps.aggregate logs/sweep_<sweep>/multiruns/<id>": (EXAMPLE, "EXAMPLES"),
    "python run.py -m +sweep=...": (EXAMPLE, "the sweep commands are PAPER entries"),
    "python -m sweeps.aggregate <dtn_mas dir> <ffpp_baselines dir> --table dtn_table8": (EXAMPLE, "two dirs + --table: EXAMPLES"),
    "python -m sweeps.aggregate <moa_num_adapters dir> <moa_ffpp_subsets_baselines dir> --table moa_table6": (EXAMPLE, "as above"),
    "python -m sweeps.aggregate <gmdf_masking dir> <gmdf_phi dir> --table gmdf_fig4": (EXAMPLE, "as above"),
    "python run.py -m +sweep=<name> scale=demo trainer.max_epochs=1 [self_distill.generations=1]": (EXAMPLE, "test_a_paper_sweep_at_demo_scale"),
    "python -m engine.robustness run_dir=<job dir> test_sets=[ffpp] corruptions=[...]": (EXAMPLE, "EXAMPLES"),
    "python -m sweeps.aggregate <paths> [--table NAME ...] [--format markdown|csv] [--out DIR] [--no-write] [--only-measured] [--wandb] [--wandb-project P]":
        (EXAMPLE, "synopsis; EXAMPLES use its options"),
    "python run.py -m": (EXAMPLE, "mention of multirun mode"),
    "python -m engine.robustness run_dir=<run dir> [ckpt=best|last|<file>] [key=value ...] [config.<key>=<value> ...]": (EXAMPLE, "synopsis; EXAMPLES"),
    "python -m engine.robustness compare inputs=[a/robustness.json,b/robustness.json] labels=[A,B] out_dir=<dir>": (EXAMPLE, "EXAMPLES"),
    # README.md / docs/INFERENCE.md: eval and predict after a demo training
    "RUN=$(ls -d logs/train/runs/* | tail -1)": (ELSEWHERE, "tests/test_inference.py::test_documented_commands runs the README block as written"),
    "python eval.py ckpt=$RUN protocol=ffpp_cross_dataset": (ELSEWHERE, "tests/test_inference.py::test_documented_commands"),
    "python predict.py ckpt=$RUN 'inputs=[face.jpg,clips/]'": (ELSEWHERE, "tests/test_inference.py::test_documented_commands"),
    "python -m datamodules.preprocess": (EXAMPLE, "the module's name; its commands are the data entries"),
    # README.md / docs/CLUSTER.md: launchers
    "python run.py -m experiment=baseline_multidomain scale=demo seed=1,2 launcher=submitit_local":
        (ELSEWHERE, "tests/test_launchers.py::test_readme_submitit_local_sweep_from_a_fresh_directory"),
    "python run.py -m +sweep=gmdf_multidomain_baselines leave_out=wilddeepfake seed=0,1 scale=demo launcher=submitit_slurm_cpu":
        (ELSEWHERE, "tests/test_slurm.py::test_readme_cpu_sweep_then_the_aggregator (marker slurm, a real cluster in .ci/run)"),
    "python -m sweeps.aggregate logs/sweep_gmdf_multidomain_baselines/multiruns/<id>":
        (EXAMPLE, "tests/test_slurm.py::test_readme_cpu_sweep_then_the_aggregator runs it on the SLURM sweep"),
    ".ci/slurm_cluster.sh install": (CI, ".ci/run"),
    ".ci/slurm_cluster.sh start": (CI, ".ci/run"),
    ".ci/slurm_cluster.sh stop": (CI, ".ci/run"),
    "python -m pytest -q -m slurm": (CI, ".ci/run"),
    # README.md / docs/DATASETS.md: small runs on prepared data
    "python run.py experiment=baseline_ffpp protocol=ffpp_within_domain scale=demo data.source=prepared":
        (ELSEWHERE, "tests/test_prepared_small_runs.py::test_small_run_command_as_documented (prepared crops made first)"),
    # docs/AUGMENTATION.md
    "python run.py experiment=baseline_ffpp augment=none": (PAPER, ""),
    "python run.py experiment=baseline_ffpp augment=standard": (PAPER, ""),
    "python run.py experiment=baseline_ffpp augment=standard data.augment.jpeg.p=0.3": (PAPER, ""),
    "python run.py -m experiment=baseline_ffpp augment=flip,standard,dtn": (PAPER, ""),
    "python run.py experiment=dtn_ffpp scale=demo augment=dtn": (DEMO, ""),
    # docs/BENCHMARKS.md
    "nice -n 10 python benchmarks/loader_throughput.py --videos 40 --frames 8 --rounds 5 --augment standard --builtin --device-path --workers 2 --format jpg": (EXTERNAL, "benchmarks: tests/test_loader_benchmark.py runs it small"),
    "nice -n 10 python benchmarks/loader_throughput.py --videos 8 --frames 8 --rounds 2 --workers 0 --format jpg --stages": (EXTERNAL, "benchmarks: tests/test_loader_benchmark.py runs it small"),
    "python benchmarks/busy_machine.py --background 2 --rounds 3": (EXTERNAL, "benchmarks: measures under load it makes itself"),
    "python benchmarks/busy_machine.py --rounds 2 --steps 5 --settings old new one": (EXTERNAL, "benchmarks"),
    "python benchmarks/busy_machine.py --settings new --background 2 --rounds 1 --command \"python -m pytest -q\"": (
        EXTERNAL, "benchmarks: tests/test_busy_machine_benchmark.py (the --command mode)"),
    "python benchmarks/busy_machine.py --settings new --background 2 --rounds 1 --command \"WANDB_MODE=offline "
    "FACEMOE_CACHE=<warm cache> python run.py experiment=gmdf_multidomain scale=demo paths.log_dir=<dir>\"": (
        EXTERNAL, "benchmarks: tests/test_busy_machine_benchmark.py (the --command mode); placeholders for two folders"),
    "python benchmarks/busy_machine.py --settings new --background 2 --rounds 1 --command \"WANDB_MODE=offline "
    "FACEMOE_CACHE=\\$(mktemp -d) python run.py experiment=gmdf_multidomain scale=demo paths.log_dir=\\$(mktemp -d)\"": (
        EXTERNAL, "benchmarks: tests/test_busy_machine_benchmark.py (the --command mode); a new cache for each run"),
    "python benchmarks/meta_step.py --rounds 2 --epochs 2 --limit-batches 8": (EXTERNAL, "benchmarks"),
    "python benchmarks/suite_overhead.py --experiment baseline_multidomain --rounds 2": (EXTERNAL, "benchmarks"),
    "python benchmarks/expert_layer.py --repeats 5": (EXTERNAL, "benchmarks"),
    "python benchmarks/expert_layer.py --device cuda --dtype bfloat16 --batch-size 64 --repeats 20 --warmup 5": (EXTERNAL, "benchmarks: GPU"),
    "python benchmarks/suite_overhead.py --scale paper --steps 60 --rounds 2 data.source=synthetic detector.pretrained=null logger=csv": (EXTERNAL, "benchmarks: GPU"),
    # docs/CLIP_METHODS.md, docs/GMDF.md, docs/CNN_METHODS.md
    "python benchmarks/clip_methods_demo.py --comparisons <experiment> --seeds 0 1 2": (EXTERNAL, "benchmarks"),
    "python benchmarks/clip_methods_demo.py --comparisons <experiment> --epochs <E> --seeds 0": (EXTERNAL, "benchmarks"),
    "python benchmarks/clip_methods_demo.py --comparisons gmdf_multidomain --runs clip_finetune --seeds 0 1 2": (EXTERNAL, "benchmarks"),
    "python benchmarks/clip_methods_demo.py --comparisons suede_jfsfdb --seeds 0 1 2": (EXTERNAL, "benchmarks"),
    "python benchmarks/clip_methods_demo.py --comparisons moa_ffpp --seeds 0 1 2": (EXTERNAL, "benchmarks"),
    "python benchmarks/clip_methods_demo.py --comparisons moa_ffpp --seeds 0 1 2 --runs clip_finetune": (EXTERNAL, "benchmarks"),
    "python benchmarks/clip_methods_demo.py --comparisons moa_diff --seeds 0 1 2 --runs clip_finetune": (EXTERNAL, "benchmarks"),
    "python benchmarks/frozen_probe.py --experiment moa_ffpp --test-set ffpp --passes 3": (
        EXTERNAL, "benchmarks: tests/test_frozen_probe_benchmark.py"),
    "python run.py -m +sweep=suede_routed_width": (PAPER, ""),
    "python run.py -m experiment=suede_uniattack_p1 detector.num_experts=2,3,4,5,6,7,8": (PAPER, ""),
    "python run.py -m +sweep=gmdf_multidomain": (PAPER, ""),
    "python run.py scale=demo": (DEMO, "the default experiment at demo scale"),
    # docs/RELIABILITY.md
    "python -m engine.robustness ckpt=<crafted file>": (EXAMPLE, "tests/test_faults.py injects a crafted pickle"),
    "python run.py ... seed=abc": (EXAMPLE, "tests/test_faults.py (seed=abc)"),
    # docs/RESULTS.md: the README's demo command (registered above)
}

# The concrete forms the placeholders stand for. ``{sweep}``: the demo multirun's directory,
# ``{run}``: one of its job directories (filled by the slow test after the multirun).
EXAMPLES_CHEAP = [
    "python run.py +sweep=ffpp_baselines --cfg hydra --package hydra.sweeper",
    "python -m sweeps.tables",
]
EXAMPLES_AFTER_MULTIRUN = [
    "python -m sweeps.aggregate logs/train/multiruns/*",
    "python -m sweeps.aggregate {sweep}",
    "python -m sweeps.aggregate {sweep} --format csv --wandb",
    "python -m sweeps.aggregate logs/",
    "python -m engine.robustness run_dir={run} corruptions=[jpeg] severities=[0,1] test_sets=[wilddeepfake]",
]

PREPROCESS_ERROR = "does not exist"
# Jobs (results.json files) a demo multirun leaves; single runs leave one.
DEMO_JOBS = {
    "python run.py -m experiment=baseline_multidomain scale=demo seed=0,1": 2,
    "python run.py -m hparams_search=optuna experiment=baseline_multidomain scale=demo hydra.sweeper.n_trials=2": 2,
}


def registered(kind: str) -> list[str]:
    return sorted(k for k, (how, _) in REGISTRY.items() if how == kind)


def commands_of(kind: str) -> list[DocCommand]:
    seen: dict[str, DocCommand] = {}
    for command in documented_commands():
        if REGISTRY.get(command.key, ("",))[0] == kind:
            seen.setdefault(command.key, command)
    return list(seen.values())


# Preprocessing commands are registered by prefix: they are many and all tested the same way.
def _kind(command: DocCommand) -> str | None:
    if command.key in REGISTRY:
        return REGISTRY[command.key][0]
    if command.key.startswith("python -m datamodules.preprocess ") and "/data/" in command.key:
        return DATA
    return None


def fresh_directory(tmp_path: Path) -> Path:
    """A directory that looks like a fresh clone: the repository's files (symlinked), no logs/."""
    root = tmp_path / "clone"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name in {".git", ".venv", "logs", ".cache", "outputs", "multirun"} or entry.name.startswith(".pytest"):
            continue
        (root / entry.name).symlink_to(entry)
    return root


def user_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACEMOE_", "PYTEST", "HYDRA"))}
    if os.environ.get("FACEMOE_CACHE"):
        env["FACEMOE_CACHE"] = os.environ["FACEMOE_CACHE"]  # shared synthetic data: speed only
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_as_typed(command: str, cwd: Path, timeout: float = 120, env_lines: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    script = "\n".join([*env_lines, command])
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=timeout)


def test_every_documented_command_is_registered():
    documented = documented_commands()
    unknown = sorted({f"{c.file}: {c.key}" for c in documented if _kind(c) is None})
    assert not unknown, "documented commands without a test (add them to REGISTRY):\n" + "\n".join(unknown)
    keys = {c.key for c in documented}
    stale = sorted(set(REGISTRY) - keys)
    assert not stale, "registered commands no longer in the docs:\n" + "\n".join(stale)


def test_ci_runs_the_readme_install_and_test_steps():
    ci = (REPO / ".ci" / "run").read_text()
    for step in ("python3 -m venv .venv", "pip install -q -U pip && pip install -q -e '.[dev]'", "python -m pytest -q", "python -m pytest -q -m slow"):
        assert step in ci, step


@pytest.mark.parametrize("key", registered(PAPER))
def test_paper_scale_command_composes(key, tmp_path):
    """The paper-scale command as typed resolves its config (``--cfg job --resolve``); for ``-m``,
    every job of the sweep composes and resolves."""
    args = shlex.split(key)
    script = args[1] if args[0] == "python" and not args[1].startswith("-") else None
    if "-m" in args[1:3] and script == "run.py":
        _compose_multirun_jobs(args[2:], tmp_path)
        return
    result = run_as_typed(f"{key} --cfg job --resolve", fresh_directory(tmp_path), timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "detector:" in result.stdout and "protocol:" in result.stdout


def _compose_multirun_jobs(overrides: list[str], tmp_path: Path) -> None:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from engine.compose import compose_run_config

    overrides = [o for o in overrides if o != "-m"]
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    swept = {o.key_or_group: o.input_line for o in parsed if o.is_sweep_override()}
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        hydra_cfg = compose("train", overrides=fixed, return_hydra_config=True)
    params = {k: f"{k}={v}" for k, v in (hydra_cfg.hydra.sweeper.params or {}).items()}
    params.update(swept)  # the command line replaces the sweep config's value of a key
    fixed = [f for f in fixed if f.split("=")[0].lstrip("+") not in params]
    batches = BasicSweeper.split_arguments(parser.parse_overrides(list(params.values())), None)
    jobs = [list(job) for batch in batches for job in batch]
    assert jobs
    for cfg in compose_jobs(jobs, lambda groups: compose_run_config([*fixed, *groups], tmp_path)):
        resolved = OmegaConf.to_container(cfg, resolve=True)
        assert resolved["detector"] and resolved["protocol"]["test"]


@pytest.mark.parametrize("key", sorted({c.key for c in documented_commands() if _kind(c) == DATA}))
def test_preprocess_command_parses_and_names_the_missing_root(key, tmp_path):
    command = next(c for c in documented_commands() if c.key == key)
    env = tuple(line.replace("/data/prepared", str(tmp_path / "prepared")) for line in command.env)
    out = command.command.replace("--out /data/prepared", f"--out {tmp_path / 'prepared'}")
    result = run_as_typed(out, fresh_directory(tmp_path), timeout=60, env_lines=env)
    root = shlex.split(key)[shlex.split(key).index("--root") + 1]
    assert result.returncode == 2, result.stderr[-2000:]
    assert PREPROCESS_ERROR in result.stderr and repr(root) in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", EXAMPLES_CHEAP)
def test_cheap_example_runs(command, tmp_path):
    result = run_as_typed(command, fresh_directory(tmp_path), timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()


def new_results(clone: Path) -> list[Path]:
    # (W&B's copy under <run dir>/wandb/.../files/ is not a run)
    return sorted(p for p in (clone / "logs").rglob("results.json") if "wandb" not in p.relative_to(clone).parts)


# Demo commands that may take longer than CI's --timeout 900 at one thread: each pretrains the tiny CLIP
# (patch 4, about 5-8 min at one thread) unless an earlier test of the session did (the session cache,
# tests/conftest.py), then fine-tunes it for 20 epochs. (The README's main job runs in tests/test_clip_demos.py.)
DEMO_TIMEOUT_S = {
    "python run.py experiment=baseline_multidomain detector=clip_finetune scale=demo demo_pretrained=synthetic": 1800,
}


@pytest.mark.slow
@pytest.mark.parametrize("key", [pytest.param(k, marks=pytest.mark.timeout(DEMO_TIMEOUT_S[k])) if k in DEMO_TIMEOUT_S else k
                                 for k in sorted(registered(DEMO), key=lambda k: k not in DEMO_TIMEOUT_S)])  # longest first
def test_demo_command_runs_as_typed(key, tmp_path):
    clone = fresh_directory(tmp_path)
    result = run_as_typed(key, clone, timeout=3600)
    assert result.returncode == 0, result.stderr[-4000:]
    found = new_results(clone)
    assert len(found) == DEMO_JOBS.get(key, 1), found
    objectives = []
    for path in found:
        results = json.loads(path.read_text())
        assert results["tests"] and results["summary"]["test_sets"]
        objectives.append(results["validation"]["objective"]["value"])
    if "hparams_search=optuna" in key:  # the sweeper's best value is the best trial's objective
        (best,) = list((clone / "logs").rglob("optimization_results.yaml"))
        assert yaml.safe_load(best.read_text())["best_value"] == pytest.approx(max(objectives))


@pytest.mark.slow
def test_examples_after_a_demo_multirun(tmp_path):
    clone = fresh_directory(tmp_path)
    first = run_as_typed("python run.py -m experiment=baseline_multidomain scale=demo seed=0,1 trainer.max_epochs=1", clone, timeout=1800)
    assert first.returncode == 0, first.stderr[-4000:]
    (sweep,) = list((clone / "logs" / "train" / "multiruns").iterdir())
    run = sweep / "0"
    for template in EXAMPLES_AFTER_MULTIRUN:
        command = template.format(sweep=sweep.relative_to(clone), run=run.relative_to(clone))
        result = run_as_typed(command, clone, timeout=900)
        assert result.returncode == 0, f"{command}\n{result.stderr[-4000:]}"
    summary = sweep / "summary"
    assert (summary / "summary.md").is_file() and (summary / "summary.csv").is_file()
    assert (run / "robustness.json").is_file()


@pytest.mark.slow
def test_a_paper_sweep_at_demo_scale(tmp_path):
    """``python run.py -m +sweep=<name> scale=demo trainer.max_epochs=1`` (docs/SWEEPS.md) with a
    3-job sweep, then its paper table: every cell measured and marked as demo."""
    clone = fresh_directory(tmp_path)
    first = run_as_typed("python run.py -m +sweep=dfmoe_fusion scale=demo trainer.max_epochs=1", clone, timeout=2400)
    assert first.returncode == 0, first.stderr[-4000:]
    (sweep,) = list((clone / "logs" / "sweep_dfmoe_fusion" / "multiruns").iterdir())
    table = run_as_typed(f"python -m sweeps.aggregate {sweep.relative_to(clone)} --table dfmoe_table7", clone, timeout=300)
    assert table.returncode == 0, table.stderr[-3000:]
    rows = [line for line in table.stdout.splitlines() if line.startswith("| ") and "(demo)" in line]
    assert len(rows) == 3, table.stdout
    assert "| detector.fusion | scale |" in table.stdout  # the summary groups by the swept knob
