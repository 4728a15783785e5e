"""Small runs on prepared data (``scale=demo data.source=prepared``, docs/DATASETS.md "Small runs
on prepared data") and the advice of the missing-dataset error, which must fit the run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO, compose
from fixtures_layouts import write_prepared_dataset
from hydra.utils import instantiate

from datamodules.sources import DatasetNotFoundError
from engine.pipeline import run
from evaluation.results import load_results

# docs/DATASETS.md, "Small runs on prepared data": exactly as documented.
SMALL_RUN = "python run.py experiment=baseline_ffpp protocol=ffpp_within_domain scale=demo data.source=prepared"


def _missing_error(overrides, tmp_path) -> str:
    cfg = compose([*overrides, f"paths.prepared_dir={tmp_path / 'nowhere'}"], tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    with pytest.raises(DatasetNotFoundError) as err:
        datamodule.setup("fit")
    return str(err.value)


def test_missing_prepared_data_advice_fits_the_run(tmp_path):
    paper = _missing_error(["experiment=baseline_ffpp"], tmp_path)
    assert str(tmp_path / "nowhere" / "ffpp_c23") in paper
    assert "python -m datamodules.preprocess" in paper and "with scale=demo" in paper
    small = _missing_error(["experiment=baseline_ffpp", "scale=demo", "data.source=prepared"], tmp_path)
    assert str(tmp_path / "nowhere" / "ffpp_c23") in small
    assert "with scale=demo" not in small  # the run already uses it
    assert "drop data.source=prepared" in small


def test_small_run_reads_the_prepared_crops(tmp_path):
    prepared = tmp_path / "prepared"
    index = write_prepared_dataset(prepared / "ffpp_c23")
    overrides = SMALL_RUN.split()[2:] + [f"paths.prepared_dir={prepared}", "+trainer.fast_dev_run=true"]
    cfg = compose(overrides, tmp_path / "run")
    assert cfg.data.source == "prepared" and cfg.detector.input_size == 64  # demo size, real crops
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    assert set(datamodule.train_table["file"]) <= {str(prepared / "ffpp_c23" / p) for p in index["path"]}
    run(cfg)
    assert set(load_results(tmp_path / "run" / "results.json")["tests"]) == set(cfg.protocol.test)


@pytest.mark.slow
def test_small_run_command_as_documented(tmp_path):
    """The documented command, typed as is, in a fresh run root with FACEMOE_PREPARED set."""
    prepared = tmp_path / "prepared"
    write_prepared_dataset(prepared / "ffpp_c23", frames=4)
    env = {
        **os.environ,
        "FACEMOE_PREPARED": str(prepared),
        "FACEMOE_ROOT": str(tmp_path),
        "FACEMOE_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
        "WANDB_MODE": "offline",
    }
    command = SMALL_RUN.split()
    done = subprocess.run(
        [sys.executable, str(REPO / "run.py"), *command[2:]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the run's results.json (a copy is attached to its offline W&B run, under wandb/)
    results = sorted(p for p in tmp_path.glob("logs/**/results.json") if "wandb" not in p.relative_to(tmp_path).parts)
    assert len(results) == 1, results
    tests = load_results(results[0])["tests"]
    assert {"ffpp", "ffpp_df", "ffpp_nt"} <= set(tests)
