"""GM-DF: generalized multi-scenario deepfake detection (``papers/gmdf.txt``; METHODS.md section 3;
docs/GMDF.md for the design decisions and the numbers).

``GMDFNetwork`` is the model: CLIP with per-domain experts and DNorm in every vision block
(Dataset-Embedding Generator), attention over the experts' views for unknown domains (Multi-Dataset
Representation), second-order features fused into the image embedding, domain-class disentangled
prompts through the CLIP text encoder, and a masked-image-modelling head.

``GMDFDetector`` trains it. With ``components.meta_moe`` and ``meta.enabled`` (the default) each step is
the Meta-Domain-Embedding Optimizer (manual optimisation):

1. the sampled domains of the batch are split into meta-train and meta-test (``meta.meta_test_domains``);
2. inner loop: ``theta_E`` (domain experts, domain embeddings, prompt vectors) takes an SGD step
   (``meta.inner_lr``) on ``meta.inner_losses`` of the meta-train samples, each through its own expert;
3. outer loop: ``L_cls + w_sis L_sis + w_mim L_mim + w_da L_da`` on the meta-test samples, seen as an
   unknown domain (aggregated expert view) with the updated ``theta_E``, updates ``theta_O`` (everything
   else that trains) with the configured optimiser; ``L_da`` aligns the feature statistics of the
   meta-train and meta-test samples. ``meta.second_order`` lets the outer gradient flow through the
   inner update (``torch.func.functional_call`` with the updated tensors);
4. the inner update of ``theta_E`` is kept.

Without meta-learning (``components.meta_moe=false`` or ``meta.enabled=false``) the base's training
step trains everything jointly on ``L_cls + sum(w * aux)``, experts (if any) by domain label.
Evaluation never sees a domain label: the aggregated expert view and the mean domain embedding.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from common.choices import check_choice, settings_from_mapping
from detectors.backbones.clip import build_clip
from detectors.backbones.clip_surgery import RecordingAttention, record_attention, vision_blocks
from detectors.base import BaseDetector
from detectors.dvae import DiscreteVAE, config_from_mapping, load_or_train_dvae
from detectors.gmdf_parts import (
    DEFAULT_CAPTION,
    MASK_STRATEGIES,
    DomainClassPrompts,
    DomainContext,
    ExpertMode,
    GMDFBlock,
    sample_patch_mask,
    second_order_contribution,
)
from detectors.meta_learning import inner_sgd_step, split_meta_batch
from detectors.output import DetectorOutput, RoutingInfo
from losses.domain_alignment import second_order_alignment_loss
from losses.image_text_contrastive import image_text_logits
from losses.masked_image_modeling import masked_pixel_loss, masked_token_loss

log = logging.getLogger(__name__)

CLASSIFIERS = ("text", "linear")
INFERENCE_PROMPTS = ("wildcard", "all", "domains")
TEMPERATURE_MODES = ("sample", "text")
SIS_WILDCARD_ROLES = ("negative", "positive", "exclude")
DOMAIN_SOURCES = ("protocol", "fake_type")
MIM_TARGETS = ("dvae", "pixels", "dvae+pixels")
SECOND_ORDER_PROPAGATIONS = ("subsequent", "next")
DNORM_PLACEMENTS = ("pre", "post")
INNER_LOSSES = ("cls", "sis")


# -- settings ------------------------------------------------------------------------------------
def _settings(cls: type, raw: Mapping | None, where: str) -> Any:
    return settings_from_mapping(cls, raw, f"detector.{where}")


@dataclass(frozen=True)
class Components:
    """Table 5's switches: DA loss, MIM, and Meta-MoE (domain experts + DNorm + meta-optimiser)."""

    domain_alignment: bool = True
    mim: bool = True
    meta_moe: bool = True


@dataclass(frozen=True)
class ExpertSettings:
    hidden_dim: int = 8  # bottleneck width of each domain expert Delta F^n
    activation: str = "gelu"
    domain_embedding_dim: int = 16  # k, the size of c_d in DNorm
    domain_embedding_init_std: float = 0.02
    # Where DNorm goes (Eq. 3): "pre" replaces the block's LN_2 before the MLP (CLIP is pre-norm, so step 0
    # equals CLIP) | "post": the paper's literal x_ffn = DNorm(MLP(x_att), c_d) + x_att, DNorm on the FFN
    # output (LN_2 stays CLIP's; step 0 no longer equals CLIP: the FFN output is layer-normalised).
    dnorm_placement: str = "pre"


@dataclass(frozen=True)
class SecondOrderSettings:
    enabled: bool = True
    # The layers l of Eq. 7-8 whose FFN (MLP) output is propagated, as 0-based block indices (open_clip's
    # resblocks[l]); the paper's "intermediate layers (8-10)" read as blocks 8, 9, 10 of 12.
    layers: Sequence[int] = (8, 9, 10)  # scale=demo: conf/scaled/detector/demo/gmdf.yaml
    # Through which later attention blocks l': "subsequent" (every l' > l, the paper's "through subsequent
    # attention blocks", Gandelsman et al.'s second-order effect) or "next" (l' = l + 1 only).
    propagation: str = "subsequent"


@dataclass(frozen=True)
class PromptSettings:
    template: str = "gmdf"  # gmdf (Eq. 9) | p1..p7 (Table 6) | a literal text with {domain} and {class}
    domain_tokens: int = 1
    caption: str = DEFAULT_CAPTION  # P3's {caption} (stands in for the paper's BLIP captions)
    tau_base: float = 0.07
    phi: float = 0.05
    temperature: str = "sample"  # sample: tau_{d_i} per sample (Eq. 11) | text: tau_j per text
    sis_wildcard: str = "negative"  # the wildcard pair in L_sis: negative (Eq. 11) | positive | exclude
    init_std: float = 0.02


@dataclass(frozen=True)
class MIMSettings:
    # dvae (visual tokens, Eq. 6) | pixels (regression) | dvae+pixels (both at once: the paper predicts the
    # visual tokens "and simultaneously" the pixels; L_mim = token CE + pixel_weight * pixel MSE)
    target: str = "dvae"
    pixel_weight: float = 1.0
    mask_ratio: float = 0.2
    strategy: str = "random"  # random | block
    normalize_pixels: bool = True  # pixel target: per-patch standardised (MAE norm_pix_loss)
    cache_dir: str | None = None  # where the trained dVAE is cached (${paths.cache_dir}/dvae)
    tokenizer: Mapping = field(default_factory=dict)  # DVAEConfig fields


@dataclass(frozen=True)
class AlignmentSettings:
    mean_weight: float = 1.0
    covariance_weight: float = 1.0


@dataclass(frozen=True)
class MetaSettings:
    enabled: bool = True
    inner_lr: float = 1e-3  # beta of Eq. 13 (plain SGD)
    inner_steps: int = 1
    second_order: bool = False
    meta_test_domains: int = 1
    inner_losses: Sequence[str] = ("cls", "sis")
    inner_max_grad_norm: float | None = None
    # MLDG's meta-train term: the outer loss also counts the inner losses (their graph already exists),
    # so theta_O learns from every sample of the batch; 0 = Eq. 15 as written (meta-test only).
    meta_train_weight: float = 0.0


# -- the network -----------------------------------------------------------------------------------
@dataclass
class NetworkOutput:
    """``embedding`` v(x) ``(B, E)``; ``logits`` ``(B, 2)`` (text classifier) or ``(B,)`` (linear head), None
    when texts were not computed; ``text`` ``(D+1, 2, E)`` prompt embeddings (row 0 = wildcard);
    ``temperatures`` ``(D+1,)``; ``mim_predictions`` ``(B, N, V or P)`` when a patch mask was given."""

    embedding: torch.Tensor
    logits: torch.Tensor | None = None
    text: torch.Tensor | None = None
    temperatures: torch.Tensor | None = None
    mim_predictions: torch.Tensor | None = None


class GMDFNetwork(nn.Module):
    """CLIP with GM-DF's parts. ``forward(images, mode, domain_ids=None, patch_mask=None, with_text=True)``.

    ``num_domains = 0`` builds no domain parts (no experts, DNorm or domain embeddings). The prompts
    always have ``prompt_domains + 1`` domain rows (wildcard + training domains).
    """

    def __init__(
        self,
        clip: nn.Module,
        num_domains: int,
        prompt_domains: int,
        experts: ExpertSettings,
        second_order_layers: Sequence[int],
        prompt: PromptSettings,
        second_order_propagation: str = "subsequent",
        classifier: str = "text",
        inference_prompts: str = "wildcard",
        mim_output_dim: int | None = None,
        train_text_encoder: bool = False,
        train_image_encoder: bool = True,
    ):
        super().__init__()
        visual = clip.visual
        self._check_visual(visual)
        self.clip_parameter_count = sum(p.numel() for p in clip.parameters())
        blocks = vision_blocks(clip)
        depth = len(blocks)
        self.second_order_layers = [int(layer) for layer in second_order_layers]
        bad = [layer for layer in self.second_order_layers if not 0 <= layer < depth - 1]
        if bad:
            raise ValueError(
                f"detector.second_order.layers: {bad} not in [0, {depth - 2}] for a {depth}-layer vision transformer "
                f"(0-based blocks whose FFN output later attention blocks propagate; the last block has none after it)"
            )
        check_choice("detector.second_order.propagation", second_order_propagation, SECOND_ORDER_PROPAGATIONS)
        # layer l -> the later attention blocks l' its FFN output is propagated through (Eq. 7)
        self.second_order_targets: dict[int, list[int]] = {
            layer: list(range(layer + 1, depth)) if second_order_propagation == "subsequent" else [layer + 1]
            for layer in self.second_order_layers
        }
        attention_layers = sorted({target for targets in self.second_order_targets.values() for target in targets})
        if attention_layers:
            record_attention(clip, attention_layers)
        for index in range(depth):
            blocks[index] = GMDFBlock(
                blocks[index], num_domains, experts.hidden_dim, experts.domain_embedding_dim, experts.activation,
                dnorm_placement=experts.dnorm_placement,
            )
        for layer in {*self.second_order_layers, *attention_layers}:
            blocks[layer].record = True
        self.clip = clip
        self.num_domains = num_domains
        self.classifier = classifier
        self.inference_prompts = inference_prompts
        self.prompt_settings = prompt
        width = visual.conv1.out_channels
        self.width = width
        self.domain_embeddings = (
            nn.Parameter(torch.randn(num_domains, experts.domain_embedding_dim) * experts.domain_embedding_init_std)
            if num_domains > 0
            else None
        )
        # alpha_l of Eq. 8 start at 0: the image embedding is CLIP's at step 0.
        self.second_order_weights = nn.Parameter(torch.zeros(len(self.second_order_layers)))
        self.prompts = DomainClassPrompts(clip, prompt_domains, prompt.template, prompt.domain_tokens, prompt.caption, init_std=prompt.init_std)
        self.head = nn.Linear(visual.output_dim, 1) if classifier == "linear" else None
        if mim_output_dim is not None:
            self.mask_token = nn.Parameter(torch.randn(width) * 0.02)
            self.mim_head: nn.Linear | None = nn.Linear(width, mim_output_dim)
        else:
            self.mask_token = None
            self.mim_head = None
        # The text tower is a frozen prompt encoder unless asked otherwise; CLIP's own logit scale is
        # replaced by GM-DF's adaptive temperatures.
        clip.logit_scale.requires_grad_(False)
        if not train_text_encoder:
            for module in (clip.transformer, clip.token_embedding, clip.ln_final):
                module.requires_grad_(False)
            for name in ("positional_embedding", "text_projection"):
                value = getattr(clip, name, None)
                if isinstance(value, nn.Parameter):
                    value.requires_grad_(False)
                elif isinstance(value, nn.Module):
                    value.requires_grad_(False)
        if not train_image_encoder:
            # CLIP's own image weights stay as loaded; GM-DF's additions inside the blocks still train.
            for name, parameter in visual.named_parameters():
                if ".experts." not in name and ".norm_2.to_" not in name and ".dnorm_out." not in name:
                    parameter.requires_grad_(False)

    @staticmethod
    def _check_visual(visual: nn.Module) -> None:
        problems = []
        if getattr(visual, "attn_pool", None) is not None:
            problems.append("attentional pooling")
        if getattr(visual, "pool_type", "tok") != "tok":
            problems.append(f"pool_type={visual.pool_type!r}")
        if not isinstance(getattr(visual, "patch_dropout", nn.Identity()), nn.Identity):
            problems.append("patch dropout")
        if getattr(visual, "proj", None) is None:
            problems.append("no output projection")
        if problems:
            raise ValueError(f"GMDFNetwork supports open_clip ViTs with class-token pooling; this one has {problems}")

    @property
    def blocks(self) -> nn.ModuleList:
        return vision_blocks(self.clip)

    @property
    def grid_size(self) -> tuple[int, int]:
        return tuple(self.clip.visual.grid_size)

    @property
    def patch_size(self) -> int:
        return int(self.clip.visual.patch_size[0])

    def context(self, mode: ExpertMode, domain_ids: torch.Tensor | None) -> DomainContext:
        if self.domain_embeddings is None or mode == "shared":
            return DomainContext("shared")
        if mode == "domain":
            return DomainContext("domain", domain_ids, self.domain_embeddings[domain_ids])
        return DomainContext("aggregate", None, self.domain_embeddings.mean(dim=0))

    def encode_image(
        self, images: torch.Tensor, context: DomainContext, patch_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(v(x) (B, E), final patch tokens after ln_post (B, N, W) or None without a patch mask)``."""
        visual = self.clip.visual
        x = visual.conv1(images).flatten(2).transpose(1, 2)  # (B, N, W) patch embeddings
        if patch_mask is not None:
            if self.mask_token is None:
                raise ValueError("GMDFNetwork: a patch mask was given but the network has no MIM parts (components.mim=false)")
            if patch_mask.shape != x.shape[:2]:
                raise ValueError(f"GMDFNetwork: patch_mask {tuple(patch_mask.shape)} does not match the {tuple(x.shape[:2])} patches")
            x = torch.where(patch_mask[..., None], self.mask_token.to(x.dtype), x)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        x = visual.ln_pre(x)
        blocks = self.blocks
        for block in blocks:
            x = block(x, context)
        fused = x[:, 0]
        for weight, layer in zip(self.second_order_weights, self.second_order_layers):
            earlier = blocks[layer]
            contribution = 0
            for target in self.second_order_targets[layer]:  # Delta_so^l: summed over the later blocks l'
                later = blocks[target]
                attention: RecordingAttention = later.attn
                contribution = contribution + second_order_contribution(
                    earlier.last_ffn_output, later.last_input, later.ln_1.weight, later.ln_1.eps,
                    attention.last_attention[:, :, 0], later.value_weight(), attention.head_out_proj(),
                )
            fused = fused + weight.to(fused.dtype) * F.layer_norm(contribution, (self.width,))
        self._release_recordings()
        embedding = visual.ln_post(fused) @ visual.proj
        tokens = visual.ln_post(x[:, 1:]) if patch_mask is not None else None
        return embedding, tokens

    def expert_routing(self) -> dict[str, RoutingInfo]:
        """The expert shares of the last aggregated pass (evaluation: an unknown domain), per block with
        experts, as routing over all N domain experts for the expert-usage figures; cleared once read."""
        routing = {}
        for index, block in enumerate(self.blocks):
            shares = getattr(block, "last_expert_shares", None)
            if shares is None:
                continue
            experts = shares.shape[1]
            indices = torch.arange(experts, device=shares.device).expand(shares.shape[0], experts)
            routing[f"visual_{index}"] = RoutingInfo(indices=indices, weights=shares, probs=shares, num_experts=experts)
            block.last_expert_shares = None
        return routing

    def _release_recordings(self) -> None:
        """Recorded activations hold on to the autograd graph; they are only needed inside one forward."""
        for block in self.blocks:
            block.last_input = block.last_ffn_output = None
            if isinstance(block.attn, RecordingAttention):
                block.attn.last_attention = block.attn.last_head_values = None

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prompt embeddings (D+1, 2, E), temperatures (D+1,))``."""
        settings = self.prompt_settings
        return self.prompts(self.clip), self.prompts.temperatures(settings.tau_base, settings.phi)

    def classify(self, embedding: torch.Tensor, text: torch.Tensor | None, temperatures: torch.Tensor | None) -> torch.Tensor:
        """Real/fake logits: the linear head ``(B,)``, or the image-text similarities ``(B, 2)`` against the
        wildcard prompts (``inference_prompts=wildcard``) or marginalised over all domain prompts (``all``) or
        over the training domains' prompts without the wildcard (``domains``)."""
        if self.head is not None:
            return self.head(embedding.float()).squeeze(1)
        if text is None or temperatures is None:
            raise ValueError("GMDFNetwork.classify: the text classifier needs the prompt embeddings")
        if self.inference_prompts == "wildcard":
            return image_text_logits(embedding, text[0], 1.0 / temperatures[0])
        if self.inference_prompts == "domains":  # the training domains' prompts only (wildcard row left out)
            text, temperatures = text[1:], temperatures[1:]
        scales = (1.0 / temperatures).repeat_interleave(2)
        logits = image_text_logits(embedding, text.reshape(-1, text.shape[-1]), scales)
        return logits.reshape(embedding.shape[0], -1, 2).logsumexp(dim=1)

    def forward(
        self,
        images: torch.Tensor,
        mode: ExpertMode = "aggregate",
        domain_ids: torch.Tensor | None = None,
        patch_mask: torch.Tensor | None = None,
        with_text: bool = True,
    ) -> NetworkOutput:
        embedding, tokens = self.encode_image(images, self.context(mode, domain_ids), patch_mask)
        text = temperatures = logits = None
        if with_text:
            text, temperatures = self.text_embeddings()
        if with_text or self.head is not None:
            logits = self.classify(embedding, text, temperatures)
        predictions = self.mim_head(tokens) if tokens is not None and self.mim_head is not None else None
        return NetworkOutput(embedding, logits, text, temperatures, predictions)

    def domain_parameter_names(self) -> list[str]:
        """theta_E of the meta-optimiser: domain experts, domain embeddings, prompt vectors."""
        return [
            name
            for name, parameter in self.named_parameters()
            if parameter.requires_grad
            and (".experts." in name or name == "domain_embeddings" or name.startswith("prompts."))
        ]

    def parameter_report(self) -> dict[str, float]:
        """Parameters added to CLIP, per part; ``inference_*`` leaves out the training-only MIM parts."""
        parts: dict[str, int] = {"experts": 0, "domain_norm": 0, "domain_embeddings": 0, "prompts": 0, "second_order": 0, "head": 0, "mim": 0}
        for name, parameter in self.named_parameters():
            count = parameter.numel()
            if ".experts." in name:
                parts["experts"] += count
            elif ".norm_2.to_" in name or ".dnorm_out." in name:
                parts["domain_norm"] += count
            elif name == "domain_embeddings":
                parts["domain_embeddings"] += count
            elif name.startswith("prompts."):
                parts["prompts"] += count
            elif name == "second_order_weights":
                parts["second_order"] += count
            elif name.startswith("head."):
                parts["head"] += count
            elif name == "mask_token" or name.startswith("mim_head."):
                parts["mim"] += count
        total = sum(p.numel() for p in self.parameters())
        added = total - self.clip_parameter_count
        inference_added = added - parts["mim"]
        report: dict[str, float] = {f"added_{k}": float(v) for k, v in parts.items()}
        report.update(
            clip=float(self.clip_parameter_count),
            added_total=float(added),
            added_percent=100.0 * added / self.clip_parameter_count,
            inference_added=float(inference_added),
            inference_added_percent=100.0 * inference_added / self.clip_parameter_count,
        )
        return report


# -- the detector ----------------------------------------------------------------------------------
class GMDFDetector(BaseDetector):
    """GM-DF on the shared base; see the module docstring and ``conf/detector/gmdf.yaml``."""

    # The outer loss sees the inner-updated copies of the domain parameters, never the parameters
    # themselves, and a batch may miss a training domain's expert.
    ddp_find_unused_parameters = True

    def __init__(
        self,
        model_name: str = "ViT-B-16",
        pretrained: object = None,
        size: str = "paper",
        tiny_patch_size: int | None = None,
        num_domains: int = 3,
        domains_from: str = "protocol",
        components: Mapping | None = None,
        experts: Mapping | None = None,
        second_order: Mapping | None = None,
        prompt: Mapping | None = None,
        classifier: str = "text",
        inference_prompts: str = "wildcard",
        mim: Mapping | None = None,
        domain_alignment: Mapping | None = None,
        meta: Mapping | None = None,
        train_text_encoder: bool = False,
        train_image_encoder: bool = True,
        gradient_clip_val: float | None = None,
        **base_kwargs,
    ):
        super().__init__(**base_kwargs)
        self.components: Components = _settings(Components, components, "components")
        self.expert_settings: ExpertSettings = _settings(ExpertSettings, experts, "experts")
        self.second_order_settings: SecondOrderSettings = _settings(SecondOrderSettings, second_order, "second_order")
        self.prompt_settings: PromptSettings = _settings(PromptSettings, prompt, "prompt")
        self.mim_settings: MIMSettings = _settings(MIMSettings, mim, "mim")
        self.alignment_settings: AlignmentSettings = _settings(AlignmentSettings, domain_alignment, "domain_alignment")
        self.meta_settings: MetaSettings = _settings(MetaSettings, meta, "meta")
        self._validate_choices(num_domains, domains_from, classifier, inference_prompts)
        if classifier == "text" and self.prompt_settings.sis_wildcard == "negative" and inference_prompts == "wildcard":
            log.warning(
                "GM-DF: prompt.sis_wildcard=negative trains the images away from the wildcard prompts, and "
                "inference_prompts=wildcard classifies with those prompts only: training and inference disagree "
                "(an ablation; the consistent pairs are sis_wildcard=positive with wildcard inference, or "
                "sis_wildcard=negative with inference_prompts=domains)"
            )
        self.size = size
        self.num_domains = int(num_domains)
        self.domains_from = domains_from
        self.gradient_clip_val = gradient_clip_val
        self.domain_names: list[str] = []

        clip = build_clip(model_name, pretrained=pretrained, size=size, image_size=self.input_size, tiny_patch_size=tiny_patch_size)
        layers = list(self.second_order_settings.layers) if self.second_order_settings.enabled else []
        mim_output_dim = None
        patch_size = int(clip.visual.patch_size[0])
        if self.components.mim:
            self.dvae_config = config_from_mapping(dict(self.mim_settings.tokenizer), "detector.mim.tokenizer")
            pixel_dim = patch_size * patch_size * 3
            mim_output_dim = {"dvae": self.dvae_config.vocab_size, "pixels": pixel_dim,
                              "dvae+pixels": self.dvae_config.vocab_size + pixel_dim}[self.mim_settings.target]
        self.network = GMDFNetwork(
            clip,
            num_domains=self.num_domains if self.components.meta_moe else 0,
            prompt_domains=self.num_domains,
            experts=self.expert_settings,
            second_order_layers=layers,
            prompt=self.prompt_settings,
            second_order_propagation=self.second_order_settings.propagation,
            classifier=classifier,
            inference_prompts=inference_prompts,
            mim_output_dim=mim_output_dim,
            train_text_encoder=train_text_encoder,
            train_image_encoder=train_image_encoder,
        )
        self.tokenizer: DiscreteVAE | None = None
        if self.components.mim and self.mim_settings.target in ("dvae", "dvae+pixels"):
            config = self.dvae_config
            self.tokenizer = DiscreteVAE(patch_size, config.vocab_size, config.hidden_channels, config.codebook_dim).requires_grad_(False)
        # Set once a trained tokenizer is loaded; saved in checkpoints with the tokenizer's weights.
        self.register_buffer("tokenizer_ready", torch.tensor(False))
        self.register_buffer("type_to_domain", torch.zeros(0, dtype=torch.long), persistent=False)
        self.automatic_optimization = not self.meta_learning

    def _validate_choices(self, num_domains: int, domains_from: str, classifier: str, inference_prompts: str) -> None:
        checks = [
            (domains_from in DOMAIN_SOURCES, f"domains_from={domains_from!r}, expected one of {DOMAIN_SOURCES}"),
            (classifier in CLASSIFIERS, f"classifier={classifier!r}, expected one of {CLASSIFIERS}"),
            (inference_prompts in INFERENCE_PROMPTS, f"inference_prompts={inference_prompts!r}, expected one of {INFERENCE_PROMPTS}"),
            (int(num_domains) >= 1, f"num_domains={num_domains!r}, expected >= 1 training domains"),
            (self.prompt_settings.temperature in TEMPERATURE_MODES, f"prompt.temperature={self.prompt_settings.temperature!r}, expected one of {TEMPERATURE_MODES}"),
            (self.prompt_settings.sis_wildcard in SIS_WILDCARD_ROLES, f"prompt.sis_wildcard={self.prompt_settings.sis_wildcard!r}, expected one of {SIS_WILDCARD_ROLES}"),
            (self.prompt_settings.tau_base > 0 and self.prompt_settings.phi >= 0, f"prompt.tau_base must be > 0 and prompt.phi >= 0, got {self.prompt_settings.tau_base}, {self.prompt_settings.phi}"),
            (self.mim_settings.target in MIM_TARGETS, f"mim.target={self.mim_settings.target!r}, expected one of {MIM_TARGETS}"),
            (self.mim_settings.pixel_weight >= 0, f"mim.pixel_weight={self.mim_settings.pixel_weight}, expected >= 0"),
            (self.expert_settings.dnorm_placement in DNORM_PLACEMENTS,
             f"experts.dnorm_placement={self.expert_settings.dnorm_placement!r}, expected one of {DNORM_PLACEMENTS}"),
            (self.second_order_settings.propagation in SECOND_ORDER_PROPAGATIONS,
             f"second_order.propagation={self.second_order_settings.propagation!r}, expected one of {SECOND_ORDER_PROPAGATIONS}"),
            (self.mim_settings.strategy in MASK_STRATEGIES, f"mim.strategy={self.mim_settings.strategy!r}, expected one of {MASK_STRATEGIES}"),
            (0.0 < self.mim_settings.mask_ratio <= 1.0, f"mim.mask_ratio={self.mim_settings.mask_ratio}, expected a value in (0, 1]"),
            (set(self.meta_settings.inner_losses) <= set(INNER_LOSSES) and len(self.meta_settings.inner_losses) > 0,
             f"meta.inner_losses={list(self.meta_settings.inner_losses)}, expected a non-empty subset of {INNER_LOSSES}"),
            (self.meta_settings.inner_steps >= 1 and self.meta_settings.inner_lr > 0,
             f"meta.inner_steps must be >= 1 and meta.inner_lr > 0, got {self.meta_settings.inner_steps}, {self.meta_settings.inner_lr}"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("GMDFDetector: " + "; ".join(problems))

    @property
    def meta_learning(self) -> bool:
        return self.components.meta_moe and self.meta_settings.enabled

    @property
    def eval_mode(self) -> ExpertMode:
        return "aggregate" if self.components.meta_moe else "shared"

    # -- parameters ----------------------------------------------------------------------------
    def domain_parameters(self) -> dict[str, nn.Parameter]:
        """theta_E (names relative to ``self.network``)."""
        named = dict(self.network.named_parameters())
        return {name: named[name] for name in self.network.domain_parameter_names()}

    def outer_parameters(self) -> dict[str, nn.Parameter]:
        """theta_O: every other trainable parameter of the network."""
        domain = set(self.network.domain_parameter_names())
        return {n: p for n, p in self.network.named_parameters() if p.requires_grad and n not in domain}

    def parameter_groups(self) -> list[nn.Parameter]:
        if self.meta_learning:
            return list(self.outer_parameters().values())  # theta_E moves by the inner SGD step only
        return [p for p in self.network.parameters() if p.requires_grad]

    # -- domains ---------------------------------------------------------------------------------
    def configure_type_domains(self, type_names: Sequence[str], fake_types: Sequence[str]) -> None:
        """``domains_from=fake_type``: fake type ``fake_types[i]`` is domain i; a real sample gets the domain
        ``video index % D`` (reals belong to no manipulation, so they are shared out among the experts)."""
        if len(fake_types) != self.num_domains:
            raise ValueError(
                f"GMDFDetector: the training data has {len(fake_types)} fake types {list(fake_types)} but "
                f"detector.num_domains={self.num_domains}; set detector.num_domains={len(fake_types)}"
            )
        missing = sorted(set(fake_types) - set(type_names))
        if missing:
            raise ValueError(f"GMDFDetector: fake types {missing} are not among the protocol's types {list(type_names)}")
        lookup = torch.full((len(type_names),), -1, dtype=torch.long)
        for domain, name in enumerate(fake_types):
            lookup[list(type_names).index(name)] = domain
        self.type_to_domain = lookup.to(self.tokenizer_ready.device)
        self.domain_names = list(fake_types)

    def training_domains(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The meta-domain id (0..D-1) of every training sample."""
        if self.domains_from == "protocol":
            domains = batch["domain"].long()
        else:
            if self.type_to_domain.numel() == 0:
                raise RuntimeError(
                    "GMDFDetector(domains_from='fake_type'): the type -> domain map is not set; train under a Trainer "
                    "with the suite's datamodule or call configure_type_domains(type_names, fake_types)"
                )
            mapped = self.type_to_domain.to(batch["type"].device)[batch["type"].long()]
            domains = torch.where(mapped < 0, batch["video"].long() % self.num_domains, mapped)
        if bool(((domains < 0) | (domains >= self.num_domains)).any()):
            raise ValueError(
                f"GMDFDetector: training domain ids {sorted(set(domains.tolist()))} outside [0, {self.num_domains - 1}]; "
                f"detector.num_domains must match the protocol's training domains"
            )
        return domains

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and getattr(datamodule, "train_table", None) is not None:
            self._check_datamodule_domains(datamodule)
            if stage == "fit" and self.tokenizer is not None and not bool(self.tokenizer_ready):
                self.prepare_tokenizer(datamodule, quick=bool(self.trainer.fast_dev_run))
        if stage == "fit" and self.tokenizer is not None and not bool(self.tokenizer_ready):
            raise RuntimeError(
                "GMDFDetector: MIM with mim.target=dvae needs the dVAE tokenizer, and no datamodule with training data "
                "was attached to train it; call prepare_tokenizer(datamodule) or set_tokenizer(model) first"
            )

    def _check_datamodule_domains(self, datamodule: Any) -> None:
        if self.domains_from == "protocol":
            names = list(datamodule.domain_names)
            if len(names) != self.num_domains:
                raise ValueError(
                    f"GMDFDetector: protocol {datamodule.protocol.name!r} trains on {len(names)} domain(s) {names} but "
                    f"detector.num_domains={self.num_domains}; set detector.num_domains={len(names)}"
                )
            self.domain_names = names
        else:
            table = datamodule.train_table
            fake_types = sorted(table.loc[table["label"] == 1, "type"].unique())
            self.configure_type_domains(list(datamodule.type_names), fake_types)

    # -- MIM tokenizer -------------------------------------------------------------------------
    def set_tokenizer(self, tokenizer: DiscreteVAE) -> None:
        if self.tokenizer is None:
            raise ValueError("GMDFDetector.set_tokenizer: this detector does not use a dVAE (components.mim / mim.target)")
        if tokenizer.patch_size != self.network.patch_size or tokenizer.vocab_size != self.tokenizer.vocab_size:
            raise ValueError(
                f"GMDFDetector.set_tokenizer: tokenizer with patch {tokenizer.patch_size} / vocab {tokenizer.vocab_size}, "
                f"expected patch {self.network.patch_size} / vocab {self.tokenizer.vocab_size}"
            )
        self.tokenizer.load_state_dict(tokenizer.state_dict())
        self.tokenizer_ready.fill_(True)

    def prepare_tokenizer(self, datamodule: Any, quick: bool = False, device: Any = None) -> tuple[Path, dict]:
        """Load the dVAE for this datamodule's training frames from the cache, or train and cache it.
        ``quick`` (used under ``fast_dev_run``, which only checks that the code runs) trains it for at most
        10 steps on 64 images; its settings differ, so it is cached apart from the real one. ``device``:
        where to train it without a trainer (``python -m engine.tokenizer``: the run's device, so the run
        finds the file; the cache is per device kind and CPU thread count, common/numerics.py)."""
        if self.tokenizer is None:
            raise ValueError("GMDFDetector.prepare_tokenizer: this detector does not use a dVAE tokenizer")
        if not self.mim_settings.cache_dir:
            raise ValueError("GMDFDetector: detector.mim.cache_dir is not set (expected e.g. ${paths.cache_dir}/dvae)")
        trainer = getattr(self, "_trainer", None)
        files = datamodule.train_table["file"].tolist()
        config = self.dvae_config
        if quick:
            config = replace(config, steps=min(config.steps, 10), max_images=min(config.max_images, 64))
            log.warning("GM-DF: fast_dev_run, so the MIM tokenizer is trained for %d steps only", config.steps)
        model, path, payload = load_or_train_dvae(
            self.mim_settings.cache_dir, files, self.input_size, self.normalization, self.network.patch_size, config,
            is_writer=trainer is None or trainer.is_global_zero,
            wait=None if trainer is None else trainer.strategy.barrier,
            device=trainer.strategy.root_device if trainer is not None else (device or "cpu"),
        )
        self.set_tokenizer(model)
        log.info("GM-DF MIM tokenizer: %s", path)
        return path, payload

    # -- losses ----------------------------------------------------------------------------------
    def _run(self, images: torch.Tensor, mode: ExpertMode, domain_ids: torch.Tensor | None = None,
             params: Mapping[str, torch.Tensor] | None = None, **kwargs: Any) -> NetworkOutput:
        """The network, with ``params`` (e.g. inner-updated theta_E) in place of its own where given."""
        if params is None:
            return self.network(images, mode, domain_ids, **kwargs)
        return functional_call(self.network, dict(params), (images, mode, domain_ids), kwargs)

    def sis_loss(self, output: NetworkOutput, labels: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        """L_sis (Eq. 11): cross-entropy of the image embedding against the (D+1) x 2 prompt embeddings with
        the true (domain, class) pair as target, scaled by the sample's temperature tau_{d_i} (or each
        text's own). ``prompt.sis_wildcard`` says what the wildcard pair (0, c) is: ``negative`` (Eq. 11 as
        printed: in the denominator, never a target), ``positive`` (a second target beside (d, c), half the
        probability mass each) or ``exclude`` (left out of the softmax)."""
        text, temperatures = output.text, output.temperatures
        flat = text.reshape(-1, text.shape[-1])
        domains, labels = domains.long(), labels.long()
        targets = (domains + 1) * 2 + labels
        if self.prompt_settings.temperature == "sample":
            logits = image_text_logits(output.embedding, flat, 1.0) / temperatures[domains + 1][:, None]
        else:
            logits = image_text_logits(output.embedding, flat, (1.0 / temperatures).repeat_interleave(2))
        wildcard = self.prompt_settings.sis_wildcard
        if wildcard == "exclude":
            return F.cross_entropy(logits[:, 2:], targets - 2)
        if wildcard == "positive":
            log_probs = logits.log_softmax(dim=1)
            rows = torch.arange(labels.shape[0], device=labels.device)
            return -(0.5 * log_probs[rows, targets] + 0.5 * log_probs[rows, labels]).mean()
        return F.cross_entropy(logits, targets)

    def mim_loss(self, images: torch.Tensor, mode: ExpertMode, domain_ids: torch.Tensor | None = None,
                 params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """L_mim (Eq. 6): mask patches, run the shared transformer, predict the masked patches' visual tokens
        (or pixels) from their final tokens."""
        settings = self.mim_settings
        mask = sample_patch_mask(images.shape[0], self.network.grid_size, settings.mask_ratio, settings.strategy, device=images.device)
        output = self._run(images, mode, domain_ids, params, patch_mask=mask, with_text=False)
        if settings.target == "pixels":
            return masked_pixel_loss(output.mim_predictions, images, mask, self.network.patch_size, settings.normalize_pixels)
        if not bool(self.tokenizer_ready):
            raise RuntimeError("GMDFDetector: the dVAE tokenizer is not trained/loaded (prepare_tokenizer or set_tokenizer)")
        targets = self.tokenizer.tokenize(images)
        if settings.target == "dvae":
            return masked_token_loss(output.mim_predictions, targets, mask)
        # dvae+pixels: one head, its first vocab_size outputs the token logits, the rest the patch pixels
        vocab = self.tokenizer.vocab_size
        token_loss = masked_token_loss(output.mim_predictions[..., :vocab], targets, mask)
        pixel_loss = masked_pixel_loss(output.mim_predictions[..., vocab:], images, mask, self.network.patch_size, settings.normalize_pixels)
        return token_loss + settings.pixel_weight * pixel_loss

    def alignment_loss(self, embeddings: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        settings = self.alignment_settings
        return second_order_alignment_loss(
            F.normalize(embeddings.float(), dim=-1), domains, settings.mean_weight, settings.covariance_weight
        )

    # -- forward (evaluation, and joint training without meta-learning) --------------------------
    def forward(self, images: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> DetectorOutput:
        if batch is None:
            output = self.network(images, self.eval_mode)
            return DetectorOutput(logits=output.logits, features=output.embedding, routing=self.network.expert_routing())
        domains = self.training_domains(batch)
        mode: ExpertMode = "domain" if self.components.meta_moe else "shared"
        output = self.network(images, mode, domains)
        aux = {"sis": self.sis_loss(output, batch["label"], domains)}
        if self.components.domain_alignment:
            aux["da"] = self.alignment_loss(output.embedding, domains)
        if self.components.mim:
            aux["mim"] = self.mim_loss(images, mode, domains)
        return DetectorOutput(logits=output.logits, features=output.embedding, aux_losses=aux)

    # -- meta-learning -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _twice_differentiable_attention(self) -> Iterator[None]:
        """Second-order meta-gradients differentiate the attention backward again; the fused
        scaled-dot-product kernels (flash, memory-efficient) have no double backward, the math one has."""
        if not self.meta_settings.second_order:
            yield
            return
        with sdpa_kernel(SDPBackend.MATH):
            yield

    def meta_inner_update(
        self, images: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], NetworkOutput]:
        """Eq. 12-13 on the meta-train samples: returns the updated theta_E (the module is not changed),
        the first inner step's losses, and its network output (for the DA loss of the outer step)."""
        settings = self.meta_settings
        fast: dict[str, torch.Tensor] = dict(self.domain_parameters())
        first_losses: dict[str, torch.Tensor] = {}
        first_output: NetworkOutput | None = None
        for step in range(settings.inner_steps):
            with self._twice_differentiable_attention():
                output = self._run(images, "domain", domains, fast)
            losses = {"cls": self.task_loss(output.logits, labels)}
            if "sis" in settings.inner_losses:
                losses["sis"] = self.sis_loss(output, labels, domains)
            inner_loss = sum(losses[name].float() for name in settings.inner_losses)
            fast = inner_sgd_step(
                inner_loss, fast, settings.inner_lr, second_order=settings.second_order,
                max_grad_norm=settings.inner_max_grad_norm, keep_differentiable=step < settings.inner_steps - 1,
            )
            if first_output is None:
                first_output, first_losses = output, losses
        return fast, first_losses, first_output

    def meta_outer_losses(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        domains: torch.Tensor,
        fast: Mapping[str, torch.Tensor],
        inner_output: NetworkOutput | None = None,
        inner_domains: torch.Tensor | None = None,
        inner_losses: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. 14 on the meta-test samples, seen as an unknown domain (aggregated experts) with the
        inner-updated theta_E ``fast``: ``(total, components)`` as the base weighs them, plus
        ``meta.meta_train_weight`` times the first inner step's losses (``inner_losses``, weighed as the outer
        loss weighs them: cls 1, sis ``aux_loss_weights.sis``) when set."""
        with self._twice_differentiable_attention():
            output = self._run(images, "aggregate", None, fast)
            mim = self.mim_loss(images, "aggregate", None, fast) if self.components.mim else None
        aux = {"sis": self.sis_loss(output, labels, domains)}
        if mim is not None:
            aux["mim"] = mim
        if self.components.domain_alignment:
            embeddings, ids = output.embedding, domains
            if inner_output is not None and inner_domains is not None:
                embeddings = torch.cat([inner_output.embedding, embeddings])
                ids = torch.cat([inner_domains, domains])
            aux["da"] = self.alignment_loss(embeddings, ids)
        total, components = self.combine_losses(DetectorOutput(logits=output.logits, aux_losses=aux), {"label": labels})
        weight = self.meta_settings.meta_train_weight
        if weight and inner_losses:
            # weighed like the outer loss: L_cls + w_sis L_sis of the meta-train pass
            meta_train = sum(self._loss_weight(name) * inner_losses[name].float() for name in self.meta_settings.inner_losses)
            components["meta_train"] = meta_train
            total = total + weight * meta_train
        return total, components

    def _loss_weight(self, name: str) -> float:
        return 1.0 if name == "cls" else float(self.aux_loss_weights[name])

    @torch.no_grad()
    def commit_domain_parameters(self, fast: Mapping[str, torch.Tensor]) -> None:
        """Keep the inner update: theta_E <- theta_E'."""
        for name, parameter in self.domain_parameters().items():
            parameter.copy_(fast[name].detach())
            parameter.grad = None

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.automatic_optimization:
            return super().training_step(batch, batch_idx)
        images, labels = self._images(batch), batch["label"]
        domains = self.training_domains(batch)
        train_rows, test_rows = split_meta_batch(domains, self.meta_settings.meta_test_domains)
        fast, inner_losses, inner_output = self.meta_inner_update(images[train_rows], labels[train_rows], domains[train_rows])
        total, components = self.meta_outer_losses(
            images[test_rows], labels[test_rows], domains[test_rows], fast, inner_output, domains[train_rows], inner_losses
        )
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(total)
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
        optimizer.step()
        self.commit_domain_parameters(fast)
        if self.scheduler_interval == "step":
            self._step_schedulers()
        components.update({f"inner_{name}": value for name, value in inner_losses.items()})
        self.log_losses(total, components, batch_size=labels.shape[0])
        return total.detach()

    def _step_schedulers(self) -> None:
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization and self.scheduler_interval == "epoch":
            self._step_schedulers()
