"""CLIP text-branch classifier: class prompts through the CLIP text encoder -> scaled cosine logits.

Shared by the CLIP-family methods (SUEDE, GM-DF). A class is described by one or more prompts
``"{context} {text}"`` (e.g. ``"a photo of a" + "real face."``); the image embedding is compared to
every prompt's text embedding with CLIP's scaled cosine, and a class logit is the log-sum-exp of its
prompts' logits, so ``softmax`` over classes is exactly the summed probability of each class's
prompts (one prompt per class: the plain CLIP zero-shot logit).

With ``learnable_context`` the context tokens become shared learnable vectors (CoOp), initialised
from the context words' embeddings, so at step 0 the text features equal CLIP's for the full prompt.
The head takes over the text tower of the CLIP it is built from (token embedding, transformer,
final norm, projection, logit scale); the detector keeps only ``clip.visual``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn

from detectors.backbones.clip_surgery import encode_text_embeddings, tokenize
from losses.image_text_contrastive import image_text_logits

TEXT_TOWER_MODULES = ("token_embedding", "transformer", "ln_final")


class PromptEmbeddings(nn.Module):
    """Token embeddings of the prompts ``"{context} {text}"`` with the context tokens spliced in from
    ``context_vectors`` (a learnable parameter, or a buffer when ``learnable`` is off).

    ``forward() -> (P, L, D)`` embeddings for :func:`encode_text_embeddings`; ``eot_positions`` (P,).
    """

    tokens: torch.Tensor
    eot_positions: torch.Tensor

    def __init__(self, token_embedding: nn.Embedding, texts: Sequence[str], context: str, learnable: bool, context_length: int = 77):
        super().__init__()
        if not texts:
            raise ValueError("PromptEmbeddings: no prompt texts given")
        context = context.strip()
        tokens = tokenize([f"{context} {text}".strip() for text in texts], context_length)
        context_tokens = tokenize([context], context_length)[0] if context else torch.zeros(0, dtype=torch.long)
        # tokenize gives [SOT, words..., EOT, 0...]; EOT has the largest id, so argmax finds it.
        self.num_context = int(context_tokens.argmax()) - 1 if context else 0
        context_ids = context_tokens[1 : 1 + self.num_context]
        if self.num_context and not bool((tokens[:, 1 : 1 + self.num_context] == context_ids).all()):
            raise ValueError(
                f"PromptEmbeddings: the context {context!r} does not tokenize to the same tokens at the start "
                f"of every prompt {list(texts)}; end the context at a word boundary"
            )
        if bool((tokens[:, -1] != 0).any()):
            raise ValueError(f"PromptEmbeddings: a prompt is longer than the context length {context_length}: {list(texts)}")
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("eot_positions", tokens.argmax(dim=-1), persistent=False)
        with torch.no_grad():
            initial_context = token_embedding(context_ids.to(token_embedding.weight.device)).detach().clone()
        if learnable:
            self.context_vectors = nn.Parameter(initial_context)
        else:
            self.register_buffer("context_vectors", initial_context)

    def forward(self, token_embedding: nn.Embedding) -> torch.Tensor:
        # The word embeddings are looked up every call (not cached): a trainable text tower trains them.
        embeddings = token_embedding(self.tokens)
        if not self.num_context:
            return embeddings
        context = self.context_vectors.to(embeddings.dtype).unsqueeze(0).expand(embeddings.shape[0], -1, -1)
        return torch.cat([embeddings[:, :1], context, embeddings[:, 1 + self.num_context :]], dim=1)


class ClipTextHead(nn.Module):
    """Class logits ``(B, C)`` of image embeddings against class prompts through the CLIP text tower.

    ``class_prompts``: class name -> prompt texts (the order of the mapping is the class order;
    e.g. ``{"real": ["real face."], "fake": ["fake face.", "spoof face."]}``). ``context`` is put in
    front of every text. ``train_logit_scale`` lets the temperature learn (CLIP's, kept fixed by
    default). ``forward(image_features)`` returns class logits; ``prompt_logits`` the per-prompt ones.
    """

    prompt_class: torch.Tensor
    class_mask: torch.Tensor

    def __init__(
        self,
        clip: nn.Module,
        class_prompts: Mapping[str, Sequence[str]],
        context: str = "a photo of a",
        learnable_context: bool = False,
        train_logit_scale: bool = False,
    ):
        super().__init__()
        if not class_prompts:
            raise ValueError("ClipTextHead: class_prompts is empty; give class name -> list of prompt texts")
        self.class_names = [str(name) for name in class_prompts]
        texts, prompt_class = [], []
        for index, (name, prompts) in enumerate(class_prompts.items()):
            if isinstance(prompts, str) or not prompts:
                raise ValueError(f"ClipTextHead: class {name!r} needs a non-empty list of prompt texts, got {prompts!r}")
            texts.extend(str(p) for p in prompts)
            prompt_class.extend([index] * len(prompts))
        self.prompt_texts = [f"{context.strip()} {t}".strip() for t in texts]
        for name in TEXT_TOWER_MODULES:
            setattr(self, name, getattr(clip, name))
        self.positional_embedding = clip.positional_embedding
        self.text_projection = clip.text_projection
        self.register_buffer("attn_mask", clip.attn_mask, persistent=False)
        self.logit_scale = clip.logit_scale
        self.logit_scale.requires_grad_(train_logit_scale)
        self.prompts = PromptEmbeddings(self.token_embedding, texts, context, learnable_context, clip.context_length)
        self.register_buffer("prompt_class", torch.tensor(prompt_class), persistent=False)
        membership = torch.nn.functional.one_hot(self.prompt_class, len(self.class_names)).T.bool()
        self.register_buffer("class_mask", membership, persistent=False)  # (C, P)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def text_features(self) -> torch.Tensor:
        """``(P, E)`` unnormalised text embeddings of every prompt, in prompt order."""
        # encode_text_embeddings reads the text-tower attributes this head took over from the CLIP.
        return encode_text_embeddings(self, self.prompts(self.token_embedding), self.prompts.eot_positions)

    def prompt_logits(self, image_features: torch.Tensor, text_features: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, P)``: ``exp(logit_scale) * cos(image, prompt)`` (fp32)."""
        text = self.text_features() if text_features is None else text_features
        return image_text_logits(image_features, text, self.logit_scale.exp())

    def class_logits(self, prompt_logits: torch.Tensor) -> torch.Tensor:
        """``(B, P) -> (B, C)``: log-sum-exp of each class's prompt logits."""
        masked = prompt_logits.unsqueeze(1).masked_fill(~self.class_mask, float("-inf"))
        return masked.logsumexp(dim=-1)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.class_logits(self.prompt_logits(image_features))
