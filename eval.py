"""facemoe eval entry point: ``python eval.py ckpt=<run dir> [protocol=<name>] [key=value ...]``.

Tests a trained checkpoint on a protocol's test sets (or a prepared folder) without training and
writes ``results.json`` + ``predictions/`` into a new run directory ``logs/eval/runs/<id>/``
(conf/eval.yaml, engine/evaluate.py, docs/INFERENCE.md).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from engine.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(Path(__file__).resolve().parent / "conf"), config_name="eval")
def main(cfg: DictConfig) -> None:
    from engine.evaluate import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
