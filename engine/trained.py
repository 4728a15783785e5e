"""A trained model to use after training: a run directory or a checkpoint file located, the run's
config read back, and the detector rebuilt with the checkpoint's weights (``eval.py``, ``predict.py``).

Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain containers only, so a
checkpoint file cannot run code when it is loaded. A suite checkpoint (Lightning's dict of
``state_dict``, loops, optimiser states) loads this way; anything else stops with an error naming
the file and what was expected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from common.choices import check_choice
from evaluation.results import RESULTS_FILE_NAME, load_results

log = logging.getLogger(__name__)

CHECKPOINT_CHOICES = ("best", "last")


class TrainedRunError(ValueError):
    """A run directory or checkpoint that cannot be used; the message names the path and why."""


def run_config(run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The run's resolved config (results.json, else .hydra/config.yaml) with dotlist ``overrides``."""
    from engine.resolvers import register_resolvers

    register_resolvers()
    results_file = run_dir / RESULTS_FILE_NAME
    hydra_file = run_dir / ".hydra" / "config.yaml"
    if results_file.is_file():
        cfg = OmegaConf.create(load_results(results_file)["config"])
    elif hydra_file.is_file():
        cfg = OmegaConf.load(hydra_file)
        with open_dict(cfg):  # the Hydra-only interpolation of the run directory
            cfg.paths.output_dir = str(run_dir)
    else:
        raise TrainedRunError(f"{run_dir}: neither {RESULTS_FILE_NAME} nor .hydra/config.yaml; expected a run directory")
    with open_dict(cfg):
        cfg.merge_with(OmegaConf.from_dotlist(list(overrides)))
    return cfg


def checkpoint_path(run_dir: Path, which: str) -> Path:
    """``best`` (the checkpoint results.json says was tested), ``last``, or a file path."""
    if which == "best":
        results_file = run_dir / RESULTS_FILE_NAME
        selected = load_results(results_file)["validation"].get("checkpoint") if results_file.is_file() else None
        if not selected:
            raise TrainedRunError(f"{run_dir}: no tested checkpoint recorded in {RESULTS_FILE_NAME}; pass ckpt=last or ckpt=<file>")
        path = Path(selected)
    elif which == "last":
        path = run_dir / "checkpoints" / "last.ckpt"
    else:
        path = Path(which).expanduser()
    if not path.is_file():
        raise TrainedRunError(f"checkpoint {str(path)!r} (ckpt={which}) does not exist")
    return path


def locate(ckpt: object, which: str = "best") -> tuple[Path, Path]:
    """``(run dir, checkpoint file)`` of ``ckpt``: a run directory (its ``which`` checkpoint:
    ``best``, the one its results.json says was tested, or ``last``) or a ``.ckpt`` file inside
    ``<run dir>/checkpoints/`` (the run directory, two levels up, gives the config)."""
    if ckpt in (None, "", "???"):
        raise TrainedRunError("ckpt is not set; give ckpt=<run dir> or ckpt=<run dir>/checkpoints/<file>.ckpt")
    check_choice("which", which, CHECKPOINT_CHOICES, error=TrainedRunError)
    path = Path(str(ckpt)).expanduser().resolve()  # absolute: results record where the weights came from
    if path.is_dir():
        run_dir = path
        checkpoint = checkpoint_path(run_dir, which)
    elif path.is_file():
        checkpoint, run_dir = path, path.parent.parent
    else:
        raise TrainedRunError(f"ckpt={str(ckpt)!r}: no such run directory or checkpoint file")
    if not (run_dir / "results.json").is_file() and not (run_dir / ".hydra" / "config.yaml").is_file():
        raise TrainedRunError(
            f"{run_dir}: holds neither results.json nor .hydra/config.yaml, so the model's config is unknown; "
            f"expected a run directory of this suite (or a checkpoint inside its checkpoints/ folder)"
        )
    return run_dir, checkpoint


def trained_config(run_dir: Path) -> DictConfig:
    """The run's resolved config (results.json, else .hydra/config.yaml)."""
    return run_config(run_dir)


def read_state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a suite checkpoint, read with ``weights_only=True``."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling, truncated or non-checkpoint files: all one message
        raise TrainedRunError(
            f"{checkpoint}: cannot be read as a checkpoint with torch.load(weights_only=True) "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            f"expected a Lightning checkpoint written by this suite"
        ) from error
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise TrainedRunError(f"{checkpoint}: no 'state_dict' in it; expected a Lightning checkpoint written by this suite")
    return state["state_dict"]


def upgrade_stored_detector_config(detector: dict) -> dict:
    """A detector config stored before ``conf/scaled/`` said the demo values: DTN's / DFMoE's
    ``tiny_sizes`` (applied at ``size: tiny``) and GM-DF's ``{paper, tiny}`` settings become the plain
    values the model was built with, so runs trained before still load. Newer configs pass unchanged."""
    size = detector.get("size")
    tiny_sizes = detector.pop("tiny_sizes", None) or {}
    if size == "tiny":
        detector.update(tiny_sizes)
    per_size = [(detector.get("second_order") or {}, ["layers"])]
    tokenizer = (detector.get("mim") or {}).get("tokenizer") or {}
    per_size.append((tokenizer, list(tokenizer)))
    for node, keys in per_size:
        for key in keys:
            value = node.get(key)
            if isinstance(value, dict) and set(value) == {"paper", "tiny"}:
                node[key] = value[size]
    return detector


def load_detector(cfg: DictConfig, checkpoint: Path) -> torch.nn.Module:
    """The run's detector with the checkpoint's weights, including the validation threshold buffer.
    No pretrained weights are fetched: every weight, frozen backbones included, is in the checkpoint."""
    from hydra.utils import instantiate

    detector_cfg = OmegaConf.create(upgrade_stored_detector_config(OmegaConf.to_container(cfg.detector, resolve=True)))
    if "pretrained" in detector_cfg:
        detector_cfg.pretrained = None
    model = instantiate(detector_cfg, _convert_="all")
    state = read_state_dict(checkpoint)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TrainedRunError(
            f"{checkpoint}: its weights do not fit the run's detector {cfg.detector.get('_target_')!r}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
            f"expected a checkpoint of the run whose config was read"
        )
    model.eval()
    log.info("loaded %s (%s)", checkpoint, type(model).__name__)
    return model
