"""facemoe predict entry point: ``python predict.py ckpt=<run dir> 'inputs=[face.jpg,clips/]'``.

P(fake) per frame and per file of images, videos and folders, with face detection and alignment
as in preprocessing; writes files.csv, frames.csv and predictions.json into a new run directory
``logs/predict/runs/<id>/`` (conf/predict.yaml, engine/predict.py, docs/INFERENCE.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from engine.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(Path(__file__).resolve().parent / "conf"), config_name="predict")
def main(cfg: DictConfig) -> None:
    from engine.predict import exit_code, predict

    code = exit_code(predict(cfg))
    if code:  # some file could not be read: it is listed in files.csv; scripts see it too
        sys.exit(code)


if __name__ == "__main__":
    main()
