"""Loading weight files without trusting them: every checkpoint or pretrained file that is not a
resume (robustness ``ckpt=``, DTN's teacher, ``pretrained: <file>``) is read here.

* ``torch.load(..., weights_only=True)`` only: a file that holds anything but tensors and plain
  containers is refused, so a crafted pickle can never run code.
* Errors name the file and say what was expected (never torch's advice to retry unsafely, never a
  bare ``KeyError(101)`` for a text file).
* The suite's checkpoints carry the identity of the detector that wrote them
  (:data:`IDENTITY_KEY`, stored by ``BaseDetector.on_save_checkpoint``): a checkpoint of another
  detector is refused even when its tensor shapes happen to match, and a state dict of another
  architecture gives one message naming both instead of ``Error(s) in loading state_dict``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

# Key of a Lightning checkpoint holding {"detector": "<module>.<class>", ...} of the writer.
IDENTITY_KEY = "facemoe_detector"


class WeightsFileError(ValueError):
    """A weights / checkpoint file that cannot be used; the message names the file and the expectation."""


def _unpickler_reason(error: BaseException) -> str:
    """The one informative line of torch's weights_only refusal (which global was blocked)."""
    for line in str(error).splitlines():
        if "WeightsUnpickler error" in line or "Unsupported global" in line:
            return line.strip()
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def load_weights_file(path: str | Path, what: str) -> Any:
    """The content of a PyTorch or safetensors weights file, loaded without executing any code.

    ``what`` says what the file is for (``"teacher checkpoint"``, ``"pretrained weights of timm
    model resnet34"``) and starts every error message.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise WeightsFileError(f"{what} {str(source)!r} does not exist (expected a weights file)")
    if source.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(source), device="cpu")
        except Exception as error:  # safetensors raises its own SafetensorError for any bad header
            raise WeightsFileError(
                f"{what} {str(source)!r} is not a valid safetensors file ({type(error).__name__}: {error})"
            ) from error
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsFileError(
            f"{what} {str(source)!r} was refused: it is not a plain weights file ({_unpickler_reason(error)}). "
            "Expected a PyTorch state dict or a checkpoint of this suite; files holding other Python objects "
            "are never unpickled, since unpickling can run arbitrary code"
        ) from error
    except Exception as error:  # noqa: BLE001 - any failure to parse an untrusted file is "not a weights file"
        # A text file gives KeyError(<first byte>) or IndexError, a truncated one EOFError, a corrupt archive
        # RuntimeError: the unpickler's own exception says nothing about the file, so name it here.
        raise WeightsFileError(
            f"{what} {str(source)!r} is not a PyTorch weights file ({type(error).__name__}: {error}); expected a "
            "file written by torch.save (a state dict or a Lightning checkpoint) or a .safetensors file"
        ) from error


def state_dict_of(content: Any, source: str | Path, what: str) -> dict[str, torch.Tensor]:
    """The tensor state dict inside a loaded file: a Lightning checkpoint's ``state_dict`` or a plain
    state dict (the ``module.`` prefix of DDP-wrapped saves is kept: callers decide)."""
    state = content.get("state_dict", content) if isinstance(content, Mapping) else None
    if not isinstance(state, Mapping) or not state:
        raise WeightsFileError(
            f"{what} {str(source)!r} holds a {type(content).__name__}, not a state dict; expected a mapping of "
            "parameter names to tensors (or a Lightning checkpoint with a 'state_dict')"
        )
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsFileError(
            f"{what} {str(source)!r}: {len(bad)} entr(y/ies) of its state dict are not name -> tensor "
            f"(e.g. {bad[:3]}); expected a mapping of parameter names to tensors"
        )
    return dict(state)


def check_weights_file(path: str | Path, what: str) -> None:
    """Refuse, with a clear message, a file that a library (timm, open_clip) is about to load as
    pretrained weights but that is not a tensor state dict (checked before the library sees it)."""
    source = Path(path).expanduser()
    if source.suffix in (".npz", ".npy"):
        import numpy as np

        try:
            with np.load(source, allow_pickle=False):
                return
        except Exception as error:
            raise WeightsFileError(f"{what} {str(source)!r} is not a readable numpy weights archive ({error})") from error
    content = load_weights_file(source, what)
    if isinstance(content, torch.jit.ScriptModule):
        return
    state_dict_of(content, source, what)


def detector_name(model: torch.nn.Module) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def identity(model: torch.nn.Module) -> dict[str, Any]:
    """What a checkpoint stores about the detector that wrote it."""
    return {
        "detector": detector_name(model),
        "input_size": getattr(model, "input_size", None),
        "normalization": getattr(model, "normalization", None),
    }


def check_identity(checkpoint: Mapping[str, Any], model: torch.nn.Module, source: str | Path) -> None:
    """Refuse a checkpoint written by another detector class (names both). A checkpoint without an
    identity (written before identities were stored, or not by this suite) passes to the state dict
    check, which still refuses another architecture."""
    stored = checkpoint.get(IDENTITY_KEY) if isinstance(checkpoint, Mapping) else None
    if not isinstance(stored, Mapping):
        return
    expected = detector_name(model)
    if stored.get("detector") != expected:
        raise WeightsFileError(
            f"checkpoint {str(source)!r} was written by detector {stored.get('detector')!r}, but the model being "
            f"loaded is {expected!r}; load it with the config of the run that wrote it"
        )


def load_matching_state_dict(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str | Path, what: str, written_by: str | None = None
) -> None:
    """``model.load_state_dict(state, strict=True)`` with one readable message on any mismatch:
    missing and unexpected keys and shape differences, naming the file and the model's class."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} parameter(s) of the model are not in the file (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} entr(y/ies) of the file are not in the model (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape(s) differ (e.g. {shapes[:3]})")
        raise WeightsFileError(
            f"{what} {str(source)!r} (written by {written_by or 'an unrecorded detector'}) does not fit detector "
            f"{detector_name(model)}: {'; '.join(parts)}. It was written by another architecture or configuration; "
            "load it with the config of the run that wrote it"
        )
    model.load_state_dict(dict(state), strict=True)


def load_checkpoint_into(model: torch.nn.Module, path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """Load a suite checkpoint (or plain state dict) into ``model`` safely and strictly; returns the
    loaded file's content (for callers that read more of it, e.g. the validation threshold)."""
    content = load_weights_file(path, what)
    written_by = None
    if isinstance(content, Mapping):
        check_identity(content, model, path)
        stored = content.get(IDENTITY_KEY)
        written_by = stored.get("detector") if isinstance(stored, Mapping) else None
    state = state_dict_of(content, path, what)
    load_matching_state_dict(model, state, path, what, written_by)
    return dict(content) if isinstance(content, Mapping) else {}
