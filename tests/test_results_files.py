"""Tests for evaluation.results: results.json and predictions CSVs are consistent, strict JSON
(NaN -> null), atomic under failure, schema-checked on load; git_commit is robust."""

from __future__ import annotations

import json
import math
import stat
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datamodules.records import records_frame
from evaluation import results as results_module
from evaluation.metrics import METRIC_NAMES, UndefinedMetricWarning, all_metrics, eer_threshold
from evaluation.results import (
    PREDICTION_COLUMNS,
    SCHEMA_VERSION,
    ResultsFileError,
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    build_results,
    git_commit,
    json_safe,
    load_results,
    predictions_path,
    read_predictions,
    write_predictions,
    write_results,
)


def _records_with_scores(
    domain: str, seed: int, labels_per_video: list[int], frames: int = 4
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for video, label in enumerate(labels_per_video):
        kind = "Deepfakes" if label else "real"
        for frame in range(frames):
            rows.append(
                {
                    "path": f"{domain}/{kind}/{video:03d}/{frame:04d}.png",
                    "label": label,
                    "domain": domain,
                    "type": kind,
                    "video_id": f"{domain}/{kind}/{video:03d}",
                    "split": "test",
                }
            )
    records = records_frame(rows, source=f"synthetic {domain}")
    # Scores with full float64 precision and some exact ties, to check the CSV round trip.
    records["score"] = np.where(
        rng.random(len(records)) < 0.2, 0.5, rng.random(len(records)) * 0.6 + 0.3 * records.label
    )
    return records


def _nan_equal(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(
        (math.isnan(left[key]) and math.isnan(right[key])) or left[key] == right[key] for key in left
    )


def _metrics_for(records: pd.DataFrame, val_threshold: float, name: str) -> dict:
    return all_metrics(
        records.score, records.label, records.video_id, val_threshold=val_threshold, context=name
    )


@pytest.fixture()
def finished_run(tmp_path: Path):
    """A run directory as run.py would leave it: predictions per test set and results.json."""
    validation = _records_with_scores("ffpp", 0, [0, 1] * 4)
    test_sets = {
        "celebdf": _records_with_scores("celebdf", 1, [0, 1, 1, 0, 1, 0]),
        "dfdc": _records_with_scores("dfdc", 2, [1, 0, 0, 1, 1]),
        "fakes_only": _records_with_scores("diff", 3, [1, 1, 1]),  # AUC/EER undefined -> null
    }
    threshold = eer_threshold(validation.score, validation.label)
    tests = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for name, records in test_sets.items():
            write_predictions(predictions_path(tmp_path, name), records)
            tests[name] = _metrics_for(records, threshold, name)
        results = build_results(
            config={"detector": {"name": "clip_moe", "top_k": 2}, "seed": np.int64(7), "out": tmp_path},
            validation={"metrics": _metrics_for(validation, threshold, "val"), "threshold": threshold},
            tests=tests,
            git_commit="0123abc",
            wall_time_s=12.5,
            extra={"best_epoch": 3},
        )
    write_results(tmp_path, results)
    return tmp_path, test_sets, threshold


def test_metrics_recomputed_from_predictions_equal_results_json(finished_run):
    run_dir, test_sets, threshold = finished_run
    loaded = load_results(run_dir / "results.json")
    assert loaded["schema_version"] == SCHEMA_VERSION
    assert sorted(loaded["tests"]) == sorted(test_sets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for name, records in test_sets.items():
            predictions = read_predictions(run_dir / "predictions" / f"{name}.csv")
            assert len(predictions) == len(records)
            np.testing.assert_array_equal(predictions.score.to_numpy(), records.score.to_numpy())
            recomputed = _metrics_for(predictions, threshold, name)
            for level in ("frame", "video"):
                assert _nan_equal(recomputed[level], loaded["tests"][name][level]), (name, level)
    assert math.isnan(loaded["tests"]["fakes_only"]["frame"]["auc"])
    # M_EER is the maximum EER over the test sets whose EER is defined.
    frame_eers = [loaded["tests"][name]["frame"]["eer"] for name in ("celebdf", "dfdc")]
    assert loaded["summary"]["m_eer"]["frame"] == max(frame_eers)


def test_predictions_csv_has_exactly_the_contract_columns(finished_run):
    run_dir, test_sets, _ = finished_run
    csv_path = run_dir / "predictions" / "celebdf.csv"
    header = csv_path.read_text().splitlines()[0]
    assert header == ",".join(PREDICTION_COLUMNS)  # 'split' and other extra columns dropped
    assert len(csv_path.read_text().splitlines()) == len(test_sets["celebdf"]) + 1
    assert stat.S_IMODE(csv_path.stat().st_mode) == 0o644


def test_results_json_is_strict_json_with_nan_as_null(finished_run):
    run_dir, _, _ = finished_run
    text = (run_dir / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text

    def reject(token: str):
        raise AssertionError(f"non-standard token {token}")

    raw = json.loads(text, parse_constant=reject)
    assert raw["tests"]["fakes_only"]["frame"]["auc"] is None
    assert raw["tests"]["fakes_only"]["frame"]["acc"] is not None
    assert raw["config"]["seed"] == 7 and raw["config"]["out"] == str(run_dir)
    assert raw["git_commit"] == "0123abc" and raw["extra"] == {"best_epoch": 3}


def test_json_safe_converts_nan_inf_numpy_and_names_bad_keys():
    converted = json_safe(
        {"a": [math.nan, math.inf, -math.inf, np.float32(0.5)], "b": np.arange(2), "c": (1,)}
    )
    assert converted == {"a": [None, None, None, 0.5], "b": [0, 1], "c": [1]}
    with pytest.raises(TypeError, match=r"\$\.config\.model: cannot write a object"):
        json_safe({"config": {"model": object()}})
    with pytest.raises(TypeError, match="JSON keys must be str"):
        json_safe({"tests": {1: 0.5}})


def _old_file(tmp_path: Path) -> Path:
    target = tmp_path / "results.json"
    target.write_text('{"old": true}\n')
    return target


def test_atomic_open_keeps_old_file_when_writing_fails_halfway(tmp_path):
    target = _old_file(tmp_path)
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_open(target) as handle:
        handle.write('{"new": ')
        handle.flush()
        raise RuntimeError("disk on fire")
    assert target.read_text() == '{"old": true}\n'
    assert [path.name for path in tmp_path.iterdir()] == ["results.json"]


def test_atomic_write_json_keeps_old_file_when_serialisation_fails_halfway(tmp_path, monkeypatch):
    target = _old_file(tmp_path)
    chunks_written = []

    def failing_chunks(obj):
        for chunk in ('{\n  "schema_version": 1,', '\n  "tests": {'):
            chunks_written.append(chunk)
            yield chunk
        raise ValueError("serialiser crashed")

    monkeypatch.setattr(results_module, "_json_chunks", failing_chunks)
    with pytest.raises(ValueError, match="serialiser crashed"):
        atomic_write_json(target, {"schema_version": 1, "tests": {}})
    assert len(chunks_written) == 2  # part of the document really was written before the crash
    assert target.read_text() == '{"old": true}\n'
    assert [path.name for path in tmp_path.iterdir()] == ["results.json"]


def test_atomic_write_json_rejects_unserialisable_value_naming_file_and_key(tmp_path):
    target = _old_file(tmp_path)
    with pytest.raises(TypeError, match=r"results\.json: \$\.extra: cannot write a object"):
        atomic_write_json(target, {"extra": object()})
    assert target.read_text() == '{"old": true}\n'


def test_write_predictions_keeps_old_file_when_csv_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "predictions" / "dfdc.csv"
    records = _records_with_scores("dfdc", 0, [0, 1])
    write_predictions(target, records)
    before = target.read_text()

    def half_then_crash(self, handle, **kwargs):
        handle.write("path,video_id\n")
        raise OSError("quota exceeded")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_crash)
    with pytest.raises(OSError, match="quota exceeded"):
        write_predictions(target, records)
    assert target.read_text() == before
    assert [path.name for path in target.parent.iterdir()] == ["dfdc.csv"]


def test_atomic_write_text_replaces_content(tmp_path):
    target = atomic_write_text(tmp_path / "deep" / "note.txt", "second")
    assert target.read_text() == "second"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda frame: frame.drop(columns="score"), r"lack column\(s\) \['score'\]"),
        (lambda frame: frame.assign(score=np.nan), "2 of 2 scores are missing, NaN or infinite"),
        (lambda frame: frame.assign(label=[0, 3]), r"1 label\(s\) are not 0"),
    ],
)
def test_write_predictions_rejects_bad_frames_naming_the_file(tmp_path, change, message):
    records = _records_with_scores("dfdc", 0, [0, 1], frames=1)
    with pytest.raises(ValueError, match=rf"bad\.csv: .*{message}"):
        write_predictions(tmp_path / "bad.csv", change(records))
    assert not (tmp_path / "bad.csv").exists()


def test_predictions_path_rejects_names_that_are_not_file_names(tmp_path):
    assert predictions_path(tmp_path, "celebdf_v2") == tmp_path / "predictions" / "celebdf_v2.csv"
    with pytest.raises(ValueError, match="cannot be a file name"):
        predictions_path(tmp_path, "ffpp/c23")


def test_build_results_checks_its_inputs():
    metrics = {"frame": dict.fromkeys(METRIC_NAMES, 0.1), "video": dict.fromkeys(METRIC_NAMES, 0.2)}
    built = build_results({}, {}, {"a": metrics}, None, 1.0)
    assert built["schema_version"] == SCHEMA_VERSION and built["summary"]["m_eer"] == {
        "frame": 0.1,
        "video": 0.2,
    }
    with pytest.raises(ResultsFileError, match="tests is empty"):
        build_results({}, {}, {}, None, 1.0)
    with pytest.raises(ResultsFileError, match=r"tests\.a: lacks level\(s\) \['video'\]"):
        build_results({}, {}, {"a": {"frame": metrics["frame"]}}, None, 1.0)
    with pytest.raises(ResultsFileError, match="wall_time_s must be a number >= 0"):
        build_results({}, {}, {"a": metrics}, None, -3.0)


def _write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_load_results_names_the_file_and_the_problem(finished_run, tmp_path):
    run_dir, _, _ = finished_run
    good = json.loads((run_dir / "results.json").read_text())
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 1, ')
    with pytest.raises(ResultsFileError, match="broken.json: not a valid results JSON"):
        load_results(broken)
    nan_token = tmp_path / "nan.json"
    nan_token.write_text((run_dir / "results.json").read_text().replace("null", "NaN", 1))
    with pytest.raises(ResultsFileError, match="nan.json: .*token NaN; NaN/inf must be written as null"):
        load_results(nan_token)
    with pytest.raises(ResultsFileError, match=r"old.json: schema_version is 0"):
        load_results(_write_json(tmp_path / "old.json", {**good, "schema_version": 0}))
    without_tests = {key: value for key, value in good.items() if key != "tests"}
    with pytest.raises(ResultsFileError, match=r"no_tests.json: results lack key\(s\) \['tests'\]"):
        load_results(_write_json(tmp_path / "no_tests.json", without_tests))
    del good["tests"]["dfdc"]["video"]["auc"]
    with pytest.raises(ResultsFileError, match=r"tests\.dfdc\.video: metrics \['auc'\] are missing"):
        load_results(_write_json(tmp_path / "no_auc.json", good))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_git_commit_outside_repo_before_first_commit_clean_and_dirty(tmp_path):
    assert git_commit(tmp_path) is None  # not a repository
    assert git_commit(tmp_path / "missing") is None  # not even a directory
    _git(tmp_path, "init", "-q")
    assert git_commit(tmp_path) is None  # no commit yet
    (tmp_path / "tracked.txt").write_text("a")
    _git(tmp_path, "add", "tracked.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    clean = git_commit(tmp_path)
    assert clean is not None and len(clean) == 40 and int(clean, 16) >= 0
    (tmp_path / "untracked.txt").write_text("run output")
    assert git_commit(tmp_path) == clean  # untracked files do not make the tree dirty
    (tmp_path / "tracked.txt").write_text("b")
    assert git_commit(tmp_path) == f"{clean}-dirty"
