"""How a ``pretrained`` config value is read: nothing, a hub/tag name, or a local weights file.

Researchers on a cluster keep weights on shared disks, so a local file must work exactly like a
hub tag. A value that looks like a path but does not exist is an error, never a silent random init.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")


@dataclass(frozen=True)
class PretrainedSpec:
    kind: str  # "none" | "tag" | "file"
    value: str | None = None


def parse_pretrained(value: object, what: str) -> PretrainedSpec:
    """Classify ``value``: None/False/"none" -> none, an existing file -> file, else a hub tag.

    ``True`` or ``"default"`` means the model's default pretrained tag.
    """
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in {"", "none", "null", "false"}):
        return PretrainedSpec("none")
    if value is True:
        return PretrainedSpec("tag", "default")
    if not isinstance(value, str | Path):
        raise TypeError(f"{what}: pretrained must be none, a hub/tag name or a file path, got {value!r}")
    text = str(value)
    path = Path(text).expanduser()
    if path.is_file():
        return PretrainedSpec("file", str(path))
    looks_like_path = text.startswith(("/", "./", "../", "~")) or text.endswith(_WEIGHT_SUFFIXES)
    if looks_like_path:
        raise FileNotFoundError(
            f"{what}: pretrained weights file {text!r} does not exist (expected a readable file, "
            f"a hub/tag name, or none)"
        )
    return PretrainedSpec("tag", text)
