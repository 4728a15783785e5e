"""The demo recipes of the experiment configs learn the embedded data (slow: 20-epoch trainings).

Each test runs an experiment exactly as a user types it (``experiment=<name> scale=demo``) and holds
the in-domain FF++ test AUC and the validation AUC measured for it (seed 0; docs/CNN_METHODS.md,
"Demo scale"), with a margin for thread-count and platform noise. The DFMoE recipe is held in
tests/test_dfmoe.py.
"""

from __future__ import annotations

import pytest
from conftest import compose

# Measured seed 0 (frame AUC): baseline_multidomain FF++ 0.945 / validation 0.942 (held-out DFDC 0.887,
# WildDeepfake 0.450); dtn_ffpp FF++ 0.785 / validation 0.935 (DF 0.990, F2F 0.669, FS 0.856, NT 0.626).
CASES = {
    "baseline_multidomain": {"ffpp": 0.90, "validation": 0.88},
    "dtn_ffpp": {"ffpp": 0.72, "validation": 0.85},
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(CASES))
def test_demo_recipe_learns_the_embedded_data(experiment, tmp_path, synthetic_root):
    from engine.pipeline import run
    from evaluation.results import load_results

    run(compose([f"experiment={experiment}", "scale=demo"], tmp_path, synthetic_root))
    results = load_results(tmp_path / "results.json")
    assert results["config"]["trainer"]["max_epochs"] == 20
    validation = results["validation"]["metrics"]["frame"]["auc"]
    ffpp = results["tests"]["ffpp"]["frame"]["auc"]
    print(experiment, "validation", round(validation, 4), "ffpp", round(ffpp, 4))
    assert ffpp >= CASES[experiment]["ffpp"] and validation >= CASES[experiment]["validation"], (validation, ffpp)
