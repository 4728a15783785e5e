"""SUEDE, MoA-CLIP and GM-DF against the plain CLIP baselines at the same budget, at scale=demo.

Each comparison trains an experiment and the plain CLIP fine-tune from the same start (the tiny CLIP
pretrained with the experiment's pretraining recipe: domains, shifts, epochs) on the same protocol, data, epochs and seed on the
embedded synthetic data and prints the validation and test metrics (the numbers in
docs/CLIP_METHODS.md and docs/GMDF.md). The methods run through their experiment config (their recipe: prompts,
loss weights, warm-up, gradient clipping); the baselines through ``protocol=... detector=clip_finetune``.
A script, not a test (minutes per run on CPU):

    OMP_NUM_THREADS=1 python benchmarks/clip_methods_demo.py --comparisons suede_uniattack_p1 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import OmegaConf

from engine.compose import compose_run_config
from engine.pipeline import run
from evaluation.results import load_results

# The 8 CLIP-family experiments; each is compared with the plain CLIP fine-tune from the same start: the
# tiny CLIP pretrained with the experiment's own pretraining recipe (and patch), on the experiment's protocol,
# with its demo augmentation set, class balance and tested checkpoint, at the demo fine-tuning lr and epochs
# (baseline_overrides).
EXPERIMENTS = (
    "gmdf_multidomain", "gmdf_ffpp", "gmdf_gid", "moa_ffpp", "moa_diff",
    "suede_uniattack_p1", "suede_uniattack_p2", "suede_jfsfdb",
)
BASELINE_LR = 3e-4


def hydra_literal(value) -> str:
    """``value`` written in Hydra's override grammar: null, booleans, numbers, plain words, [lists] and {mappings}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_literal(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{key}:{hydra_literal(item)}" for key, item in value.items()) + "}"
    return str(value)


def baseline_overrides(experiment: str, overrides: Sequence[str] = ()) -> list[str]:
    """``clip_finetune`` on the experiment's protocol from the same synthetic-pretrained CLIP and epochs; the
    experiment composed with ``overrides`` (``--override``), of which the fine-tune takes what it takes from the
    experiment: the pretraining recipe, the embedded data's spec, the demo epochs, the patch, the augmentation set, the
    class balance of the training videos and the checkpoint tested (``test_ckpt``)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_run_config([f"experiment={experiment}", "scale=demo", *overrides], Path(tmp))
    recipe = OmegaConf.to_container(cfg.synthetic_pretraining, resolve=True)
    recipe.pop("cache_dir")
    # the experiment's whole recipe (domains, shifts, epochs, augmentation set, ...)
    pretraining = [f"synthetic_pretraining.{key}={hydra_literal(value)}" for key, value in recipe.items()]
    spec = cfg.data.synthetic.spec
    spec = None if spec is None else OmegaConf.to_container(spec, resolve=True)
    return [f"protocol={cfg.protocol.name}", "detector=clip_finetune", "demo_pretrained=synthetic",
            *pretraining, f"detector.optimizer.lr={BASELINE_LR}",
            f"demo_epochs={cfg.trainer.max_epochs}", f"demo_clip_patch_size={cfg.demo_clip_patch_size}",
            f"augment={cfg.data.augment.name}", f"data.balance={cfg.data.balance}", f"test_ckpt={cfg.test_ckpt}",
            f"data.synthetic.spec={hydra_literal(spec)}"]


def comparison(experiment: str, overrides: Sequence[str] = ()) -> dict[str, list[str]]:
    return {experiment: [f"experiment={experiment}", *overrides], "clip_finetune": baseline_overrides(experiment, overrides)}


REPORTED = ("auc", "eer", "acer", "acc")


def compose_config(overrides: list[str], output_dir: Path, synthetic_root: Path | None):
    extra = [f"paths.log_dir={output_dir / 'logs'}", "logger=csv", "callbacks.progress_bar=null"]
    if synthetic_root is not None:
        extra += [f"data.synthetic.root={synthetic_root}", "data.synthetic.progress=false"]
    cfg = compose_run_config([*extra, *overrides], output_dir)
    return cfg


def run_one(overrides: list[str], epochs: int | None, seed: int, synthetic_root: Path | None) -> dict[str, dict[str, float]]:
    """Frame metrics of one demo training run: the validation set (training domains, the selected
    checkpoint) as ``val``, then every test set. ``epochs`` None: the experiment's demo epochs."""
    with tempfile.TemporaryDirectory() as tmp:
        output_dir = Path(tmp)
        epochs_override = [] if epochs is None else [f"trainer.max_epochs={epochs}"]
        cfg = compose_config([*overrides, "scale=demo", *epochs_override, f"seed={seed}"], output_dir, synthetic_root)
        run(cfg)
        results = load_results(output_dir / "results.json")
    metrics = {"val": results["validation"]["metrics"], **results["tests"]}
    numbers = {name: {key: values["frame"][key] for key in REPORTED} for name, values in metrics.items()}
    timings = results["extra"].get("timings", {})
    numbers["time"] = {"fit_s": timings.get("fit_s", math.nan), "pretraining_s": timings.get("synthetic_pretraining_s", math.nan)}
    return numbers


def _mean_std(values: list[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "nan"
    if len(finite) == 1:
        return f"{finite[0]:.4f}"
    return f"{statistics.mean(finite):.4f} +- {statistics.stdev(finite):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comparisons", nargs="+", default=list(EXPERIMENTS), choices=list(EXPERIMENTS))
    parser.add_argument("--epochs", type=int, default=None, help="default: each experiment's demo epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lr", type=float, default=None,
                        help="one learning rate for every detector (tiny random CLIPs need more than the papers' fine-tuning lr)")
    parser.add_argument("--synthetic-root", type=Path, default=None, help="reuse a synthetic data cache")
    parser.add_argument("--json", type=Path, default=None, help="also write all numbers here")
    parser.add_argument("--runs", nargs="+", default=["method", "clip_finetune"], choices=["method", "clip_finetune"],
                        help="which side of each comparison to train (default both)")
    parser.add_argument("--override", nargs="+", default=[], metavar="KEY=VALUE",
                        help="Hydra overrides of the experiment, e.g. its pretraining recipe; the fine-tune takes the "
                             "pretraining recipe, demo epochs, patch and augmentation set of the experiment so changed")
    args = parser.parse_args()
    everything: dict[str, dict[str, list[dict]]] = {}
    for experiment in args.comparisons:
        for label, overrides in comparison(experiment, args.override).items():
            if ("clip_finetune" if label == "clip_finetune" else "method") not in args.runs:
                continue
            if args.lr is not None:
                overrides = [*overrides, f"detector.optimizer.lr={args.lr}"]
                if label.startswith("suede"):
                    overrides.append(f"detector.new_parameter_lr={args.lr}")
            runs = everything.setdefault(experiment, {}).setdefault(label, [])
            for seed in args.seeds:
                runs.append(run_one(overrides, args.epochs, seed, args.synthetic_root))
                if args.json:  # after every run, so that an interrupted comparison keeps what it measured
                    args.json.write_text(json.dumps({"epochs": args.epochs, "seeds": args.seeds, "overrides": args.override,
                                                      "results": everything}, indent=1))
            for test_set, values in runs[0].items():
                cells = "  ".join(f"{key} {_mean_std([r[test_set][key] for r in runs])}" for key in values)
                print(f"{experiment:18s} {label:18s} {test_set:14s} {cells}", flush=True)


if __name__ == "__main__":
    main()
