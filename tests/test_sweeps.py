"""Sweep machinery: every sweep config composes, expands to distinct jobs and fills its table rows
(test metrics, cost, robustness and each generation of self-distillation chains);
fail-soft jobs record failures instead of stopping the sweep; Hydra multiruns (basic launcher and
submitit) keep all jobs in one sweep directory; one small sweep trains end to end and prints its
table (slow), with one W&B run directory per job, grouped by sweep."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import CONF, REPO, compose_jobs
from omegaconf import OmegaConf

from engine.failures import FAILED_FILE_NAME, read_failure, run_fail_soft
from evaluation.metrics import METRIC_NAMES
from evaluation.results import build_results
from sweeps.aggregate import STATUS_FAILED, STATUS_OK, Job, compute_table, discover_jobs, main, to_markdown
from sweeps.tables import GENERATION, TABLES, Column, Measure, PaperTable, Row, tables_for_sweep

# The number of jobs of each sweep (product of its sweeper params). A new sweep config must be
# added here, which makes its author state how many trainings it launches.
EXPECTED_JOBS = {
    "ffpp_baselines": 7,
    "gmdf_gid_baselines": 4,
    "gmdf_multidomain_baselines": 4,
    "moa_diff_baselines": 12,
    "moa_ffpp_subsets_baselines": 6,
    "dtn_cross_manipulation_baselines": 4,
    "dtn_cross_manipulation_distilled": 4,
    "dtn_robustness": 1,
    "suede_uniattack_baselines": 9,
    "suede_jfsfdb_baselines": 3,
    # DFMoE ablations (Tables 3-8, Fig. 2)
    "dfmoe_losses": 4,
    "dfmoe_gate_backbone": 3,
    "dfmoe_top_k": 5,
    "dfmoe_num_experts": 5,
    "dfmoe_fusion": 3,
    "dfmoe_modules": 3,
    "dfmoe_robustness": 1,
    # DTN ablations (Tables 3-10: self-distillation chains of 4 or 5 trainings each; Fig. 6: single runs)
    "dtn_components": 6,
    "dtn_self_distillation": 2,
    "dtn_xception_dsd": 1,
    "dtn_local_connection": 2,
    "dtn_moe_mode": 2,
    "dtn_mas": 2,
    "dtn_depth": 4,
    "dtn_moe_perturbation": 4,
    "dtn_ctc_space": 2,
    "dtn_backbones": 6,
    "dtn_moe_experts": 14,
    # GM-DF ablations (Tables 5, 7, Fig. 3, 4)
    "gmdf_components": 7,
    "gmdf_prompts": 21,
    "gmdf_masking": 12,
    "gmdf_phi": 5,
    "gmdf_robustness": 1,
    "gmdf_multidomain": 4,  # GM-DF Table 4's GM-DF row (the four multi-domain protocols)
    "gmdf_gid": 4,  # GM-DF Table 2's GM-DF row (not an ablation; the same protocols as gmdf_gid_baselines)
    # MoA-CLIP ablations (Tables 3-6)
    "moa_losses": 4,
    "moa_backbones": 3,
    "moa_adapter_dim": 3,
    "moa_num_adapters": 3,
    # SUEDE ablations (Tables III, IV, Fig. 5: every count 2..8) and the routed-expert width (the suite's)
    "suede_placement": 4,
    "suede_moe_layers": 4,
    "suede_num_experts": 7,
    "suede_routed_width": 4,
}
SWEEPS = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml") if p.stem != "base")  # base: what every sweep shares


def compose_config(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from engine.resolvers import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def expand(cfg) -> list[list[str]]:
    """The jobs Hydra's basic sweeper launches for the config's ``hydra.sweeper.params``."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{key}={value}" for key, value in (cfg.hydra.sweeper.params or {}).items()]
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
    return [list(job) for batch in batches for job in batch]


def resolved_job_config(cfg, output_dir: Path) -> dict:
    """The job's resolved config as results.json records it, with Hydra's runtime set as in a job
    (``${hydra:...}`` paths resolve); keys that still cannot resolve are left out."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    with read_write(cfg.hydra.runtime), open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    out = {}
    for key in cfg:
        if key == "hydra":
            continue
        try:
            out[key] = (
                OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            )
        except Exception:
            continue
    return out


def fake_metrics() -> dict:
    block = {name: 0.5 for name in METRIC_NAMES}
    return {"frame": dict(block), "video": dict(block)}


FAKE_COST = {
    "params_total": 10,
    "params_trainable": 5,
    "params_total_m": 1e-5,
    "params_trainable_m": 5e-6,
    "gflops_per_image": 2.0,
    "gmacs_per_image": 1.0,
    "latency_ms_per_image": 3.0,
    "latency_ms_per_batch": 3.0,
}


def fake_jobs(directory: Path, config: dict, choices: dict[str, str]) -> list[Job]:
    """What a finished job leaves for the aggregator: results.json (with extra.cost under evaluate_cost),
    robustness.json when the config scores robustness, and one run per generation of a self-distillation chain."""
    protocol = config["protocol"]
    results = build_results(
        config,
        {},
        {name: fake_metrics() for name in protocol["test"]},
        None,
        0.0,
        extra={"cost": FAKE_COST} if config.get("evaluate_cost") else None,
    )
    robustness = None
    if config.get("robustness"):
        settings = config["robustness"]
        sets = settings.get("test_sets") or list(protocol["test"])
        points = {str(s): fake_metrics() for s in settings["severities"]}
        robustness = {"metrics": {name: {c: points for c in settings["corruptions"]} for name in sets}}
    if config.get("pipeline") != "self_distill":
        return [Job(directory, "done", OmegaConf.create(config), choices, results, robustness=robustness)]
    jobs = []
    for generation in range(config["self_distill"]["generations"] + 1):
        generation_config = {**config, "pipeline": "standard", "seed": config["seed"] + generation}
        generation_results = {**results, "config": generation_config}
        jobs.append(
            Job(
                directory / f"gen{generation}",
                "done",
                OmegaConf.create(generation_config),
                choices,
                generation_results,
                robustness=robustness,
                derived={GENERATION: generation},
            )
        )
    return jobs


def test_every_sweep_is_listed_with_its_job_count():
    assert set(SWEEPS) == set(EXPECTED_JOBS)


def test_every_sweep_says_task_name_and_fail_soft_through_the_base_config():
    """conf/sweep/base.yaml says them once; a sweep that repeats them (or forgets the base) is caught."""
    for sweep in SWEEPS:
        raw = OmegaConf.load(CONF / "sweep" / f"{sweep}.yaml")
        assert list(raw.get("defaults", [])) == ["base", "_self_"], sweep
        assert "task_name" not in raw and "fail_soft" not in raw, sweep


# Every job of every sweep composes (about 300 compositions, 0.25-0.35 s each: 73-85 s of the default suite's test
# time on the AVX2 machine, 2026-12-07). The default suite composes the FF++ baselines and one ablation sweep of each
# method, each of which chooses that method's detector, protocol and knob groups; the other sweeps run with the slow
# suite (`-m slow`, gating in CI: they start before the CLIP demos, so the budget never skips them).
DEFAULT_SUITE_SWEEPS = ("ffpp_baselines", "dfmoe_num_experts", "dtn_components", "gmdf_components", "moa_losses", "suede_num_experts")


def test_the_default_suites_sweeps_exist_one_per_method():
    assert set(DEFAULT_SUITE_SWEEPS) <= set(SWEEPS)
    assert {s.split("_")[0] for s in DEFAULT_SUITE_SWEEPS} == {"ffpp", "dfmoe", "dtn", "gmdf", "moa", "suede"}


@pytest.mark.parametrize("sweep", [s if s in DEFAULT_SUITE_SWEEPS else pytest.param(s, marks=pytest.mark.slow) for s in SWEEPS])
def test_sweep_composes_expands_and_fills_its_table_rows(sweep, tmp_path):
    cfg = compose_config([f"+sweep={sweep}"])
    assert cfg.sweep_name == sweep and cfg.fail_soft is True and cfg.task_name == f"sweep_{sweep}"
    jobs = expand(cfg)
    assert len(jobs) == EXPECTED_JOBS[sweep]
    finished: list[Job] = []
    variants = set()
    configs = compose_jobs(jobs, lambda groups: compose_config([f"+sweep={sweep}", *groups]))
    for index, (overrides, job_cfg) in enumerate(zip(jobs, configs)):
        choices = {k: str(v) for k, v in job_cfg.hydra.runtime.choices.items() if not k.startswith("hydra/")}
        config = resolved_job_config(job_cfg, tmp_path / str(index))
        assert config["protocol"]["test"], (sweep, overrides)
        # Every job trains something different: its groups, detector, protocol or run settings differ.
        what = {k: v for k, v in config.items() if k not in ("paths", "logger", "callbacks", "hydra")}
        variants.add(
            repr((sorted(choices.items()), sorted(what.items(), key=lambda kv: kv[0]))).replace(
                str(tmp_path / str(index)), ""
            )
        )
        finished += fake_jobs(tmp_path / str(index), config, choices)
    assert len(variants) == len(jobs), f"{sweep}: some jobs compose to the same config"
    # Every row the registry says this sweep produces gets a value in every measured column:
    # the row/column matches and the test-set names of tables and protocols agree.
    rows_checked = 0
    read: set[str] = set()
    for table in tables_for_sweep(sweep):
        result = compute_table(table, finished)
        for row in table.rows:
            if row.sweep != sweep:
                continue
            rows_checked += 1
            for column in table.columns:
                cell = result.cells[(row.key, column.key)]
                assert cell.status == STATUS_OK, (table.name, row.key, column.key, cell.status, cell.message)
                read.update(cell.jobs)
    assert rows_checked > 0, f"no table row names sweep {sweep!r}"
    # ... and every job it launches is read by some row (a chain: by at least one of its generations).
    unread = {str(index) for index in range(len(jobs))} - {
        Path(d).relative_to(tmp_path).parts[0] for d in read
    }
    assert not unread, (
        f"{sweep}: jobs {sorted(unread, key=int)} fill no row of {[t.name for t in tables_for_sweep(sweep)]}"
    )


def method_row_cases() -> list[tuple[str, str, str, str | None]]:
    """(table, row, experiment, protocol) for method rows whose experiment config exists."""
    experiments = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    cases = []
    for table in TABLES.values():
        for row in table.rows:
            if row.sweep is None and row.match and row.match.get("experiment") in experiments:
                protocols = row.match.get("protocol.name")
                for protocol in protocols if isinstance(protocols, tuple) else (protocols,):
                    cases.append((table.name, row.key, row.match["experiment"], protocol))
    return cases


@pytest.mark.parametrize(("table", "row", "experiment", "protocol"), method_row_cases())
def test_method_experiments_have_the_test_sets_their_rows_read(table, row, experiment, protocol):
    """A method row of a table and its experiment agree on test-set names (caught before training)."""
    overrides = [f"experiment={experiment}"] + ([f"protocol={protocol}"] if protocol else [])
    composed = compose_config(overrides).protocol
    checked = 0
    for column in TABLES[table].columns:
        if column.measure is None or set(column.match) - {"protocol.name"}:
            continue  # averages, and column groups selected by other knobs
        if column.match.get("protocol.name", composed.name) != composed.name:
            continue  # another column group's training
        needed, present = set(column.measure.test_sets), set(composed.test)
        if column.measure.reduce == "any":
            assert needed & present, (table, row, column.key, sorted(needed), sorted(present))
        else:
            assert needed <= present, (table, row, column.key, sorted(needed - present), sorted(present))
        checked += 1
    assert checked > 0


# --------------------------------------------------------------------------- fail-soft


def test_fail_soft_records_the_failure_and_returns_nan(tmp_path):
    cfg = OmegaConf.create({"fail_soft": True, "paths": {"output_dir": str(tmp_path)}, "seed": 3})

    def broken(_):
        raise ValueError("bad value 42")

    assert math.isnan(run_fail_soft(broken, cfg))
    record = read_failure(tmp_path)
    assert record["exception_type"] == "builtins.ValueError" and record["message"] == "bad value 42"
    assert "raise ValueError" in record["traceback"] and record["config"]["seed"] == 3
    assert run_fail_soft(lambda _: 0.75, cfg) == 0.75  # a later success removes the stale record
    assert not (tmp_path / FAILED_FILE_NAME).exists()


def test_without_fail_soft_and_for_exits_the_exception_propagates(tmp_path):
    strict = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})
    with pytest.raises(ValueError):
        run_fail_soft(lambda _: (_ for _ in ()).throw(ValueError("x")), strict)

    def requeued(_):
        raise SystemExit(1)  # Lightning's SIGTERMException is a SystemExit: requeueing must see it

    with pytest.raises(SystemExit):
        run_fail_soft(requeued, OmegaConf.create({"fail_soft": True, "paths": {"output_dir": str(tmp_path)}}))
    assert not (tmp_path / FAILED_FILE_NAME).exists()


# --------------------------------------------------------------------------- Hydra multiruns (no training)

TOY_APP = """
import sys
sys.path.insert(0, {repo!r})
import hydra
from omegaconf import OmegaConf
from engine.resolvers import register_resolvers
from evaluation.metrics import METRIC_NAMES
from evaluation.results import build_results, write_results
from engine.failures import run_fail_soft

register_resolvers()


def task(cfg):
    if cfg.seed == 1:
        raise ValueError("deliberate failure of seed 1")
    block = {{name: 0.5 for name in METRIC_NAMES}}
    block["auc"] = 0.5 + 0.1 * cfg.seed
    results = build_results(OmegaConf.to_container(cfg, resolve=True), {{}}, {{"toy": {{"frame": block, "video": block}}}}, None, 0.0)
    write_results(cfg.paths.output_dir, results)
    return 0.9


@hydra.main(version_base="1.3", config_path={conf!r}, config_name="train")
def main(cfg):
    return run_fail_soft(task, cfg)


if __name__ == "__main__":
    main()
"""

TOY_TABLE = PaperTable(
    name="toy",
    paper="none",
    number="Table 0",
    title="toy sweep",
    columns=(Column("auc", "AUC", Measure("auc", ("toy",))),),
    rows=tuple(Row(f"seed{s}", f"seed {s}", {"seed": s}, {"auc": 60.0}) for s in range(3)),
    unit="percent",
    decimals=1,
    anchor="-",
)


def run_toy_sweep(tmp_path: Path, extra: list[str]) -> tuple[subprocess.CompletedProcess, Path]:
    app = tmp_path / "toy_app.py"
    app.write_text(textwrap.dedent(TOY_APP.format(repo=str(REPO), conf=str(CONF))))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    args = [
        sys.executable,
        str(app),
        "-m",
        "seed=0,1,2",
        "++fail_soft=true",
        "logger=csv",
        f"paths.log_dir={tmp_path / 'logs'}",
        *extra,
    ]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    multiruns = list((tmp_path / "logs").rglob("multirun.yaml"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(multiruns) == 1, multiruns
    return done, multiruns[0].parent


@pytest.mark.parametrize("launcher", ["basic", "submitit_local"])
def test_a_failing_job_does_not_stop_the_sweep_and_its_cell_is_marked(launcher, tmp_path):
    _, sweep_dir = run_toy_sweep(tmp_path, [] if launcher == "basic" else ["launcher=submitit_local"])
    # All three jobs live in the one sweep directory (with submitit too: see conf/launcher/).
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    assert read_failure(sweep_dir / "1")["message"] == "deliberate failure of seed 1"
    result = compute_table(TOY_TABLE, discover_jobs([sweep_dir]))
    assert result.cells[("seed0", "auc")].mean == pytest.approx(50.0)
    assert result.cells[("seed2", "auc")].mean == pytest.approx(70.0)
    assert result.cells[("seed1", "auc")].status == STATUS_FAILED
    assert "FAILED (ValueError) [60.0]" in to_markdown(result)


def test_command_line_values_replace_the_sweeps_params(tmp_path):
    """``python run.py -m +sweep=X seed=0,2 leave_out=...``: per key, the command line wins."""
    _, sweep_dir = run_toy_sweep(tmp_path, ["+sweep=gmdf_multidomain_baselines", "leave_out=diff"])
    jobs = discover_jobs([sweep_dir])
    assert [(job.value("seed"), job.value("leave_out"), job.value("detector")) for job in jobs] == [
        (0, "diff", "xception"),
        (1, "diff", "xception"),
        (2, "diff", "xception"),
    ]
    assert jobs[1].status == "failed" and jobs[0].value("protocol.name") == "multidomain_leave_diff"


# --------------------------------------------------------------------------- end to end (training)

RUN_APP = """
import sys
sys.path.insert(0, {repo!r})
import hydra
from engine.resolvers import register_resolvers
from engine.failures import run_fail_soft

register_resolvers()


@hydra.main(version_base="1.3", config_path={conf!r}, config_name="train")
def main(cfg):
    from engine.pipeline import run

    return run_fail_soft(run, cfg)   # what run.py does with fail_soft wired in


if __name__ == "__main__":
    main()
"""


MULTIDOMAIN_DATASETS = {
    "ffpp_c23": "Deepfakes",
    "celebdf_v2": "fake",
    "diff": "T2I",
    "wilddeepfake": "fake",
    "dfdc": "fake",
}


def write_tiny_prepared_dataset(root: Path, fake_type: str, seed: int) -> None:
    """A prepared dataset as face preprocessing leaves it: ``index.csv`` + 32 px face-crop PNGs,
    4 frames per video; fakes carry a bright patch so one epoch of a tiny model learns something."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    for split, videos in (("train", 8), ("val", 4), ("test", 6)):
        for label in (0, 1):
            for video in range(videos):
                video_id = f"{root.name}/{split}/{label}/{video}"
                for frame in range(4):
                    image = rng.integers(40, 120, size=(32, 32, 3)).astype(np.uint8)
                    if label:
                        image[8:24, 8:24] = rng.integers(180, 255, size=(16, 16, 3))
                    relative = f"{split}/{label}_{video}_{frame}.png"
                    (root / relative).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(image).save(root / relative)
                    rows.append(
                        {
                            "path": relative,
                            "label": label,
                            "domain": root.name,
                            "type": fake_type if label else "real",
                            "video_id": video_id,
                            "split": split,
                        }
                    )
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)


@pytest.mark.slow
def test_demo_sweep_end_to_end_with_submitit_wandb_and_robustness(tmp_path, capsys):
    """Two jobs (seeds) of the GM-DF Table 4 baseline sweep on the leave-WDF protocol, demo models,
    through submitit: trained, aggregated into the table, logged to W&B offline, robustness-tested.

    The data are a tiny prepared dataset (the real ``data.source=prepared`` path), so the test
    does not depend on the embedded synthetic data."""
    prepared = tmp_path / "prepared"
    for seed, (name, fake_type) in enumerate(MULTIDOMAIN_DATASETS.items()):
        write_tiny_prepared_dataset(prepared / name, fake_type, seed)
    app = tmp_path / "run_app.py"
    app.write_text(textwrap.dedent(RUN_APP.format(repo=str(REPO), conf=str(CONF))))
    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    args = [
        sys.executable,
        str(app),
        "-m",
        "+sweep=gmdf_multidomain_baselines",
        "leave_out=wilddeepfake",
        "seed=0,1",  # the command line narrows / widens the sweep's params
        "scale=demo",
        "trainer.max_epochs=1",
        "launcher=submitit_local",
        "logger=default",
        "data.source=prepared",
        f"paths.prepared_dir={prepared}",
        f"paths.log_dir={tmp_path / 'logs'}",
        "data.frames_per_video.eval=4",
        "data.batch_size=16",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    logs = "\n".join(p.read_text()[-2000:] for p in sweep_dir.rglob("*_log.err"))
    assert done.returncode == 0, done.stderr[-3000:] + logs
    assert all((sweep_dir / n / "results.json").is_file() for n in ("0", "1")), logs
    assert not list(sweep_dir.rglob("failed.json")), logs

    # The table: Xception on the leave-WDF protocol, two seeds, every shown cell filled.
    assert main([str(sweep_dir), "--table", "gmdf_table4", "--only-measured"]) == 0
    print(capsys.readouterr().out)
    result = compute_table(TABLES["gmdf_table4"], discover_jobs([sweep_dir]), only_measured=True)
    assert [r.key for r in result.rows] == ["xception"] and len(result.columns) == 2
    cells = [result.cells[("xception", c.key)] for c in result.columns]
    assert all(cell.status == STATUS_OK and cell.n == 2 and cell.std is not None for cell in cells), cells
    assert (sweep_dir / "tables" / "gmdf_table4.md").is_file()

    # W&B: one offline run directory per job, distinct runs, grouped by experiment and sweep.
    group = f"baseline_multidomain/{sweep_dir.name}"
    run_files = [list((sweep_dir / n / "wandb").glob("offline-run-*/run-*.wandb")) for n in ("0", "1")]
    assert all(len(files) == 1 for files in run_files), run_files
    assert run_files[0][0].name != run_files[1][0].name
    assert all(group.encode() in files[0].read_bytes() for files in run_files)

    # Robustness of one job's selected checkpoint: report and figures in its directory.
    from engine.robustness import main as robustness_main

    assert (
        robustness_main(
            [
                f"run_dir={sweep_dir / '0'}",
                "corruptions=[jpeg,contrast]",
                "severities=[0,1,5]",
                "test_sets=[wilddeepfake]",
                "config.data.num_workers=0",
            ]
        )
        == 0
    )
    report = json.loads((sweep_dir / "0" / "robustness.json").read_text())
    assert set(report["metrics"]["wilddeepfake"]["jpeg"]) == {"0", "1", "5"}
    assert report["checkpoint"].endswith(".ckpt")
    assert (sweep_dir / "0" / "plots" / "robustness" / "wilddeepfake_frame_auc.png").is_file()
