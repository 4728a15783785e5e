"""MoA-CLIP: a frozen CLIP image encoder with a dynamic Mixture-of-Adapters in every block.

Each chosen block's FFN gets a parallel branch (Eq. 6): ``h_out = h_FFN + Adapter_0(h_in) +
sum_k alpha_k Adapter_k(h_in)`` with ``h_in`` the FFN input, a shared adapter, N domain adapters of
hidden size ``adapter_dim`` (Section 5.1's GELU adapter, ``W_out GELU(W_in h + b_in) + b_out``;
``adapter_activation="identity"``, ``adapter_bias=False``: Eq. 4's linear ``h W_in W_out``) and
``alpha = softmax(Router(h_in))`` (a small MLP). Adapter outputs start at zero, so at step 0 the model
computes exactly CLIP's image features. A head on the image embedding gives one fake logit.

Training alternates two phases (Fig. 2), ``alternation_period`` epochs (or steps) each, starting
with ``adapters``:
- ``adapters``: each sample goes through the adapter of its domain (oracle routing, weight 1) and
  the shared adapter; adapters and head are optimised;
- ``router``: the learned router mixes all adapters; only the router is optimised.
Evaluation always uses the learned router. Both phases share one AdamW: the inactive group's
gradients are dropped before clipping and the optimiser step (AdamW skips parameters without a
gradient, so they do not move, not even by weight decay); parameters keep ``requires_grad`` so
the phase switch never changes the autograd graph under DDP (which needs
``find_unused_parameters``: the router is unused in the adapter phase).

Losses (Eq. 7-12, weights from config, paper 1.0 / 1.0 / 0.5 / 0.1): BCE on the fake logit,
``attention_alignment`` (patch-to-patch attention maps of the chosen blocks, averaged over heads;
summed over domain pairs as Eq. 8 writes it, or averaged: ``attention_pair_reduction``),
``domain_prototype`` (EMA prototypes per domain, L_cac) and ``cross_domain_similarity`` (L_sim),
the last two on the image embedding (raw as Eq. 10-11 write it, or L2-normalised: see
``regularizer_embedding``). The literal forms (sum, raw) are what the paper's weights were set for.

Domains. The paper's domains each hold real and fake images ("the datasets include the real
domain"); in FF++ the real videos are shared by all four methods. A protocol expresses that with a
training domain of genuine samples named ``real_domain`` (default ``real``) beside one domain per
forgery method: each real sample is given a uniformly random forgery domain at every training
step, so every domain adapter sees its forgeries and a share of the reals, and the oracle routing
never tells the head the label. Without such a domain every training domain is used as is. N, the
number of domain adapters, is the number of forgery domains (``trainer.datamodule.domain_names``,
read in ``setup``, which rebuilds the provisional one-domain adapters the model is created with),
or ``num_domain_adapters`` when set (then it must agree with the protocol).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.choices import check_choice
from detectors.backbones.clip import build_clip
from detectors.backbones.clip_surgery import (
    AdaptedMLP,
    RecordingAttention,
    adapt_mlps,
    record_attention,
    select_layers,
    vision_blocks,
)
from detectors.base import BaseDetector
from detectors.moe import MixtureOfAdapters
from detectors.output import DetectorOutput
from losses.attention_alignment import attention_alignment_loss
from losses.cross_domain_similarity import cross_domain_similarity_loss
from losses.domain_prototypes import DomainPrototypes

log = logging.getLogger(__name__)

PHASES = ("adapters", "router")
ALTERNATION_UNITS = ("epoch", "step")
REGULARIZER_EMBEDDINGS = ("normalized", "raw")
PAIR_REDUCTIONS = ("sum", "mean")


def alternating_phase(epoch: int, step: int, period: int, unit: str = "epoch", phases: Sequence[str] = PHASES) -> str:
    """The phase active at ``epoch`` / optimiser ``step``: ``phases`` in turn, ``period`` units each."""
    if period < 1:
        raise ValueError(f"alternating_phase: period must be >= 1, got {period}")
    check_choice("alternating_phase: unit", unit, ALTERNATION_UNITS)
    counter = epoch if unit == "epoch" else step
    return phases[(counter // period) % len(phases)]


class MoAClipDetector(BaseDetector):
    """Frozen CLIP ViT + Mixture-of-Adapters + MLP head (``head_hidden_dim``; None: linear); logits ``(B,)``."""

    ddp_find_unused_parameters = True  # the router is unused in the adapter phase, the adapters in the router phase

    def __init__(
        self,
        model_name: str = "ViT-B-16",
        pretrained: object = None,
        size: str = "paper",
        tiny_patch_size: int | None = None,
        adapter_dim: int = 128,
        adapter_activation: str = "gelu",
        adapter_bias: bool = True,
        num_domain_adapters: int | None = None,
        router_hidden_dim: int | None = 128,
        adapter_layers: str | int | list[int] = "all",
        attention_layers: str | int | list[int] = (-1,),
        head_hidden_dim: int | None = None,
        prototype_momentum: float = 0.1,
        regularizer_embedding: str = "raw",
        attention_pair_reduction: str = "sum",
        alternation_period: int = 1,
        alternation_unit: str = "epoch",
        train_head_in_router_phase: bool = False,
        real_domain: str | None = "real",
        **base_kwargs: Any,
    ):
        super().__init__(**base_kwargs)
        check_choice("MoAClipDetector: regularizer_embedding", regularizer_embedding, REGULARIZER_EMBEDDINGS)
        check_choice("MoAClipDetector: attention_pair_reduction", attention_pair_reduction, PAIR_REDUCTIONS)
        alternating_phase(0, 0, alternation_period, alternation_unit)  # validates the schedule now, not at epoch 1
        self.adapter_dim = adapter_dim
        self.adapter_activation = adapter_activation
        self.adapter_bias = adapter_bias
        self.router_hidden_dim = router_hidden_dim
        self.prototype_momentum = prototype_momentum
        self.regularizer_embedding = regularizer_embedding
        self.attention_pair_reduction = attention_pair_reduction
        self.alternation_period = alternation_period
        self.alternation_unit = alternation_unit
        self.train_head_in_router_phase = train_head_in_router_phase
        self.real_domain = real_domain
        self.phase = PHASES[0]
        clip = build_clip(model_name, pretrained=pretrained, size=size, image_size=self.input_size, tiny_patch_size=tiny_patch_size)
        self.visual = clip.visual  # the text tower is not used
        self.visual.requires_grad_(False)
        depth = len(vision_blocks(self.visual))
        self.adapter_layer_indices = select_layers(adapter_layers, depth)
        self.attention_layer_indices = select_layers(attention_layers, depth)
        self.recorders: list[RecordingAttention] = record_attention(self.visual, self.attention_layer_indices)
        embed_dim = self.visual.output_dim
        if head_hidden_dim:
            self.head: nn.Module = nn.Sequential(nn.Linear(embed_dim, head_hidden_dim), nn.GELU(), nn.Linear(head_hidden_dim, 1))
        else:
            self.head = nn.Linear(embed_dim, 1)
        self.adapted: list[AdaptedMLP] = []
        self.prototypes: DomainPrototypes | None = None
        self.num_domain_adapters = 0
        # Without a configured N the adapters are provisional (one domain) until setup reads the
        # protocol's domains and rebuilds them; that only happens before any training, so nothing
        # learned is thrown away, and the model can score images before it is attached to a trainer.
        self.adapters_provisional = num_domain_adapters is None
        self.build_adapters(1 if num_domain_adapters is None else int(num_domain_adapters))

    # -- construction ------------------------------------------------------------------------------
    def build_adapters(self, num_domains: int) -> None:
        """Put a :class:`MixtureOfAdapters` with ``num_domains`` domain adapters beside each chosen
        block's FFN (replacing any there), and one EMA prototype per domain."""
        if num_domains < 1:
            raise ValueError(f"MoAClipDetector: num_domain_adapters must be >= 1, got {num_domains}")
        blocks = vision_blocks(self.visual)
        for index in self.adapter_layer_indices:
            if isinstance(blocks[index].mlp, AdaptedMLP):
                blocks[index].mlp = blocks[index].mlp.mlp
        reference = next(self.visual.parameters())

        def make_adapter(_index: int, width: int) -> MixtureOfAdapters:
            moa = MixtureOfAdapters(width, self.adapter_dim, num_domains, router="softmax", router_hidden_dim=self.router_hidden_dim,
                                    activation=self.adapter_activation, bias=self.adapter_bias)
            return moa.to(device=reference.device)

        self.adapted = adapt_mlps(self.visual, self.adapter_layer_indices, make_adapter)
        self.prototypes = DomainPrototypes(num_domains, self.visual.output_dim, momentum=self.prototype_momentum).to(reference.device)
        self.num_domain_adapters = num_domains
        # protocol domain id -> adapter id, -1 for the real domain; identity until setup reads the protocol.
        self.register_buffer("domain_lookup", torch.arange(num_domains, device=reference.device), persistent=False)

    def setup(self, stage: str) -> None:
        domain_names = list(getattr(self.trainer.datamodule, "domain_names", []) or [])
        if not domain_names:
            raise RuntimeError(
                "MoAClipDetector: the datamodule names no training domains (trainer.datamodule.domain_names is "
                "empty); MoA-CLIP needs them for its domain adapters"
            )
        forgery_domains = [name for name in domain_names if name != self.real_domain]
        if not forgery_domains:
            raise ValueError(f"MoAClipDetector: the training domains {domain_names} hold no forgery domain besides {self.real_domain!r}")
        if self.adapters_provisional:
            if len(forgery_domains) != self.num_domain_adapters:
                self.build_adapters(len(forgery_domains))
            self.adapters_provisional = False
            log.info("MoA-CLIP: %d domain adapters for %s (real domain: %s)", len(forgery_domains), forgery_domains,
                     self.real_domain if self.real_domain in domain_names else "none")
        elif len(forgery_domains) != self.num_domain_adapters:
            raise ValueError(
                f"MoAClipDetector: num_domain_adapters={self.num_domain_adapters} but the protocol trains on "
                f"{len(forgery_domains)} forgery domains {forgery_domains}; one adapter per forgery domain is needed"
            )
        adapter_ids = {name: index for index, name in enumerate(forgery_domains)}
        lookup = [adapter_ids.get(name, -1) for name in domain_names]
        self.domain_lookup = torch.tensor(lookup, dtype=torch.long, device=self.domain_lookup.device)
        super().setup(stage)

    def adapter_domain_ids(self, protocol_domain_ids: torch.Tensor) -> torch.Tensor:
        """Training domain ids of a batch -> adapter ids; each sample of the real domain gets a
        uniformly random forgery domain (drawn anew every call)."""
        if protocol_domain_ids.numel() and (int(protocol_domain_ids.min()) < 0 or int(protocol_domain_ids.max()) >= len(self.domain_lookup)):
            raise ValueError(
                f"MoAClipDetector: training domain ids must be in [0, {len(self.domain_lookup) - 1}], got "
                f"{sorted(set(protocol_domain_ids.tolist()))}"
            )
        adapter_ids = self.domain_lookup[protocol_domain_ids.long()]
        real = adapter_ids < 0
        if bool(real.any()):
            random_ids = torch.randint(0, self.num_domain_adapters, adapter_ids.shape, device=adapter_ids.device)
            adapter_ids = torch.where(real, random_ids, adapter_ids)
        return adapter_ids

    # -- parameter groups and the alternating schedule ---------------------------------------------------
    def adapter_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.adapted for p in layer.adapter.adapter_parameters()]

    def router_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.adapted for p in layer.adapter.router_parameters()]

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [
            {"params": self.adapter_parameters(), "name": "adapters"},
            {"params": self.router_parameters(), "name": "router"},
            {"params": list(self.head.parameters()), "name": "head"},
        ]

    def active_parameters(self, phase: str) -> list[nn.Parameter]:
        """What ``phase`` optimises: adapters + head, or the router (+ head if configured)."""
        check_choice("MoAClipDetector: phase", phase, PHASES)
        head = list(self.head.parameters())
        if phase == "adapters":
            return self.adapter_parameters() + head
        return self.router_parameters() + (head if self.train_head_in_router_phase else [])

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.phase = alternating_phase(self.current_epoch, self.global_step, self.alternation_period, self.alternation_unit)
        self.log("train/moa_router_phase", float(self.phase == "router"), batch_size=batch["label"].shape[0])

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Lightning calls this before gradient clipping, so the clip norm covers the active group only.
        active = {id(p) for p in self.active_parameters(self.phase)}
        for group in self.parameter_groups():
            for param in group["params"]:
                if id(param) not in active:
                    param.grad = None

    # -- forward -------------------------------------------------------------------------------------
    def _set_routing(self, domain_ids: torch.Tensor | None) -> None:
        for layer in self.adapted:
            layer.adapter.routing_mode = "learned" if domain_ids is None else "domain"
            layer.side_inputs = {} if domain_ids is None else {"domain_ids": domain_ids}

    def attention_maps(self) -> torch.Tensor:
        """``(B, M, M)`` patch-to-patch attention of the last forward, averaged over heads and the
        chosen blocks (the class token is left out: the paper's maps are over the M patches)."""
        maps = [recorder.last_attention for recorder in self.recorders]
        if any(m is None for m in maps):
            raise RuntimeError("MoAClipDetector: no attention recorded yet; run a forward first")
        return torch.stack([m.mean(dim=1)[:, 1:, 1:] for m in maps]).mean(dim=0)

    def forward(self, images: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> DetectorOutput:
        domains = self.adapter_domain_ids(batch["domain"]) if batch is not None else None
        oracle = self.training and domains is not None and self.phase == "adapters"
        self._set_routing(domains if oracle else None)
        try:
            features = self.visual(images)
        finally:
            self._set_routing(None)  # never leave domain ids behind for a later forward
        logits = self.head(features.float()).squeeze(1)
        routing = {f"visual_{i}": layer.last_routing for i, layer in zip(self.adapter_layer_indices, self.adapted, strict=True)}
        aux_losses: dict[str, torch.Tensor] = {}
        if domains is not None:
            embedding = F.normalize(features.float(), dim=-1) if self.regularizer_embedding == "normalized" else features.float()
            aux_losses = {
                "attention_alignment": attention_alignment_loss(self.attention_maps(), domains, self.attention_pair_reduction),
                "domain_prototype": self.prototypes(embedding, domains),
                "cross_domain_similarity": cross_domain_similarity_loss(embedding, domains),
            }
        return DetectorOutput(logits=logits, features=features, aux_losses=aux_losses, routing=routing)

    def on_fit_start(self) -> None:
        scheduler = self.scheduler_factory
        warmup = getattr(scheduler, "keywords", {}).get("warmup_steps", 0) if scheduler is not None else 0
        total = int(self.trainer.estimated_stepping_batches)
        if warmup and warmup >= total:
            log.warning(
                "MoA-CLIP: warmup_steps=%d >= the %d optimiser steps of this run: the learning rate never "
                "leaves the warm-up (set detector.scheduler.warmup_steps lower)", warmup, total,
            )
