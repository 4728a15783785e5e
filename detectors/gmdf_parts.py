"""The building blocks of GM-DF (``papers/gmdf.txt``, METHODS.md section 3), each testable alone:

- :class:`DomainNorm` (DNorm, Eq. 2): LayerNorm whose scale and shift are modulated by a learnable
  domain embedding; zero-initialised modulation, so it starts as the CLIP LayerNorm it replaces.
- :func:`aggregate_expert_views` (Multi-Dataset Representation, Eq. 4-5): scaled dot-product attention
  over the N domain experts' views of a token, averaged into one view (used for unknown domains).
- :class:`GMDFBlock` (Dataset-Embedding Generator, Eq. 1-3): an open_clip residual block with DNorm
  in front of its MLP and per-domain bottleneck experts beside it, ``F(x) = F_theta(x) + Delta F^n(x)``.
- :func:`second_order_contribution` (Eq. 7): what an earlier layer's FFN output contributes to the class
  token through a later layer's attention (class-token attention x per-head value-output projection).
- :class:`DomainClassPrompts` (Eq. 9-10): learnable domain tokens (plus a wildcard) and real/fake tokens
  inside a prompt template, through the CLIP text encoder; adaptive temperatures.
- :func:`sample_patch_mask`: which patches masked image modelling hides (random or blockwise).

Resolution of the pre-norm mismatch: Eq. 3 is written for a post-norm block
(``x_ffn = DNorm(MLP(x_att)) + x_att``), CLIP blocks are pre-norm (``x + MLP(LN_2(x))``). DNorm takes the
place of ``LN_2``, initialised from its weights, so at step 0 the block is exactly CLIP's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from common.choices import check_choice
from detectors.backbones.clip_surgery import RecordingAttention, encode_text_embeddings, tokenize
from detectors.moe.experts import ExpertBank
from detectors.moe.routing import DomainRouter, flatten_tokens, route

ExpertMode = Literal["domain", "aggregate", "shared"]
EXPERT_MODES: tuple[str, ...] = get_args(ExpertMode)
MaskStrategy = Literal["random", "block"]
MASK_STRATEGIES: tuple[str, ...] = get_args(MaskStrategy)


# -- Dataset-Embedding Generator ----------------------------------------------------------------
class DomainNorm(nn.Module):
    """``DNorm(x, c) = LN(x) * (gamma0 + W_gamma c) + (beta0 + W_beta c)`` (Eq. 2).

    ``gamma0``/``beta0`` start as the replaced LayerNorm's weight and bias; ``W_gamma``/``W_beta`` start at
    zero, so the module equals that LayerNorm until training moves them. ``domain_embedding``: ``(B, k)``
    (one per sample), ``(k,)`` (the same for all) or ``None`` (plain LayerNorm with gamma0, beta0).
    """

    def __init__(self, layer_norm: nn.LayerNorm, embedding_dim: int):
        super().__init__()
        if not isinstance(layer_norm, nn.LayerNorm) or layer_norm.weight is None or layer_norm.bias is None:
            raise ValueError(f"DomainNorm: expected an affine nn.LayerNorm to replace, got {layer_norm!r}")
        if embedding_dim < 1:
            raise ValueError(f"DomainNorm: embedding_dim must be >= 1, got {embedding_dim}")
        dim = layer_norm.normalized_shape[-1]
        self.dim = dim
        self.eps = layer_norm.eps
        self.gamma0 = nn.Parameter(layer_norm.weight.detach().clone())
        self.beta0 = nn.Parameter(layer_norm.bias.detach().clone())
        self.to_gamma = nn.Linear(embedding_dim, dim, bias=False)
        self.to_beta = nn.Linear(embedding_dim, dim, bias=False)
        nn.init.zeros_(self.to_gamma.weight)
        nn.init.zeros_(self.to_beta.weight)

    def forward(self, x: torch.Tensor, domain_embedding: torch.Tensor | None = None) -> torch.Tensor:
        normed = F.layer_norm(x, (self.dim,), eps=self.eps)
        gamma, beta = self.gamma0, self.beta0
        if domain_embedding is not None:
            shift_gamma = self.to_gamma(domain_embedding.to(self.to_gamma.weight.dtype))
            shift_beta = self.to_beta(domain_embedding.to(self.to_beta.weight.dtype))
            if domain_embedding.ndim == 2:
                if domain_embedding.shape[0] != x.shape[0]:
                    raise ValueError(
                        f"DomainNorm: {domain_embedding.shape[0]} domain embeddings for a batch of {x.shape[0]}"
                    )
                view = (x.shape[0],) + (1,) * (x.ndim - 2) + (self.dim,)
                shift_gamma, shift_beta = shift_gamma.reshape(view), shift_beta.reshape(view)
            gamma, beta = gamma + shift_gamma, beta + shift_beta
        return normed * gamma.to(normed.dtype) + beta.to(normed.dtype)


def aggregate_expert_views(views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-Dataset Representation (Eq. 4-5): ``views`` ``(T, N, D)`` are the N experts' outputs for each
    of T tokens; ``Q = K = V = views``, ``softmax(Q K^T / sqrt(D)) V`` mixes them, and the mean over the N
    mixed views is the aggregated view ``(T, D)``. Parameter-free; all-zero views (zero-initialised
    experts) aggregate to zero, N identical views to that view.

    Returns ``(aggregated view (T, D), expert shares (T, N))``: the aggregated view is exactly
    ``sum_j share_j * view_j`` with ``share_j`` the attention paid to expert j averaged over the N queries
    (each row sums to 1), what the expert-usage figures show for GM-DF."""
    if views.ndim != 3:
        raise ValueError(f"aggregate_expert_views: expected views (T, N, D), got shape {tuple(views.shape)}")
    scores = views @ views.transpose(1, 2) / math.sqrt(views.shape[-1])
    attention = scores.softmax(dim=-1)
    return (attention @ views).mean(dim=1), attention.mean(dim=1)


@dataclass
class DomainContext:
    """How the domain-specific parts act in one forward pass.

    ``mode``: ``"domain"`` -- each sample uses its own domain's expert and embedding (``domain_ids``,
    training); ``"aggregate"`` -- all experts' views aggregated and the mean domain embedding (unknown
    domain: evaluation, meta-test); ``"shared"`` -- the shared CLIP path only.
    ``embedding``: the DNorm domain embedding, ``(B, k)`` or ``(k,)``; ``None`` in shared mode.
    """

    mode: ExpertMode
    domain_ids: torch.Tensor | None = None
    embedding: torch.Tensor | None = None

    def __post_init__(self) -> None:
        check_choice("DomainContext: mode", self.mode, EXPERT_MODES)
        if self.mode == "domain" and self.domain_ids is None:
            raise ValueError("DomainContext: mode='domain' needs domain_ids (B,)")


class GMDFBlock(nn.Module):
    """An open_clip ``ResidualAttentionBlock`` with GM-DF's domain parts (Eq. 1-3):

    ``x = x + attn(LN_1(x))``; ``h = DNorm(x, c_d)``; ``x = x + MLP(h) + Delta F(h)`` (``dnorm_placement="pre"``;
    ``"post"``, Eq. 3 as written: ``h = LN_2(x)``; ``x = x + DNorm(MLP(h) + Delta F(h), c_d)``), where ``Delta F`` is the
    sample's domain expert (``"domain"`` mode) or the aggregated expert view (``"aggregate"`` mode).
    Takes over the block's modules (load CLIP weights first). With ``num_domains=0`` the block keeps its
    plain ``LN_2`` and has no experts (Table 5 without Meta-MoE).

    ``record`` keeps ``last_input`` (the residual stream entering the block) and ``last_ffn_output`` (what
    the FFN branch added) for the second-order features.
    """

    def __init__(
        self,
        block: nn.Module,
        num_domains: int,
        expert_hidden_dim: int,
        embedding_dim: int,
        activation: str = "gelu",
        dnorm_placement: str = "pre",
    ):
        super().__init__()
        check_choice("GMDFBlock: dnorm_placement", dnorm_placement, ("pre", "post"))
        missing = [name for name in ("ln_1", "attn", "ln_2", "mlp") if not hasattr(block, name)]
        if missing or hasattr(block, "ln_1_kv"):
            raise ValueError(
                f"GMDFBlock: expected an open_clip self-attention ResidualAttentionBlock (ln_1, attn, ln_2, mlp), "
                f"got {type(block).__name__} (missing {missing})"
            )
        if not isinstance(block.attn, nn.MultiheadAttention | RecordingAttention):
            raise ValueError(f"GMDFBlock: unsupported attention module {type(block.attn).__name__}")
        self.ln_1 = block.ln_1
        self.attn = block.attn
        self.ls_1 = getattr(block, "ls_1", nn.Identity())
        self.mlp = block.mlp
        self.ls_2 = getattr(block, "ls_2", nn.Identity())
        self.num_domains = num_domains
        self.norm_2: nn.Module
        self.dnorm_out: DomainNorm | None = None
        if num_domains > 0:
            dim = block.ln_2.normalized_shape[-1]
            if dnorm_placement == "pre":
                self.norm_2 = DomainNorm(block.ln_2, embedding_dim)
            else:
                # Eq. 3 as written: DNorm on the FFN output, from a fresh LayerNorm (gamma0 = 1, beta0 = 0)
                self.norm_2 = block.ln_2
                self.dnorm_out = DomainNorm(nn.LayerNorm(dim, eps=block.ln_2.eps).to(block.ln_2.weight.device), embedding_dim)
            self.experts: ExpertBank | None = ExpertBank(num_domains, dim, expert_hidden_dim, activation, zero_init_output=True)
            self.domain_router: DomainRouter | None = DomainRouter(num_domains)
        else:
            self.norm_2 = block.ln_2
            self.experts = None
            self.domain_router = None
        self.record = False
        self.last_input: torch.Tensor | None = None
        self.last_ffn_output: torch.Tensor | None = None
        # (B x tokens, num_domains) expert shares of the last aggregated pass (detached; figures only)
        self.last_expert_shares: torch.Tensor | None = None

    def expert_delta(self, h: torch.Tensor, context: DomainContext) -> torch.Tensor:
        """``Delta F(h)`` for ``h`` ``(B, N, D)``: the sample's own expert, or the aggregated view of all."""
        if self.experts is None or context.mode == "shared":
            return torch.zeros_like(h)
        tokens = flatten_tokens(h)
        if context.mode == "domain":
            routing = route(self.domain_router, h, domain_ids=context.domain_ids)
            delta = self.experts(tokens, routing)
        else:
            delta, shares = aggregate_expert_views(self.experts.forward_all(tokens))
            self.last_expert_shares = shares.detach()
        return delta.reshape(h.shape)

    def forward(self, x: torch.Tensor, context: DomainContext) -> torch.Tensor:
        if self.record:
            self.last_input = x
        h = self.ln_1(x)
        x = x + self.ls_1(self.attn(h, h, h, need_weights=False)[0])
        domain_embedding = context.embedding if context.mode != "shared" else None
        if self.experts is not None and self.dnorm_out is None:
            h = self.norm_2(x, domain_embedding)
        else:
            h = self.norm_2(x)
        ffn = self.ls_2(self.mlp(h))
        if self.experts is not None and context.mode != "shared":
            ffn = ffn + self.expert_delta(h, context)
        if self.dnorm_out is not None:
            ffn = self.dnorm_out(ffn, domain_embedding)
        if self.record:
            self.last_ffn_output = ffn
        return x + ffn

    def value_weight(self) -> torch.Tensor:
        """The value projection ``W_V`` ``(D, D)`` of this block's attention (rows ordered head by head)."""
        attn = self.attn.attn if isinstance(self.attn, RecordingAttention) else self.attn
        dim = attn.embed_dim
        return attn.in_proj_weight[2 * dim :]


# -- second-order features -------------------------------------------------------------------------
def second_order_contribution(
    component: torch.Tensor,
    residual: torch.Tensor,
    ln_weight: torch.Tensor,
    ln_eps: float,
    cls_attention: torch.Tensor,
    value_weight: torch.Tensor,
    head_out_proj: torch.Tensor,
) -> torch.Tensor:
    """Eq. 7: ``Delta_so = sum_h sum_i a_{h,i} W_VO^h LN_lin(MLP^l(z_i))``, the part of a later layer's
    class-token attention output that comes from ``component`` (the earlier layer's FFN output).

    ``component``/``residual``: ``(B, N, D)``, the summand and the whole residual stream entering the
    later layer; ``ln_weight``/``ln_eps``: that layer's ``LN_1``, linearised as in Gandelsman et al. (the
    statistics of the whole stream, the summand centred and scaled by them; LN's bias and the attention
    biases belong to no summand and are left out); ``cls_attention``: ``(B, H, N)`` attention of the class
    token (query 0) to each token; ``value_weight``: ``W_V`` ``(D, D)``; ``head_out_proj``: ``(H, d_head, D)``
    (``RecordingAttention.head_out_proj()``). Returns ``(B, D)``.
    """
    heads = cls_attention.shape[1]
    dim = component.shape[-1]
    if residual.shape != component.shape or (cls_attention.shape[0], cls_attention.shape[2]) != tuple(component.shape[:2]):
        raise ValueError(
            f"second_order_contribution: component {tuple(component.shape)}, residual {tuple(residual.shape)} and "
            f"cls_attention {tuple(cls_attention.shape)} do not describe the same (B, N) tokens"
        )
    scale = torch.sqrt(residual.var(dim=-1, unbiased=False, keepdim=True) + ln_eps)
    centred = (component - component.mean(dim=-1, keepdim=True)) / scale * ln_weight
    attended = torch.einsum("bhn,bnd->bhd", cls_attention.to(centred.dtype), centred)
    values = torch.einsum("bhd,hed->bhe", attended, value_weight.reshape(heads, dim // heads, dim).to(centred.dtype))
    return torch.einsum("bhe,hed->bd", values, head_out_proj.to(centred.dtype))


# -- domain-class disentangled prompts ------------------------------------------------------------
# Eq. 9 and the seven templates of Table 6. {domain} becomes the learnable domain token(s), {class} the
# learnable real/fake token; {caption} (P3) a fixed caption (the paper's per-image BLIP captions are not
# generated by the suite: see docs/GMDF.md).
PROMPT_TEMPLATES: dict[str, str] = {
    "gmdf": "A {domain} {class} face showing forgery clues.",
    "p1": "A photo of {domain} {class} face",
    "p2": "This is a photo of {domain} {class}",
    "p3": "{caption} A photo of {domain} {class} face",
    "p4": "{domain} {class}",
    "p5": "This is how a {domain} {class} face looks like",
    "p6": "This photo contains {domain} {class} face",
    "p7": "{domain} {class} face is in this photo",
}
# P3 prepends a BLIP caption of the image; without per-image captions a fixed generic one stands in.
DEFAULT_CAPTION = "A close-up photo of a person's face."
_PLACEHOLDER = re.compile(r"\{(domain|class|caption)\}")
_PLACEHOLDER_WORD = "x"  # one BPE token in CLIP's vocabulary; its positions are located after tokenising


def resolve_template(template: str, caption: str = DEFAULT_CAPTION) -> str:
    """A template name of :data:`PROMPT_TEMPLATES` or a literal template; checks its placeholders."""
    text = PROMPT_TEMPLATES.get(template, template)
    found = _PLACEHOLDER.findall(text)
    if found.count("domain") != 1 or found.count("class") != 1:
        raise ValueError(
            f"prompt template {template!r}: expected a name of {sorted(PROMPT_TEMPLATES)} or a text with exactly one "
            f"{{domain}} and one {{class}} placeholder, got {text!r}"
        )
    if "caption" in found:
        if not caption.strip():
            raise ValueError(f"prompt template {template!r} needs prompt.caption (a caption text), got an empty one")
        text = text.replace("{caption}", caption.strip())
    if re.search(rf"\b{_PLACEHOLDER_WORD}\b", _PLACEHOLDER.sub("", text), flags=re.IGNORECASE):
        raise ValueError(f"prompt template {template!r}: the word {_PLACEHOLDER_WORD!r} is reserved as a placeholder")
    return text


class DomainClassPrompts(nn.Module):
    """``T(d, c)`` = the template with ``[e_dom^d]`` and ``[e_cls^c]`` (Eq. 9), for ``d = 0..D`` (0 = the
    wildcard, then the training domains) and ``c`` in (real, fake), encoded by the CLIP text tower.

    ``domain_tokens`` ``(D+1, n, W)``: learnable (CoOp-style N(0, init_std^2)); ``class_tokens`` ``(2, 1, W)``:
    learnable, initialised from the word embeddings of ``class_words``. ``forward(clip) -> (D+1, 2, E)``.
    ``temperatures(tau_base, phi) -> (D+1,)``: ``tau_d = tau_base + phi * ||e_dom^d||`` (Eq. 10).
    """

    def __init__(
        self,
        clip: nn.Module,
        num_domains: int,
        template: str = "gmdf",
        domain_tokens: int = 1,
        caption: str = DEFAULT_CAPTION,
        class_words: Sequence[str] = ("real", "fake"),
        init_std: float = 0.02,
    ):
        super().__init__()
        if domain_tokens < 1:
            raise ValueError(f"DomainClassPrompts: domain_tokens must be >= 1, got {domain_tokens}")
        if len(class_words) != 2:
            raise ValueError(f"DomainClassPrompts: class_words must be (real word, fake word), got {list(class_words)}")
        self.text = resolve_template(template, caption)
        self.num_domains = num_domains
        order = _PLACEHOLDER.findall(self.text)
        filled = self.text.replace("{domain}", " ".join([_PLACEHOLDER_WORD] * domain_tokens)).replace("{class}", _PLACEHOLDER_WORD)
        token_ids = tokenize([filled])[0]
        placeholder_id = int(tokenize([_PLACEHOLDER_WORD])[0, 1])
        positions = torch.nonzero(token_ids == placeholder_id).squeeze(1).tolist()
        if len(positions) != domain_tokens + 1:
            raise ValueError(f"DomainClassPrompts: could not locate the placeholders of {self.text!r} after tokenising")
        if order.index("domain") < order.index("class"):
            self.domain_positions, self.class_positions = positions[:domain_tokens], positions[domain_tokens:]
        else:
            self.class_positions, self.domain_positions = positions[:1], positions[1:]
        self.register_buffer("token_ids", token_ids, persistent=False)
        self.eot_position = int(token_ids.argmax())  # the end-of-text token has the largest id
        width = clip.token_embedding.weight.shape[1]
        self.domain_tokens = nn.Parameter(torch.randn(num_domains + 1, domain_tokens, width) * init_std)
        with torch.no_grad():
            words = [clip.token_embedding(tokenize([w])[0, 1 : int(tokenize([w])[0].argmax())]).mean(dim=0) for w in class_words]
        self.class_tokens = nn.Parameter(torch.stack(words)[:, None, :].clone())

    def forward(self, clip: nn.Module) -> torch.Tensor:
        domains, length = self.domain_tokens.shape[0], self.token_ids.shape[0]
        base = clip.token_embedding(self.token_ids)  # (L, W)
        embeddings = base.expand(domains, 2, length, base.shape[-1]).clone()
        embeddings[:, :, self.domain_positions] = self.domain_tokens[:, None].to(embeddings.dtype)
        embeddings[:, :, self.class_positions] = self.class_tokens[None].to(embeddings.dtype)
        eot = torch.full((domains * 2,), self.eot_position, device=embeddings.device, dtype=torch.long)
        encoded = encode_text_embeddings(clip, embeddings.reshape(domains * 2, length, -1), eot)
        return encoded.reshape(domains, 2, -1)

    def temperatures(self, tau_base: float, phi: float) -> torch.Tensor:
        return tau_base + phi * self.domain_tokens.float().flatten(1).norm(dim=1)


# -- masking ---------------------------------------------------------------------------------------
def masked_patch_count(num_patches: int, ratio: float) -> int:
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"mask ratio must be in (0, 1], got {ratio}")
    return min(num_patches, max(1, round(ratio * num_patches)))


def _block_mask(rows: int, cols: int, count: int, generator: torch.Generator | None, min_block: int = 4) -> torch.Tensor:
    """BEiT's blockwise masking: rectangles of random area and aspect ratio (log-uniform in [0.3, 1/0.3])
    until ``count`` patches are covered; rectangles that would overshoot are redrawn, and the last few
    patches (when no rectangle fits) are drawn at random so exactly ``count`` are masked."""
    mask = torch.zeros(rows, cols, dtype=torch.bool)

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    failures = 0
    while int(mask.sum()) < count and failures < 20:
        remaining = count - int(mask.sum())
        area = uniform(min(min_block, remaining), remaining)
        aspect = math.exp(uniform(math.log(0.3), math.log(1 / 0.3)))
        height = max(1, round(math.sqrt(area * aspect)))
        width = max(1, round(math.sqrt(area / aspect)))
        if height > rows or width > cols:
            failures += 1
            continue
        top = int(torch.randint(0, rows - height + 1, (), generator=generator))
        left = int(torch.randint(0, cols - width + 1, (), generator=generator))
        region = mask[top : top + height, left : left + width]
        added = int((~region).sum())
        if 0 < added <= remaining:
            region.fill_(True)
            failures = 0
        else:
            failures += 1
    flat = mask.flatten()
    missing = count - int(flat.sum())
    if missing > 0:
        free = torch.nonzero(~flat).squeeze(1)
        flat[free[torch.randperm(free.numel(), generator=generator)[:missing]]] = True
    return flat


def sample_patch_mask(
    batch_size: int,
    grid: tuple[int, int],
    ratio: float,
    strategy: MaskStrategy = "random",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(B, rows * cols)`` bool, True = masked, exactly ``round(ratio * N)`` (at least 1) per sample.

    ``random``: uniformly chosen patches (the paper's default, 20 %); ``block``: BEiT's blockwise masking
    (contiguous rectangles, harder to fill in from neighbours). ``generator``: a CPU generator.
    """
    check_choice("sample_patch_mask: strategy", strategy, MASK_STRATEGIES)
    rows, cols = grid
    count = masked_patch_count(rows * cols, ratio)
    if strategy == "random":
        order = torch.rand(batch_size, rows * cols, generator=generator).argsort(dim=1)
        mask = torch.zeros(batch_size, rows * cols, dtype=torch.bool)
        mask.scatter_(1, order[:, :count], True)
    else:
        mask = torch.stack([_block_mask(rows, cols, count, generator) for _ in range(batch_size)])
    return mask.to(device) if device is not None else mask
