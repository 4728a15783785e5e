"""SUEDE, MoA-CLIP and GM-DF against the plain CLIP baselines at the same budget, at scale=demo.

Each comparison trains every listed detector on the same protocol, data, epochs and seed on the
embedded synthetic data and prints the test metrics of the held-out sets (the numbers in
docs/CLIP_METHODS.md and docs/GMDF.md). The methods run through their experiment config (their recipe: prompts,
loss weights, warm-up, gradient clipping); the baselines through ``protocol=... detector=...``.
A script, not a test (minutes per run on CPU):

    OMP_NUM_THREADS=1 python benchmarks/clip_methods_demo.py --comparisons uniattack_p2_1 --epochs 4 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from pathlib import Path

from engine.compose import compose_run_config
from engine.pipeline import run
from evaluation.results import load_results

# comparison -> detector label -> overrides; the first entry is the method, the rest baselines.
COMPARISONS: dict[str, dict[str, list[str]]] = {
    "uniattack_p2_1": {
        "suede": ["experiment=suede_uniattack_p2", "protocol=uniattack_p2_1"],
        "clip_finetune": ["protocol=uniattack_p2_1", "detector=clip_finetune"],
    },
    "uniattack_p2_2": {
        "suede": ["experiment=suede_uniattack_p2", "protocol=uniattack_p2_2"],
        "clip_finetune": ["protocol=uniattack_p2_2", "detector=clip_finetune"],
    },
    "ffpp_moa": {
        "moa_clip": ["experiment=moa_ffpp"],
        "clip_finetune": ["protocol=ffpp_cross_dataset_moa", "detector=clip_finetune"],
        "clip_linear_probe": ["protocol=ffpp_cross_dataset_moa", "detector=clip_linear_probe"],
    },
    # GM-DF's demo recipe fine-tunes the suite's synthetic-pretrained tiny CLIP at lr 3e-4; the baseline
    # starts from the same weights with the same lr.
    "gmdf_multidomain": {
        "gmdf": ["experiment=gmdf_multidomain"],
        "clip_finetune": ["experiment=baseline_multidomain", "detector=clip_finetune", "demo_pretrained=synthetic",
                          "detector.optimizer.lr=3e-4"],
    },
    "diff_t2i": {
        "moa_clip": ["experiment=moa_diff", "protocol=diff_train_t2i"],
        "clip_finetune": ["protocol=diff_train_t2i", "detector=clip_finetune"],
        "clip_linear_probe": ["protocol=diff_train_t2i", "detector=clip_linear_probe"],
    },
}
REPORTED = ("auc", "eer", "acer", "acc")


def compose_config(overrides: list[str], output_dir: Path, synthetic_root: Path | None):
    extra = [f"paths.log_dir={output_dir / 'logs'}", "logger=csv", "callbacks.progress_bar=null"]
    if synthetic_root is not None:
        extra += [f"data.synthetic.root={synthetic_root}", "data.synthetic.progress=false"]
    cfg = compose_run_config([*extra, *overrides], output_dir)
    return cfg


def run_one(overrides: list[str], epochs: int, seed: int, synthetic_root: Path | None) -> dict[str, dict[str, float]]:
    """Frame metrics of one demo training run: the validation set (training domains, the selected
    checkpoint) as ``val``, then every test set."""
    with tempfile.TemporaryDirectory() as tmp:
        output_dir = Path(tmp)
        cfg = compose_config([*overrides, "scale=demo", f"trainer.max_epochs={epochs}", f"seed={seed}"], output_dir, synthetic_root)
        run(cfg)
        results = load_results(output_dir / "results.json")
    metrics = {"val": results["validation"]["metrics"], **results["tests"]}
    return {name: {key: values["frame"][key] for key in REPORTED} for name, values in metrics.items()}


def _mean_std(values: list[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "nan"
    if len(finite) == 1:
        return f"{finite[0]:.4f}"
    return f"{statistics.mean(finite):.4f} +- {statistics.stdev(finite):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comparisons", nargs="+", default=list(COMPARISONS), choices=list(COMPARISONS))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lr", type=float, default=None,
                        help="one learning rate for every detector (tiny random CLIPs need more than the papers' fine-tuning lr)")
    parser.add_argument("--synthetic-root", type=Path, default=None, help="reuse a synthetic data cache")
    parser.add_argument("--json", type=Path, default=None, help="also write all numbers here")
    args = parser.parse_args()
    everything: dict[str, dict[str, list[dict]]] = {}
    for comparison in args.comparisons:
        for label, overrides in COMPARISONS[comparison].items():
            if args.lr is not None:
                overrides = [*overrides, f"detector.optimizer.lr={args.lr}"]
                if label == "suede":
                    overrides.append(f"detector.new_parameter_lr={args.lr}")
            runs = [run_one(overrides, args.epochs, seed, args.synthetic_root) for seed in args.seeds]
            everything.setdefault(comparison, {})[label] = runs
            for test_set in runs[0]:
                cells = "  ".join(f"{key} {_mean_std([r[test_set][key] for r in runs])}" for key in REPORTED)
                print(f"{comparison:16s} {label:18s} {test_set:14s} {cells}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"epochs": args.epochs, "seeds": args.seeds, "results": everything}, indent=1))


if __name__ == "__main__":
    main()
