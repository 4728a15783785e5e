"""Linear probes of a CLIP-family experiment's frozen tower at scale=demo, per fake type: what the tower's
features hold before anything is trained on them (docs/CLIP_METHODS.md, "What holds `moa_ffpp` back").

The tower is the one the experiment starts from: the tiny CLIP pretrained with the experiment's pretraining recipe
(domains, shifts), at its patch size, as run.py builds it (``benchmarks/clip_methods_demo.py``'s baseline overrides,
with ``detector=clip_linear_probe``). It extracts, with no gradient, from ``--passes`` augmented passes over
the training frames, the validation split and one test set:

- ``cls_proj``: the projected class token, the feature a head on the tower reads (MoA-CLIP's, the probe's);
- ``cls<i>`` / ``mean<i>``: the class token / the mean patch token after block i;
- ``tokens<i>``: block i's whole patch-token map, flattened (``--no-token-maps`` leaves them out: at 224 px a
  ViT-B/16 map is 150,528 features a frame).

Each feature set gets one logistic regression (scikit-learn, standardised inputs), its C chosen on the
validation AUC, and is scored on the test set: AUC over all frames and per fake type (the set's real frames
against that type's). A script, not a test: about a minute at demo scale once the experiment's tower is
pretrained and cached (the first run pretrains it, as run.py does: minutes).

    python benchmarks/frozen_probe.py   # moa_ffpp, its first test set (FF++), 3 passes
    python benchmarks/frozen_probe.py --experiment moa_ffpp --test-set ffpp --passes 3 seed=1
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from clip_methods_demo import EXPERIMENTS, baseline_overrides  # benchmarks/ is on sys.path as a script
from hydra.utils import instantiate
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from engine.compose import compose_run_config
from engine.synthetic_pretraining import resolve_synthetic_weights

C_GRID = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0)
C_GRID_TOKENS = (1e-6, 1e-5, 0.0001, 0.001, 0.01)  # thousands of features against about a thousand rows


def probe_overrides(experiment: str, extra: Sequence[str] = ()) -> list[str]:
    """The experiment's starting tower as a linear probe; ``extra`` overrides replace same-key ones."""
    keys = {item.split("=", 1)[0].lstrip("+~") for item in extra}  # a base key given again replaces the base one
    base = [item.replace("detector=clip_finetune", "detector=clip_linear_probe") for item in baseline_overrides(experiment)]
    return [item for item in base if item.split("=", 1)[0] not in keys] + ["scale=demo", "logger=csv", *extra]


class TowerFeatures:
    """Features of a frozen CLIP vision tower (``visual``), block by block, through forward hooks."""

    def __init__(self, visual: torch.nn.Module, token_maps: bool = True):
        self.visual = visual.eval()
        self.token_maps = token_maps
        self.batch_first = bool(getattr(visual.transformer, "batch_first", True))  # open_clip's layout flag
        self.blocks = list(visual.transformer.resblocks)
        self._outputs: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self.blocks):
            block.register_forward_hook(lambda _m, _i, out, index=index: self._outputs.__setitem__(index, out.detach()))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = {"cls_proj": self.visual(images).float()}
        for index in range(len(self.blocks)):
            tokens = self._outputs[index] if self.batch_first else self._outputs[index].transpose(0, 1)
            features[f"cls{index}"] = tokens[:, 0].float()
            features[f"mean{index}"] = tokens[:, 1:].mean(1).float()
            if self.token_maps:
                features[f"tokens{index}"] = tokens[:, 1:].flatten(1).float()
        return features


def extract(tower: TowerFeatures, datamodule, loader, passes: int = 1) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """(features by name, labels, type names) of every frame ``loader`` yields, ``passes`` times; each pass is
    an epoch of its sampler (the training sampler draws other frames each epoch, as in training)."""
    parts: dict[str, list[torch.Tensor]] = {}
    labels, types = [], []
    for epoch in range(passes):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for batch in loader:
            batch = datamodule.on_after_batch_transfer(batch, 0)  # the datamodule's normalisation
            for name, value in tower(batch["image"]).items():
                parts.setdefault(name, []).append(value)
            labels.append(batch["label"])
            types += [datamodule.type_names[int(t)] for t in batch["type"]]
    return {name: torch.cat(values).numpy() for name, values in parts.items()}, torch.cat(labels).numpy(), types


def per_type_auc(labels: np.ndarray, scores: np.ndarray, types: Sequence[str]) -> dict[str, float]:
    """AUC of the real frames (label 0) against each fake type's frames."""
    types = np.asarray(types)
    real = labels == 0
    return {name: float(roc_auc_score(labels[real | (types == name)], scores[real | (types == name)]))
            for name in sorted(set(types[labels == 1]))}


def probe(train, val, test, grid: Sequence[float]) -> dict[str, object]:
    """One logistic regression on ``train`` = (features, labels), C chosen on ``val``'s AUC, scored on
    ``test`` = (features, labels, types)."""
    scaler = StandardScaler().fit(train[0])
    best = None
    for c in grid:
        model = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(train[0]), train[1])
        auc = roc_auc_score(val[1], model.decision_function(scaler.transform(val[0])))
        if best is None or auc > best[0]:
            best = (auc, c, model)
    val_auc, c, model = best
    scores = model.decision_function(scaler.transform(test[0]))
    return {"C": c, "val_auc": float(val_auc), "test_auc": float(roc_auc_score(test[1], scores)),
            "per_type": per_type_auc(test[1], scores, test[2])}


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="moa_ffpp", choices=list(EXPERIMENTS))
    parser.add_argument("--test-set", default=None, help="a test set of the experiment's protocol (default: its first)")
    parser.add_argument("--passes", type=int, default=3, help="augmented passes over the training frames")
    parser.add_argument("--no-token-maps", action="store_true", help="leave out the whole token maps (tokens<i>)")
    parser.add_argument("overrides", nargs="*", help="further config overrides (e.g. seed=1)")
    args = parser.parse_args(argv)
    if args.passes < 1:
        parser.error(f"--passes must be >= 1, got {args.passes}")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_run_config([f"paths.log_dir={tmp}", *probe_overrides(args.experiment, args.overrides)], Path(tmp))
        test_names = list(cfg.data.protocol.test)
        args.test_set = test_names[0] if args.test_set is None else args.test_set
        if args.test_set not in test_names:
            parser.error(f"--test-set {args.test_set!r} is not a test set of {args.experiment}'s protocol; "
                         f"its test sets: {test_names}")
        L.seed_everything(int(cfg.seed), workers=True)  # as run.py: the frames drawn and their augmentation
        datamodule = instantiate(cfg.data, _convert_="all")
        datamodule.setup("fit")
        cfg = resolve_synthetic_weights(cfg)
        tower = TowerFeatures(instantiate(cfg.detector, _convert_="all").encoder, token_maps=not args.no_token_maps)
        train = extract(tower, datamodule, datamodule.train_dataloader(), args.passes)
        val = extract(tower, datamodule, datamodule.val_dataloader())
        test = extract(tower, datamodule, datamodule.test_dataloader()[test_names.index(args.test_set)])
    print(f"{args.experiment}: {len(train[1])} training rows ({args.passes} passes), {len(val[1])} validation, "
          f"{len(test[1])} {args.test_set} test frames; frame AUC")
    results = {}
    for name in train[0]:
        grid = C_GRID_TOKENS if name.startswith("tokens") else C_GRID
        row = probe((train[0][name], train[1]), (val[0][name], val[1]), (test[0][name], test[1], test[2]), grid)
        results[name] = row
        per_type = ", ".join(f"{kind} {auc:.3f}" for kind, auc in row["per_type"].items())
        print(f"{name:9s} ({train[0][name].shape[1]} features, C={row['C']}): validation {row['val_auc']:.3f}, "
              f"{args.test_set} {row['test_auc']:.3f} ({per_type})", flush=True)
    return results


if __name__ == "__main__":
    main()
