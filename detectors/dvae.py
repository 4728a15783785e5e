"""A small discrete VAE (Gumbel-softmax tokenizer) that turns an image into a grid of visual tokens, one
per ViT patch: the targets of GM-DF's masked image modelling (Eq. 6, BEiT-style).

The suite trains it itself on the training images of a protocol and caches it under
``${paths.cache_dir}/dvae/<fingerprint>.pt``, where the fingerprint covers the training files, the
image size and normalisation, the patch size and the tokenizer settings: a second run with the same
data reuses it, different data gets its own. The detector does this in ``setup("fit")``; to do it ahead
of a run (e.g. once before a sweep), ``engine/tokenizer.py``:

    python -m engine.tokenizer experiment=gmdf_multidomain scale=demo

Architecture: ``log2(patch_size)`` stride-2 convolutions down to the patch grid, a 1x1 convolution to
``vocab_size`` logits per cell, a Gumbel-softmax relaxation (temperature annealed towards a hard
one-hot), a codebook, and a mirrored transposed-convolution decoder. Loss: pixel MSE plus a small KL
term to the uniform prior (keeps codes in use). Tokens at use time are the argmax codes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.choices import settings_from_mapping
from common.numerics import numerics_tag
from evaluation.results import atomic_open

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DVAEConfig:
    """Tokenizer size and training recipe. ``steps`` optimiser steps on batches of ``batch_size`` images
    drawn from at most ``max_images`` training frames (loaded once into memory)."""

    vocab_size: int = 512
    hidden_channels: int = 64
    codebook_dim: int = 64
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    temperature_start: float = 1.0
    temperature_end: float = 0.0625
    kl_weight: float = 1e-3
    max_images: int = 20000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_channels", "codebook_dim", "steps", "batch_size", "max_images"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DVAEConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0 < self.temperature_end <= self.temperature_start:
            raise ValueError(
                f"DVAEConfig: need 0 < temperature_end <= temperature_start, got {self.temperature_end}, "
                f"{self.temperature_start}"
            )


def _num_downsamplings(patch_size: int) -> int:
    levels = int(round(math.log2(patch_size))) if patch_size > 0 else -1
    if patch_size < 2 or 2**levels != patch_size:
        raise ValueError(f"DiscreteVAE: patch_size must be a power of two >= 2 (one token per ViT patch), got {patch_size}")
    return levels


class DiscreteVAE(nn.Module):
    """``encode_logits(images (B, 3, H, W)) -> (B, V, H/p, W/p)``; ``tokenize(images) -> (B, N)`` long codes
    in row-major order of the patch grid (the ViT's patch-token order); ``forward`` returns the
    reconstruction and the code logits for training."""

    def __init__(self, patch_size: int, vocab_size: int = 512, hidden_channels: int = 64, codebook_dim: int = 64):
        super().__init__()
        levels = _num_downsamplings(patch_size)
        self.patch_size = patch_size
        self.vocab_size = vocab_size
        encoder: list[nn.Module] = []
        channels = 3
        for _ in range(levels):
            encoder += [nn.Conv2d(channels, hidden_channels, 4, stride=2, padding=1), nn.ReLU()]
            channels = hidden_channels
        encoder += [nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden_channels, vocab_size, 1)]
        self.encoder = nn.Sequential(*encoder)
        self.codebook = nn.Parameter(torch.randn(vocab_size, codebook_dim) / math.sqrt(codebook_dim))
        decoder: list[nn.Module] = [nn.Conv2d(codebook_dim, hidden_channels, 3, padding=1), nn.ReLU()]
        for level in range(levels):
            last = level == levels - 1
            decoder.append(nn.ConvTranspose2d(hidden_channels, 3 if last else hidden_channels, 4, stride=2, padding=1))
            if not last:
                decoder.append(nn.ReLU())
        self.decoder = nn.Sequential(*decoder)

    def encode_logits(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"DiscreteVAE: expected images (B, 3, H, W), got shape {tuple(images.shape)}")
        if images.shape[-1] % self.patch_size or images.shape[-2] % self.patch_size:
            raise ValueError(
                f"DiscreteVAE: image size {tuple(images.shape[-2:])} is not a multiple of patch_size={self.patch_size}"
            )
        return self.encoder(images)

    def decode_codes(self, soft_codes: torch.Tensor) -> torch.Tensor:
        """``soft_codes`` ``(B, V, h, w)`` (one-hot or relaxed) -> images ``(B, 3, H, W)``."""
        embedded = torch.einsum("bvhw,vc->bchw", soft_codes, self.codebook)
        return self.decoder(embedded)

    def forward(self, images: torch.Tensor, temperature: float = 1.0, hard: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.encode_logits(images)
        soft = F.gumbel_softmax(logits, tau=temperature, hard=hard, dim=1)
        return self.decode_codes(soft), logits

    @torch.no_grad()
    def tokenize(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.encode_logits(images)
        return logits.argmax(dim=1).flatten(1)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decode the argmax codes (what the tokens keep of the image)."""
        codes = self.encode_logits(images).argmax(dim=1)
        one_hot = F.one_hot(codes, self.vocab_size).permute(0, 3, 1, 2).to(self.codebook.dtype)
        return self.decode_codes(one_hot)


def dvae_loss(
    reconstruction: torch.Tensor, images: torch.Tensor, logits: torch.Tensor, kl_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Pixel MSE + ``kl_weight`` * KL(q(code | cell) || uniform), the KL averaged over grid cells."""
    mse = F.mse_loss(reconstruction, images)
    log_q = F.log_softmax(logits, dim=1)
    kl = (log_q.exp() * (log_q + math.log(logits.shape[1]))).sum(dim=1).mean()
    return mse + kl_weight * kl, {"mse": float(mse.detach()), "kl": float(kl.detach())}


def code_perplexity(codes: torch.Tensor, vocab_size: int) -> float:
    """exp(entropy) of the code histogram: how many codes are effectively in use (1 = collapse)."""
    counts = torch.bincount(codes.reshape(-1), minlength=vocab_size).float()
    probs = counts / counts.sum()
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return float(entropy.exp())


def progress_bar():
    """The suite's one progress style (rich) for long steps: tokenizer and tiny-CLIP pretraining."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())


def train_dvae(
    images: torch.Tensor, patch_size: int, config: DVAEConfig, device: torch.device | str = "cpu"
) -> tuple[DiscreteVAE, dict[str, float]]:
    """Train a tokenizer on ``images`` ``(M, 3, H, W)`` (already normalised as the detector sees them).

    Returns the model (eval mode, on CPU) and statistics: final MSE, the MSE of predicting the mean
    image (what a useless tokenizer achieves), the code perplexity on the training images and the time.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"train_dvae: expected a non-empty image tensor (M, 3, H, W), got shape {tuple(images.shape)}")
    started = time.time()
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = DiscreteVAE(patch_size, config.vocab_size, config.hidden_channels, config.codebook_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    ratio = config.temperature_end / config.temperature_start
    model.train()
    parts: dict[str, float] = {}
    progress = progress_bar()
    task = progress.add_task(f"dVAE tokenizer on {images.shape[0]} images", total=config.steps)
    with progress, torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # Gumbel noise: the same data gives the same tokenizer
        for step in range(config.steps):
            temperature = config.temperature_start * ratio ** (step / max(1, config.steps - 1))
            rows = torch.randint(0, images.shape[0], (config.batch_size,), generator=generator)
            batch = images[rows].to(device)
            reconstruction, logits = model(batch, temperature=temperature)
            loss, parts = dvae_loss(reconstruction, batch, logits, config.kl_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            progress.advance(task)
            if (step + 1) % 50 == 0:
                progress.update(task, description=f"dVAE tokenizer: MSE {parts.get('mse', float('nan')):.4f}")
    model.eval().cpu()
    with torch.no_grad():
        sample = images[: min(len(images), 512)]
        codes = model.tokenize(sample)
        hard_mse = float(F.mse_loss(model.reconstruct(sample), sample))
        mean_image_mse = float(F.mse_loss(sample.mean(dim=0, keepdim=True).expand_as(sample), sample))
    stats = {
        "train_mse": parts.get("mse", float("nan")),
        "hard_code_mse": hard_mse,
        "mean_image_mse": mean_image_mse,
        "perplexity": code_perplexity(codes, config.vocab_size),
        "seconds": time.time() - started,
        "images": float(images.shape[0]),
    }
    return model.requires_grad_(False), stats


def dvae_fingerprint(
    files: Sequence[str], image_size: int, normalization: str, patch_size: int, config: DVAEConfig, *, numerics: str
) -> str:
    """A key for the cache: which images (sorted paths), how they are presented, the tokenizer recipe and
    where it is trained (``numerics``, common/numerics.py: another thread count or GPU model trains
    other weights)."""
    digest = hashlib.sha1()
    for path in sorted(files):
        digest.update(path.encode())
        digest.update(b"\n")
    digest.update(json.dumps({"image_size": image_size, "normalization": normalization, "patch_size": patch_size,
                              "numerics": numerics, **asdict(config)}, sort_keys=True).encode())
    return digest.hexdigest()[:20]


def load_training_images(
    files: Sequence[str], image_size: int, normalization: str, max_images: int, seed: int = 0, normalize: bool = True,
) -> torch.Tensor:
    """At most ``max_images`` of ``files`` (a seeded random subset), resized and normalised like the
    detector's evaluation inputs, stacked into one tensor (``normalize=False``: resized uint8 pixels)."""
    from datamodules.frame_dataset import load_rgb
    from datamodules.transforms import build_transform

    if not files:
        raise ValueError("load_training_images: no training files to train the tokenizer on")
    chosen = list(files)
    if len(chosen) > max_images:
        order = torch.randperm(len(chosen), generator=torch.Generator().manual_seed(seed))[:max_images]
        chosen = [chosen[i] for i in sorted(order.tolist())]
    transform = build_transform(image_size, normalization, train=False, normalize=normalize)
    return torch.stack([transform(load_rgb(path)) for path in chosen])


def load_dvae(path: Path) -> tuple[DiscreteVAE, dict]:
    """A cached tokenizer and its metadata (``config``, ``patch_size``, ``stats``, ``fingerprint``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise RuntimeError(f"cannot load the cached dVAE tokenizer {str(path)!r} ({error}); delete it to retrain") from error
    config = DVAEConfig(**payload["config"])
    model = DiscreteVAE(int(payload["patch_size"]), config.vocab_size, config.hidden_channels, config.codebook_dim)
    model.load_state_dict(payload["state_dict"])
    return model.eval().requires_grad_(False), payload


def load_or_train_dvae(
    cache_dir: str | Path,
    files: Sequence[str],
    image_size: int,
    normalization: str,
    patch_size: int,
    config: DVAEConfig,
    is_writer: bool = True,
    wait: Callable[[], None] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[DiscreteVAE, Path, dict]:
    """The tokenizer for these training files: from ``cache_dir`` when it was trained before, otherwise
    trained now and saved there (atomically). Under DDP only ``is_writer`` (rank 0) trains and writes;
    ``wait`` (a barrier) is called before the other ranks read, so all ranks use the same tokenizer."""
    cache_dir = Path(cache_dir)
    numerics = numerics_tag(device)
    key = dvae_fingerprint(files, image_size, normalization, patch_size, config, numerics=numerics)
    path = cache_dir / f"dvae_{key}.pt"
    if is_writer and not path.is_file():
        images = load_training_images(files, image_size, normalization, config.max_images, config.seed)
        model, stats = train_dvae(images, patch_size, config, device=device)
        log.info(
            "trained dVAE tokenizer on %d images in %.1fs: code MSE %.4f (mean-image MSE %.4f), perplexity %.1f of %d codes",
            int(stats["images"]), stats["seconds"], stats["hard_code_mse"], stats["mean_image_mse"], stats["perplexity"], config.vocab_size,
        )
        cache_dir.mkdir(parents=True, exist_ok=True)
        payload = {"config": asdict(config), "patch_size": patch_size, "image_size": image_size, "normalization": normalization,
                   "fingerprint": key, "numerics": numerics, "stats": stats, "state_dict": model.state_dict()}
        with atomic_open(path, binary=True) as handle:
            torch.save(payload, handle)
    if wait is not None:
        wait()
    if not path.is_file():
        raise FileNotFoundError(f"dVAE tokenizer {str(path)!r} was not written by the training rank; expected it after the barrier")
    model, payload = load_dvae(path)
    if payload["patch_size"] != patch_size:
        raise ValueError(f"cached dVAE {str(path)!r} has patch_size {payload['patch_size']}, expected {patch_size}")
    return model, path, payload


def config_from_mapping(raw: dict | None, where: str) -> DVAEConfig:
    """A :class:`DVAEConfig` from a config mapping; unknown keys stop with the list of known ones."""
    return settings_from_mapping(DVAEConfig, raw, f"{where} (dVAE settings)")
