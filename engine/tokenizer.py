"""GM-DF's dVAE tokenizer (``detectors/dvae.py``) trained or found ahead of a run, as its own visible
phase (e.g. once before a sweep), composed exactly as ``run.py`` composes the run::

    python -m engine.tokenizer experiment=gmdf_multidomain scale=demo

It lives in engine/ (not beside the tokenizer) because it orchestrates: threads, the synthetic
pretraining, the datamodule and the detector (docs/ARCHITECTURE.md, "Layers").
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def prepare_tokenizer(cfg: DictConfig) -> None:
    """Build the run's datamodule and GM-DF detector from ``cfg`` and let the detector train (or load
    from the cache) its tokenizer; prints where it is and its statistics."""
    from hydra.utils import instantiate

    from engine.synthetic_pretraining import resolve_synthetic_weights
    from engine.threads import apply_threads

    if "gmdf" not in str(cfg.detector.get("_target_", "")):
        raise SystemExit(f"engine.tokenizer: the composed detector is {cfg.detector.get('_target_')!r}; pass a GM-DF experiment or detector=gmdf")
    apply_threads(OmegaConf.to_container(cfg.threads) if cfg.get("threads") else None)
    cfg = resolve_synthetic_weights(cfg)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    detector = instantiate(cfg.detector, _convert_="all")
    path, payload = detector.prepare_tokenizer(datamodule, device=run_device(cfg))
    print(f"dVAE tokenizer: {path}\n{json.dumps(payload['stats'], indent=2)}")


def run_device(cfg: DictConfig) -> str:
    """The device ``run.py`` would train ``cfg`` on (its rank 0): the first GPU when the trainer asks for
    one (``gpu`` / ``cuda``, or ``auto`` with a GPU present), else the CPU. The tokenizer is cached per
    device kind (common/numerics.py), so one prepared elsewhere would not be the run's."""
    import torch

    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    wants_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "cuda:0" if wants_gpu and torch.cuda.is_available() else "cpu"


def main() -> None:
    """``python -m engine.tokenizer <hydra overrides>``."""
    import hydra

    from engine.resolvers import register_resolvers

    register_resolvers()
    # an absolute path: as the console script facemoe-tokenizer this module is imported, not run as a file
    conf = str(Path(__file__).resolve().parent.parent / "conf")
    hydra.main(version_base="1.3", config_path=conf, config_name="train")(prepare_tokenizer)()


if __name__ == "__main__":
    main()
