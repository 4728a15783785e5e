"""GM-DF's meta step (first-order) against a plain CLIP step on the same data and batch, at scale=demo.

Three trainings through run.py's Trainer (``benchmarks/suite_overhead.suite_epoch``), per training
step of the last epoch (batch 32, the gmdf_multidomain protocol, random tiny CLIP, MIM on pixels so no
tokenizer is trained inside the measurement):

- ``gmdf_meta``: GM-DF as configured (meta-optimiser: inner SGD step on the meta-train domains, then
  the outer losses on the meta-test domain with the updated domain parameters);
- ``gmdf_joint``: GM-DF with ``detector.meta.enabled=false`` (every loss in one forward/backward): the
  meta-optimiser's own cost is meta / joint;
- ``clip_step``: the CLIP fine-tune baseline (``detector=clip_finetune``) on the same protocol.

Rounds alternate the order. ``python benchmarks/meta_step.py --rounds 3``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from suite_overhead import suite_epoch  # benchmarks/ is on sys.path when this runs as a script

from engine.compose import compose_run_config

COMMON = ["scale=demo", "data.synthetic.progress=false", "detector.pretrained=null"]
SETTINGS = {
    "gmdf_meta": ["experiment=gmdf_multidomain", "detector.mim.target=pixels"],
    "gmdf_joint": ["experiment=gmdf_multidomain", "detector.mim.target=pixels", "detector.meta.enabled=false"],
    "clip_step": ["experiment=baseline_multidomain", "detector=clip_finetune"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit-batches", type=int, default=None, help="training steps per epoch (default: all)")
    args = parser.parse_args()
    limit = [f"+trainer.limit_train_batches={args.limit_batches}"] if args.limit_batches else []
    per_step: dict[str, list[float]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            names = list(SETTINGS) if round_ % 2 == 0 else list(reversed(SETTINGS))
            for name in names:
                cfg = compose_run_config([*SETTINGS[name], *COMMON, *limit], Path(tmp) / f"{name}{round_}")
                seconds = suite_epoch(cfg, args.epochs)
                per_step[name].append(seconds / suite_epoch.steps)
                print(f"round {round_} {name}: {per_step[name][-1] * 1e3:.1f} ms/step ({suite_epoch.steps} steps of batch "
                      f"{cfg.data.batch_size}; load {' '.join(f'{v:.2f}' for v in os.getloadavg())})", flush=True)
    median = {name: statistics.median(v) for name, v in per_step.items()}
    for name, values in per_step.items():
        print(f"{name:10s}: median {median[name] * 1e3:.1f} ms/step (min {min(values) * 1e3:.1f}, max {max(values) * 1e3:.1f})")
    print(f"ratio gmdf_meta / clip_step  = {median['gmdf_meta'] / median['clip_step']:.2f}")
    print(f"ratio gmdf_meta / gmdf_joint = {median['gmdf_meta'] / median['gmdf_joint']:.2f}  (the meta-optimiser's own cost)")
    print(f"ratio gmdf_joint / clip_step = {median['gmdf_joint'] / median['clip_step']:.2f}  (GM-DF's parts: experts, MIM, SIS, DA)")


if __name__ == "__main__":
    main()
