"""Put evaluation scores back together across DDP ranks without counting any sample twice.

Each rank scores a disjoint, unpadded shard (``EvalShardSampler``), so ranks may hold different
numbers of rows; we pad to the largest shard only for the collective, then drop the padding and
place every score at its row index. A row scored twice or never is an error, not a silent skew.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist


class IncompleteEvaluationError(RuntimeError):
    """Rows of an evaluation set that were scored twice or not at all."""


def _all_gather_varlen(tensor: torch.Tensor) -> torch.Tensor:
    world = dist.get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


def gather_scores(
    indices: torch.Tensor, scores: torch.Tensor, num_rows: int, set_name: str, require_complete: bool = True
) -> np.ndarray:
    """Scores of all ranks as an array of length ``num_rows`` (NaN where a row was not scored).

    With ``require_complete`` (full evaluation), every row must be scored exactly once.
    """
    indices = indices.long().reshape(-1)
    scores = scores.float().reshape(-1)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        indices = _all_gather_varlen(indices)
        scores = _all_gather_varlen(scores)
    indices_np = indices.cpu().numpy()
    scores_np = scores.cpu().numpy().astype(np.float64)
    counts = np.bincount(indices_np, minlength=num_rows) if len(indices_np) else np.zeros(num_rows, dtype=np.int64)
    if len(counts) > num_rows:
        raise IncompleteEvaluationError(f"set {set_name!r}: row index {len(counts) - 1} is outside its {num_rows} rows")
    twice = np.flatnonzero(counts > 1)
    if len(twice):
        raise IncompleteEvaluationError(f"set {set_name!r}: {len(twice)} row(s) were scored more than once (e.g. rows {twice[:5].tolist()})")
    missing = np.flatnonzero(counts == 0)
    if require_complete and len(missing):
        raise IncompleteEvaluationError(
            f"set {set_name!r}: {len(missing)} of {num_rows} row(s) were not scored (e.g. rows {missing[:5].tolist()})"
        )
    out = np.full(num_rows, np.nan)
    out[indices_np] = scores_np
    return out
