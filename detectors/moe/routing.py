"""Routers that decide which experts process which tokens or samples.

Every router returns a :class:`detectors.output.RoutingInfo` whose rows are the routed units:

* ``TopKRouter``   -- learned linear (or small MLP) gate, softmax over all experts, keep the top-k,
  renormalise the kept weights to sum to 1; optional Shazeer-style noisy gating while training.
* ``DenseRouter``  -- learned gate, softmax weights over *all* experts (k = num_experts); MoA-CLIP's
  ``alpha = softmax(Router(h_in))``.
* ``DomainRouter`` -- oracle routing by domain id (expert = domain, weight 1); MoA-CLIP's adapter
  step and GM-DF's per-domain experts while training.

What the learned gate looks at is chosen by ``gate_input``:

* ``"token"``    -- every token of ``x`` (shape ``(T, D)`` or ``(B, N, D)``, flattened to ``(B*N, D)``)
  is routed on its own: one row per token (SUEDE, MoA-CLIP).
* ``"mean"``     -- ``x`` of shape ``(B, N, D)`` is mean-pooled over its N tokens: one row per sample.
* ``"external"`` -- the gate reads a separate ``gate_feature`` of shape ``(B, dim)`` (e.g. DFMoE's
  multi-scale Xception descriptor): one row per sample.

Sample-level routings (``"mean"``, ``"external"``, ``DomainRouter``) are spread to the tokens of a
sample with :func:`expand_routing`; ``router.routes_per_sample`` tells a layer whether it must.

The gate always runs in fp32 with autocast disabled (ST-MoE: bf16 router logits make the softmax and
the top-k selection unstable), so ``logits``/``probs``/``weights`` are fp32 whatever the input dtype.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from common.choices import check_choice
from detectors.output import RoutingInfo

GateInput = Literal["token", "mean", "external"]
GATE_INPUTS: tuple[str, ...] = get_args(GateInput)


def flatten_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(..., D)`` -> ``(T, D)`` with T the product of the leading dimensions."""
    if x.ndim < 2:
        raise ValueError(
            f"routing.flatten_tokens: expected a tensor (..., D) with ndim >= 2, got shape {tuple(x.shape)}"
        )
    return x.reshape(-1, x.shape[-1])


def mean_pool_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, N, D)`` -> ``(B, D)``: the mean over each sample's tokens."""
    if x.ndim != 3:
        raise ValueError(f"routing.mean_pool_tokens: expected (B, N, D) tokens, got shape {tuple(x.shape)}")
    return x.mean(dim=1)


def expand_routing(routing: RoutingInfo, tokens_per_sample: int) -> RoutingInfo:
    """Repeat each sample-level row ``tokens_per_sample`` times, giving a token-level routing whose rows
    follow the ``(B, N, D) -> (B*N, D)`` flattening order (all tokens of sample 0 first)."""
    if tokens_per_sample < 1:
        raise ValueError(f"routing.expand_routing: tokens_per_sample must be >= 1, got {tokens_per_sample}")

    def repeat(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return None if tensor is None else tensor.repeat_interleave(tokens_per_sample, dim=0)

    return RoutingInfo(
        indices=repeat(routing.indices),
        weights=repeat(routing.weights),
        probs=repeat(routing.probs),
        logits=repeat(routing.logits),
        num_experts=routing.num_experts,
    )


def _check_gate_input(gate_input: str) -> None:
    check_choice("routing: gate_input", gate_input, GATE_INPUTS)


def fp32_forward(module: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Run a ``nn.Linear`` or a ``nn.Sequential`` of Linear/activation layers in fp32 with autocast off,
    casting weights too, so a gate stays fp32 even inside a bf16 model or an autocast region."""
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    with torch.autocast(device_type=features.device.type, enabled=False):
        hidden = features.float()
        for layer in layers:
            if isinstance(layer, nn.Linear):
                bias = None if layer.bias is None else layer.bias.float()
                hidden = F.linear(hidden, layer.weight.float(), bias)
            else:
                hidden = layer(hidden)
    return hidden


class _LearnedGate(nn.Module):
    """Linear gate (or a small MLP when ``hidden_dim`` is set) producing fp32 expert logits, and the
    choice of what it reads (``gate_input``)."""

    def __init__(self, dim: int, num_experts: int, gate_input: GateInput, hidden_dim: int | None) -> None:
        super().__init__()
        if dim < 1 or num_experts < 1:
            raise ValueError(
                f"routing: dim and num_experts must be >= 1, got dim={dim}, num_experts={num_experts}"
            )
        _check_gate_input(gate_input)
        self.dim = dim
        self.num_experts = num_experts
        self.gate_input = gate_input
        if hidden_dim is None:
            self.gate: nn.Module = nn.Linear(dim, num_experts, bias=False)
        else:
            self.gate = nn.Sequential(
                nn.Linear(dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, num_experts, bias=False)
            )
        # Small init: near-uniform routing at start, but not exactly tied (ties make top-k pick the
        # lowest indices for every token, so some experts would never be tried).
        final = self.gate if hidden_dim is None else self.gate[-1]
        nn.init.normal_(final.weight, std=0.02)

    @property
    def routes_per_sample(self) -> bool:
        return self.gate_input != "token"

    def gate_features(self, x: torch.Tensor | None, gate_feature: torch.Tensor | None) -> torch.Tensor:
        """The (rows, dim) tensor the gate reads, according to ``gate_input``."""
        if self.gate_input == "external":
            if gate_feature is None:
                raise ValueError(
                    "routing: gate_input='external' needs gate_feature of shape (B, dim), got None"
                )
            features = gate_feature
            if features.ndim != 2:
                raise ValueError(
                    f"routing: external gate_feature must be (B, dim), got shape {tuple(features.shape)}"
                )
        elif x is None:
            raise ValueError(f"routing: gate_input={self.gate_input!r} needs the token tensor x, got None")
        elif self.gate_input == "mean":
            features = mean_pool_tokens(x)
        else:
            features = flatten_tokens(x)
        if features.shape[-1] != self.dim:
            raise ValueError(
                f"routing: gate expects features of size {self.dim}, got shape {tuple(features.shape)}"
            )
        return features

    def fp32_logits(self, features: torch.Tensor) -> torch.Tensor:
        return fp32_forward(self.gate, features)


class _GatedRouter(nn.Module):
    """What the learned routers share: their :class:`_LearnedGate` (``self.gate``), what it reads and its
    logits."""

    gate: _LearnedGate

    @property
    def gate_input(self) -> str:
        return self.gate.gate_input

    @property
    def routes_per_sample(self) -> bool:
        return self.gate.routes_per_sample

    def gate_logits(
        self, x: torch.Tensor | None, gate_feature: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (rows, dim) features the gate reads and its fp32 logits over the experts."""
        features = self.gate.gate_features(x, gate_feature)
        return features, self.gate.fp32_logits(features)


class TopKRouter(_GatedRouter):
    """Top-k router: ``probs = softmax(W x)`` over all experts, keep the k largest, renormalise the kept
    weights over the k (so they sum to 1). ``dim`` is the size of what the gate reads: the token width,
    or the external gate feature's width with ``gate_input="external"``.

    Noisy gating (Shazeer et al. 2017), training only: ``H(x) = W x + eps * noise_std * softplus(W_noise x)``
    with ``eps ~ N(0, 1)``; selection, ``probs`` and ``weights`` come from H(x) while ``logits`` keeps the
    clean ``W x`` (so the z-loss penalises the learned logits, not the noise). ``W_noise`` starts at zero,
    i.e. a noise std of ``noise_std * softplus(0) = 0.69 * noise_std``, learned from there.
    """

    def __init__(
        self,
        dim: int,
        num_experts: int,
        k: int,
        noisy_gating: bool = False,
        noise_std: float = 1.0,
        gate_input: GateInput = "token",
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= k <= num_experts:
            raise ValueError(f"TopKRouter: k must be in [1, num_experts={num_experts}], got k={k}")
        if noise_std < 0:
            raise ValueError(f"TopKRouter: noise_std must be >= 0, got {noise_std}")
        self.k = k
        self.num_experts = num_experts
        self.noisy_gating = noisy_gating
        self.noise_std = noise_std
        self.gate = _LearnedGate(dim, num_experts, gate_input, hidden_dim)
        self.noise: nn.Linear | None = None
        if noisy_gating:
            self.noise = nn.Linear(dim, num_experts, bias=False)
            nn.init.zeros_(self.noise.weight)

    def forward(self, x: torch.Tensor | None = None, gate_feature: torch.Tensor | None = None) -> RoutingInfo:
        features, logits = self.gate_logits(x, gate_feature)
        selection_logits = logits
        if self.noise is not None and self.training and self.noise_std > 0:
            noise_scale = F.softplus(fp32_forward(self.noise, features))
            selection_logits = logits + torch.randn_like(logits) * self.noise_std * noise_scale
        probs = selection_logits.softmax(dim=-1)
        top_probs, indices = probs.topk(self.k, dim=-1)
        weights = top_probs / top_probs.sum(dim=-1, keepdim=True)
        return RoutingInfo(
            indices=indices, weights=weights, probs=probs, logits=logits, num_experts=self.num_experts
        )


class DenseRouter(_GatedRouter):
    """Soft router: every expert is selected, weighted by ``softmax(W x)`` (k = num_experts). ``indices`` is
    ``[0, 1, ..., E-1]`` in every row so ``weights[:, i]`` is expert i's weight. ``hidden_dim`` turns the
    linear gate into MoA-CLIP's small MLP router."""

    def __init__(
        self, dim: int, num_experts: int, gate_input: GateInput = "token", hidden_dim: int | None = None
    ) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.k = num_experts
        self.gate = _LearnedGate(dim, num_experts, gate_input, hidden_dim)

    def forward(self, x: torch.Tensor | None = None, gate_feature: torch.Tensor | None = None) -> RoutingInfo:
        _, logits = self.gate_logits(x, gate_feature)
        probs = logits.softmax(dim=-1)
        indices = torch.arange(self.num_experts, device=probs.device).expand(probs.shape[0], -1)
        return RoutingInfo(
            indices=indices, weights=probs, probs=probs, logits=logits, num_experts=self.num_experts
        )


class DomainRouter(nn.Module):
    """Oracle router: sample of domain d goes to expert d with weight 1 (one row per sample). No parameters."""

    routes_per_sample = True

    def __init__(self, num_experts: int) -> None:
        super().__init__()
        if num_experts < 1:
            raise ValueError(f"DomainRouter: num_experts must be >= 1, got {num_experts}")
        self.num_experts = num_experts
        self.k = 1

    def forward(self, domain_ids: torch.Tensor) -> RoutingInfo:
        if domain_ids is None:
            raise ValueError("DomainRouter: domain routing needs domain_ids of shape (B,), got None")
        if domain_ids.ndim != 1 or domain_ids.dtype.is_floating_point:
            raise ValueError(
                f"DomainRouter: domain_ids must be a 1-D integer tensor, got shape {tuple(domain_ids.shape)} "
                f"dtype {domain_ids.dtype}"
            )
        if domain_ids.numel() > 0:
            low, high = int(domain_ids.min()), int(domain_ids.max())
            if low < 0 or high >= self.num_experts:
                raise ValueError(
                    f"DomainRouter: domain ids must be in [0, {self.num_experts - 1}] (one expert per domain), "
                    f"got values in [{low}, {high}]"
                )
        indices = domain_ids.long().unsqueeze(1)
        probs = F.one_hot(domain_ids.long(), self.num_experts).float()
        weights = torch.ones(indices.shape, dtype=torch.float32, device=domain_ids.device)
        return RoutingInfo(
            indices=indices, weights=weights, probs=probs, logits=None, num_experts=self.num_experts
        )


Router = TopKRouter | DenseRouter | DomainRouter


def route(
    router: nn.Module,
    x: torch.Tensor,
    gate_feature: torch.Tensor | None = None,
    domain_ids: torch.Tensor | None = None,
) -> RoutingInfo:
    """Call any router of this module with what it needs and return a *token-level* routing for ``x``
    (one row per token of ``x`` flattened to ``(T, D)``), expanding sample-level routings."""
    if isinstance(router, DomainRouter):
        routing = router(domain_ids)
    elif isinstance(router, TopKRouter | DenseRouter):
        routing = router(x, gate_feature=gate_feature)
    else:
        raise TypeError(f"routing.route: unsupported router type {type(router).__name__}")
    num_tokens = flatten_tokens(x).shape[0]
    if getattr(router, "routes_per_sample", False):
        tokens_per_sample = x.shape[1] if x.ndim == 3 else 1
        if routing.indices.shape[0] * tokens_per_sample != num_tokens:
            raise ValueError(
                f"routing.route: {routing.indices.shape[0]} sample-level routings cannot cover x of shape "
                f"{tuple(x.shape)} (expected x of shape (B, N, D) or (B, D) with B = number of routings)"
            )
        if tokens_per_sample > 1:
            routing = expand_routing(routing, tokens_per_sample)
    return routing
