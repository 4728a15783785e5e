"""The aggregator's summary of any multirun: mean ± std per varied knob, failed jobs counted,
demo jobs marked (also next to paper numbers)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from test_aggregate import ffpp_job, make_job, metrics

from sweeps.aggregate import discover_jobs, main
from sweeps.summary import summarise_jobs, varied_knobs


def multirun(root, scale="demo"):
    """detector a / b x seed 0 / 1, plus one failed job of detector b (seed 2)."""
    aucs = {("a", 0): 0.70, ("a", 1): 0.80, ("b", 0): 0.90, ("b", 1): 0.94}
    for num, ((detector, seed), auc) in enumerate(aucs.items()):
        job = make_job(root / str(num), {"detector": detector}, {"seed": seed, "scale_name": scale, "experiment_name": "x"},
                       {"dfdc": metrics(auc=auc, eer=1 - auc)})
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"detector={detector}", f"seed={seed}", "scale=demo"]))
    failed = make_job(root / "4", {"detector": "b"}, {"seed": 2, "scale_name": scale}, None, failed=True)
    (failed / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["detector=b", "seed=2", "scale=demo"]))
    return root


def test_knobs_are_the_overrides_that_differ_not_the_seed(tmp_path):
    jobs = discover_jobs([multirun(tmp_path)])
    knobs, values = varied_knobs(jobs)
    assert knobs == ["detector"]
    assert sorted(v["detector"] for v in values.values()) == ["a", "a", "b", "b", "b"]


def test_mean_and_std_per_knob_value(tmp_path):
    summary = summarise_jobs(discover_jobs([multirun(tmp_path)]))
    auc = summary.groups[summary.groups["metric"] == "dfdc/auc"].set_index("detector")
    assert auc.loc["a", "mean"] == pytest.approx(0.75) and auc.loc["a", "std"] == pytest.approx(pd.Series([0.7, 0.8]).std())
    assert auc.loc["b", "mean"] == pytest.approx(0.92) and auc.loc["b", "n"] == 2
    assert auc.loc["b", "jobs"] == 3 and auc.loc["b", "failed"] == 1 and auc.loc["b", "seeds"] == "0,1"
    assert summary.demo


def test_aggregate_without_table_writes_the_summary(tmp_path, capsys):
    root = multirun(tmp_path / "sweep")
    assert main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "| detector | scale |" in out and "| a | demo | 2 (2/0) | 0.7500 ± 0.0707" in out and "not comparable" in out
    assert "Jobs without results" in out
    for name in ("summary.md", "summary.csv", "summary_jobs.csv"):
        assert (root / "summary" / name).is_file()
    jobs = pd.read_csv(root / "summary" / "summary_jobs.csv")
    assert len(jobs) == 5 and set(jobs["status"]) == {"done", "failed"}


def test_paper_scale_multirun_is_not_marked_demo(tmp_path, capsys):
    root = multirun(tmp_path / "sweep", scale="paper")
    assert main([str(root), "--no-write"]) == 0
    assert "(demo)" not in capsys.readouterr().out


def test_demo_cells_are_marked_beside_paper_numbers(tmp_path, capsys):
    for seed in (0, 1):
        job = ffpp_job(tmp_path / "sweep" / str(seed), "xception", seed, {"celebdf_v2": 0.7})
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        config["scale_name"] = "demo"
        from evaluation.results import build_results, write_results

        write_results(job, build_results(config, {}, {"celebdf_v2": metrics(auc=0.7)}, git_commit=None, wall_time_s=1.0))
    assert main([str(tmp_path / "sweep"), "--table", "dfmoe_table2", "--only-measured", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "70.00 ± 0.00 (demo) [74.93]" in out and "not comparable with the paper" in out
