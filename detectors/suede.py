"""SUEDE: CLIP with Shared Unified Experts for unified physical-digital face attack detection.

In each chosen transformer block the MLP becomes ``E_shared(x) + sum_{i in topk} g_i E_i(x)``
(token-level top-k routing): the shared expert is a copy of the block's CLIP MLP and the routed
experts' output projections start at zero, so at step 0 the model computes exactly what CLIP does.
Classification is CLIP-style: class prompts (live / attack, optionally several per class) through
the text encoder, logits = scaled cosine similarity, cross-entropy; plus the ST-MoE router z-loss
and the Switch load-balancing loss, averaged over MoE layers (weights in config).

Config values varied by the paper's ablations:
- ``placement`` (Table III): ``visual_sue`` (default), ``visual_moe`` (routed experts only, no shared
  expert: each routed expert is upcycled from the CLIP MLP, so the layer still equals it at init),
  ``text_sue`` (SUE in the text encoder only), ``text_visual_sue`` (both towers);
- ``num_experts`` routed experts with ``top_k`` (Fig. 5: 2..8 experts, top-2);
- ``moe_layers``: ``all`` / ``early`` / ``middle`` / ``late`` or explicit indices (Table IV).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from common.choices import check_choice
from detectors.backbones.clip import build_clip
from detectors.backbones.clip_surgery import (
    RoutedMLP,
    mlp_activation,
    select_layers,
    text_blocks,
    vision_blocks,
)
from detectors.base import BaseDetector
from detectors.clip_text_head import ClipTextHead
from detectors.moe import ExpertBank, SharedRoutedMoE, TopKRouter, flatten_tokens, mlp_dims, route
from detectors.output import DetectorOutput, RoutingInfo
from losses.load_balance import load_balancing_loss
from losses.router_z import router_z_loss

PLACEMENTS = ("visual_sue", "visual_moe", "text_sue", "text_visual_sue")
DEFAULT_CLASS_PROMPTS = {"real": ["real face."], "fake": ["fake face."]}


class UpcycledMoE(nn.Module):
    """A vanilla top-k MoE (no shared expert) whose experts are all copies of one MLP ("sparse
    upcycling"): since the kept gate weights sum to 1, the layer equals the MLP at init. SUEDE's
    "visual MoE" row of Table III. ``forward(x) -> (out, RoutingInfo)`` like :class:`SharedRoutedMoE`."""

    def __init__(self, mlp: nn.Module, num_experts: int, k: int, activation: str):
        super().__init__()
        dim, hidden_dim = mlp_dims(mlp)
        linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
        first, last = linears[0], linears[-1]
        if first.bias is None or last.bias is None:
            raise ValueError("UpcycledMoE: the MLP's Linear layers need biases to be copied into experts")
        self.bank = ExpertBank(num_experts, dim, hidden_dim, activation=activation)
        self.router = TopKRouter(dim, num_experts, k)
        with torch.no_grad():
            # ExpertBank computes x @ w_in (D, H); nn.Linear computes x @ weight.T.
            self.bank.w_in.copy_(first.weight.T.unsqueeze(0).expand_as(self.bank.w_in))
            self.bank.b_in.copy_(first.bias.unsqueeze(0).expand_as(self.bank.b_in))
            self.bank.w_out.copy_(last.weight.T.unsqueeze(0).expand_as(self.bank.w_out))
            self.bank.b_out.copy_(last.bias.unsqueeze(0).expand_as(self.bank.b_out))
        reference = first.weight
        self.bank.to(device=reference.device, dtype=reference.dtype)
        self.router.to(device=reference.device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RoutingInfo]:
        routing = route(self.router, x)
        return self.bank(flatten_tokens(x), routing).reshape(x.shape), routing


def _moe_layer(mlp: nn.Module, shared: bool, num_experts: int, top_k: int, routed_hidden_fraction: float) -> nn.Module:
    activation = mlp_activation(mlp)
    if not shared:
        return UpcycledMoE(mlp, num_experts, top_k, activation)
    hidden = mlp_dims(mlp)[1]
    routed_hidden = max(1, round(hidden * routed_hidden_fraction))
    return SharedRoutedMoE.from_mlp(
        mlp, num_experts=num_experts, k=top_k, routed_hidden_dim=routed_hidden, activation=activation, zero_init_routed=True
    )


def mean_router_losses(routings: Sequence[RoutingInfo]) -> dict[str, torch.Tensor]:
    """``router_z`` and ``load_balance`` averaged over MoE layers (each layer's loss is already a
    mean over its tokens, so layers count equally whatever their token count)."""
    if not routings:
        raise ValueError("mean_router_losses: no routing to compute router losses from")
    z_losses = [router_z_loss(r.logits) for r in routings]
    balance_losses = [load_balancing_loss(r.probs, r.indices, r.num_experts) for r in routings]
    return {"router_z": torch.stack(z_losses).mean(), "load_balance": torch.stack(balance_losses).mean()}


class SuedeDetector(BaseDetector):
    """CLIP ViT + SUE layers in the chosen blocks + text-prompt classifier; logits ``(B, 2)`` =
    (real, fake) class logits, so ``softmax[:, 1]`` is P(fake/attack).

    Trainable parts: MoE layers (shared experts, routed experts, routers) and learnable prompt
    context always; the rest of the visual tower with ``train_visual_backbone``; the rest of the
    text tower with ``train_text_backbone``. ``new_parameter_lr`` gives the parameters that start
    from scratch (routers, routed experts, prompt context) their own learning rate (None: the
    optimiser's).
    """

    ddp_find_unused_parameters = True  # an expert that no token of a batch was routed to has no gradient

    def __init__(
        self,
        model_name: str = "ViT-B-16",
        pretrained: object = None,
        size: str = "paper",
        tiny_patch_size: int | None = None,
        placement: str = "visual_sue",
        moe_layers: str | int | list[int] = "all",
        num_experts: int = 4,
        top_k: int = 2,
        routed_hidden_fraction: float = 1.0,
        class_prompts: Mapping[str, Sequence[str]] | None = None,
        prompt_context: str = "a photo of a",
        learnable_context: bool = False,
        train_visual_backbone: bool = True,
        train_text_backbone: bool = False,
        new_parameter_lr: float | None = None,
        **base_kwargs: Any,
    ):
        super().__init__(**base_kwargs)
        check_choice("SuedeDetector: placement", placement, PLACEMENTS)
        if not 0 < routed_hidden_fraction:
            raise ValueError(f"SuedeDetector: routed_hidden_fraction must be > 0, got {routed_hidden_fraction}")
        class_prompts = {str(k): list(v) for k, v in (class_prompts or DEFAULT_CLASS_PROMPTS).items()}
        if list(class_prompts) != ["real", "fake"]:
            raise ValueError(
                f"SuedeDetector: class_prompts must have exactly the classes ['real', 'fake'] in that order "
                f"(logit 1 is P(fake)), got {list(class_prompts)}"
            )
        self.placement = placement
        self.new_parameter_lr = new_parameter_lr
        clip = build_clip(model_name, pretrained=pretrained, size=size, image_size=self.input_size, tiny_patch_size=tiny_patch_size)
        towers = {"visual": vision_blocks(clip), "text": text_blocks(clip)}
        placed = {"visual_sue": ["visual"], "visual_moe": ["visual"], "text_sue": ["text"], "text_visual_sue": ["visual", "text"]}[placement]
        # A plain dict, not a ModuleDict: the layers are registered once, inside their blocks, so the
        # checkpoint holds each weight under one name.
        self.moe_layers: dict[str, RoutedMLP] = {}
        for tower in placed:
            blocks = towers[tower]
            for index in select_layers(moe_layers, len(blocks)):
                layer = _moe_layer(blocks[index].mlp, placement != "visual_moe", num_experts, top_k, routed_hidden_fraction)
                blocks[index].mlp = RoutedMLP(layer)
                self.moe_layers[f"{tower}_{index}"] = blocks[index].mlp
        self.visual = clip.visual
        self.text_head = ClipTextHead(clip, class_prompts, context=prompt_context, learnable_context=learnable_context)
        self.visual.requires_grad_(train_visual_backbone)
        for name, module in self.text_head.named_children():
            if name != "prompts":
                module.requires_grad_(train_text_backbone)
        for param in (self.text_head.positional_embedding, self.text_head.text_projection):
            if isinstance(param, nn.Parameter):
                param.requires_grad_(train_text_backbone)
        for routed in self.moe_layers.values():
            routed.requires_grad_(True)
        # The text path needs a graph only when something in it trains.
        self._text_trains = any(p.requires_grad for p in self.text_head.parameters())

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters that do not come from the CLIP checkpoint: routers, SUE routed experts (zero
        output at init; upcycled experts are copies of the CLIP MLP, so not new), prompt context."""
        fresh = list(self.text_head.prompts.parameters())
        for routed in self.moe_layers.values():
            layer = routed.layer
            fresh.extend(layer.router.parameters())
            if isinstance(layer, SharedRoutedMoE):
                fresh.extend(layer.bank.parameters())
        return fresh

    def parameter_groups(self) -> list[dict[str, Any]]:
        fresh_ids = {id(p) for p in self.new_parameters()}
        fresh = [p for p in self.parameters() if p.requires_grad and id(p) in fresh_ids]
        pretrained = [p for p in self.parameters() if p.requires_grad and id(p) not in fresh_ids]
        groups = [{"params": pretrained, "name": "clip"}] if pretrained else []
        new_group: dict[str, Any] = {"params": fresh, "name": "new"}
        if self.new_parameter_lr is not None:
            new_group["lr"] = self.new_parameter_lr
        return [*groups, new_group]

    def routings(self) -> dict[str, RoutingInfo]:
        """The last routing of every MoE layer, keyed ``visual_<block>`` / ``text_<block>``."""
        routings = {}
        for name, routed in self.moe_layers.items():
            if routed.last_routing is None:
                raise RuntimeError(f"SuedeDetector: MoE layer {name} has not routed anything yet")
            routings[name] = routed.last_routing
        return routings

    def forward(self, images: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> DetectorOutput:
        features = self.visual(images)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self._text_trains):
            text_features = self.text_head.text_features()
        logits = self.text_head.class_logits(self.text_head.prompt_logits(features, text_features))
        routing = self.routings()
        return DetectorOutput(logits=logits, features=features, aux_losses=mean_router_losses(list(routing.values())), routing=routing)
