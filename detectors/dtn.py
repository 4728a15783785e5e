"""DTN, the distilled transformer network (`papers/dtn.txt`), and the self-distillation hooks any detector
can use (DTN Table 10 distils Xception and EfficientViT the same way).

DTN = CNN backbone -> [1x1 projection to ``embed_dim``] -> noisy attention MoE -> LEVT -> GAP -> FC (2 logits).
Training losses (all weights in config): ``task_loss_weight * CE`` + ``contrastive_center`` (Ct-c on the
2-d probabilities) + ``kd`` (only when a teacher is attached: generation g >= 1 of the self-distillation
chain, ``engine/self_distill.py``). The paper's DSD loss is ``4 CE + 0.4 KD + 0.6 Ct-c``; generation 0
(the teacher) uses the same weights without KD.

The teacher is *not* a submodule: it never enters the optimiser, the checkpoint or ``train()``; it stays
frozen in eval mode (no MoE noise) and is loaded from ``teacher_checkpoint``, a checkpoint of the same
architecture (the previous generation), each time the detector is built, so a resumed run has it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.choices import check_choice
from detectors.backbones.timm_backbone import create_timm_backbone
from detectors.base import BaseDetector
from detectors.baselines import TimmDetector
from detectors.dtn_parts import (
    FeaturePerturbation,
    LocallyEnhancedViT,
    MoEMode,
    NoisyAttentionMoE,
    Perturbation,
)
from detectors.output import DetectorOutput
from detectors.weights_file import load_checkpoint_into, load_weights_file, state_dict_of
from losses.contrastive_center import ContrastiveCenterLoss
from losses.distillation import as_two_class_logits, knowledge_distillation_loss

CTC_SPACES: tuple[str, ...] = ("probabilities", "features", "none")
# How a student of the self-distillation chain starts: "fresh" (random init / pretrained backbone, the
# generation's own seed) or "teacher" (a copy of the teacher's weights). docs/CNN_METHODS.md says why
# fresh is the default.
STUDENT_INITS: tuple[str, ...] = ("fresh", "teacher")


def load_state_dict_from_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (or of a plain saved state dict) at ``path``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"teacher checkpoint {str(path)!r} does not exist (expected a .ckpt of the previous generation)")
    # weights_only=True (detectors.weights_file): the suite's checkpoints hold tensors and plain containers only.
    return state_dict_of(load_weights_file(path, "teacher checkpoint"), path, "teacher checkpoint")


class SelfDistillationMixin:
    """Deepfake self-distillation (DSD) for a :class:`BaseDetector` subclass (list it first in the bases).

    Adds ``task_loss_weight`` (DSD's 4 on CE), the contrastive-centre loss ``contrastive_center`` and, with
    a teacher attached, the distillation loss ``kd``. A detector calls :meth:`init_self_distillation` in its
    ``__init__`` and adds :meth:`distillation_losses` to its aux losses in training.
    """

    task_loss_weight: float
    contrastive_center: ContrastiveCenterLoss | None
    ctc_space: str
    kd_temperature: float
    _teacher_holder: tuple[nn.Module, ...]

    def init_self_distillation(
        self,
        make_twin: Callable[[], nn.Module],
        feature_dim: int,
        task_loss_weight: float = 1.0,
        ctc_space: str = "probabilities",
        ctc_delta: float = 1.0,
        kd_temperature: float = 4.0,
        teacher_checkpoint: str | None = None,
        student_init: str = "fresh",
    ) -> None:
        check_choice(f"{type(self).__name__}: ctc_space", ctc_space, CTC_SPACES)
        check_choice(f"{type(self).__name__}: student_init", student_init, STUDENT_INITS)
        if task_loss_weight <= 0:
            raise ValueError(f"{type(self).__name__}: task_loss_weight must be > 0, got {task_loss_weight}")
        self.task_loss_weight = float(task_loss_weight)
        self.ctc_space = ctc_space
        self.kd_temperature = float(kd_temperature)
        # Low-dimensional Ct-c (the paper's): centres in the 2-d probability space; "features": the vanilla
        # Ct-c on the pooled features (DTN Fig. 6b).
        self.contrastive_center = (
            None if ctc_space == "none" else ContrastiveCenterLoss(2, 2 if ctc_space == "probabilities" else feature_dim, ctc_delta)
        )
        self._teacher_holder = ()
        self.teacher_checkpoint = teacher_checkpoint
        if teacher_checkpoint:
            teacher = make_twin()
            path = Path(teacher_checkpoint).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"teacher checkpoint {str(path)!r} does not exist (expected a .ckpt of the previous generation)")
            # Safe (weights_only=True), strict, and refuses another detector's checkpoint by name.
            load_checkpoint_into(teacher, path, "teacher checkpoint")
            self.set_teacher(teacher)
            if student_init == "teacher":
                # The warm-start reading of "the previously trained DTN ... is also taken as the student":
                # the student starts from the teacher's weights (a resumed run then loads its own last.ckpt).
                self.load_state_dict(teacher.state_dict(), strict=True)  # type: ignore[attr-defined]

    @property
    def teacher(self) -> nn.Module | None:
        return self._teacher_holder[0] if self._teacher_holder else None

    def set_teacher(self, teacher: nn.Module | None) -> None:
        """Attach a frozen teacher (eval mode, no gradients), or detach it with ``None``."""
        if teacher is None:
            self._teacher_holder = ()
            return
        teacher.eval()
        teacher.requires_grad_(False)
        # A tuple is not registered by nn.Module: the teacher stays out of parameters(), state_dict(), train().
        self._teacher_holder = (teacher,)

    def task_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.task_loss_weight * super().task_loss(logits, labels)  # type: ignore[misc]

    def distillation_losses(
        self, logits: torch.Tensor, features: torch.Tensor, images: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Unweighted ``contrastive_center`` and (with a teacher) ``kd`` losses of one training batch."""
        losses: dict[str, torch.Tensor] = {}
        if self.contrastive_center is not None:
            points = F.softmax(as_two_class_logits(logits).float(), dim=1) if self.ctc_space == "probabilities" else features
            losses["contrastive_center"] = self.contrastive_center(points, labels.long())
        teacher = self.teacher
        if teacher is not None:
            reference = next(teacher.parameters())
            if reference.device != images.device:
                teacher.to(images.device)
            teacher.eval()
            with torch.no_grad():
                teacher_logits = teacher(images).logits
            losses["kd"] = knowledge_distillation_loss(logits, teacher_logits, self.kd_temperature)
        return losses


def _constructor_arguments(frame_locals: dict[str, Any]) -> dict[str, Any]:
    """The arguments an ``__init__`` was called with (from its ``locals()`` taken first thing)."""
    arguments = {k: v for k, v in frame_locals.items() if k not in {"self", "__class__", "base_kwargs"}}
    return {**arguments, **frame_locals.get("base_kwargs", {})}


def _twin_factory(cls: type, arguments: dict[str, Any]) -> Callable[[], nn.Module]:
    """A builder of the same architecture without teacher or pretrained download (weights come from the
    teacher checkpoint)."""
    twin_arguments = {**arguments, "teacher_checkpoint": None, "pretrained": None}
    return lambda: cls(**twin_arguments)


class DTN(SelfDistillationMixin, BaseDetector):
    """Distilled transformer network. Knobs (config names) by paper table:
    ``moe_enabled``/``levt_depth``/``multi_attention_scaling`` (Table 3 components; ``levt_depth=0`` = no LEVT),
    ``ctc_space`` and the ``aux_loss_weights`` (Table 5, Fig. 6b), ``local_connection`` (Table 6),
    ``moe_mode`` (Table 7), ``levt_depth`` (Table 9), ``moe_perturbation`` (Fig. 6a), ``backbone`` (Fig. 6c),
    ``moe_num_experts`` with ``moe_perturbation`` none / gaussian_noise (Fig. 6d).
    """

    def __init__(
        self,
        backbone: str = "vgg11",
        pretrained: object = None,
        size: str = "paper",
        backbone_out_index: int = -1,
        embed_dim: int = 512,
        moe_enabled: bool = True,
        moe_mode: MoEMode = "noisy_max",
        moe_num_experts: int = 2,
        expert_hidden_channels: int = 128,
        moe_perturbation: Perturbation = "gaussian_noise",
        noise_std: float = 0.1,
        blur_sigma: float = 1.0,
        compression_levels: int = 16,
        contrast_range: float = 0.5,
        moe_expert_scaling: bool = True,
        levt_depth: int = 6,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        local_connection: bool = True,
        multi_attention_scaling: bool = True,
        mas_init_logit: float = 0.0,
        ctc_space: str = "probabilities",
        ctc_delta: float = 1.0,
        kd_temperature: float = 4.0,
        task_loss_weight: float = 1.0,
        teacher_checkpoint: str | None = None,
        student_init: str = "fresh",
        **base_kwargs,
    ) -> None:
        arguments = _constructor_arguments(locals())
        super().__init__(**base_kwargs)
        self.backbone = create_timm_backbone(
            backbone, pretrained=pretrained, size=size, features_only=True, out_indices=(backbone_out_index,)
        )
        channels = self.backbone.feature_info.channels()[-1]
        # Backbones whose map is not embed_dim wide (EfficientNet: 448) get a 1x1 projection, the rest none.
        self.projection = nn.Identity() if channels == embed_dim else nn.Conv2d(channels, embed_dim, 1)
        self.moe = (
            NoisyAttentionMoE(
                embed_dim,
                moe_num_experts,
                expert_hidden_channels,
                moe_mode,
                FeaturePerturbation(moe_perturbation, noise_std, blur_sigma, compression_levels, contrast_range),
                expert_scaling=moe_expert_scaling,
                scaling_init_logit=mas_init_logit,
            )
            if moe_enabled
            else None
        )
        self.levt = None
        if levt_depth > 0:
            self.levt = LocallyEnhancedViT(
                embed_dim, self._feature_grid(), levt_depth, num_heads, mlp_ratio, local_connection,
                multi_attention_scaling, mas_init_logit,
            )
        self.classifier = nn.Linear(embed_dim, 2)
        self.embed_dim = embed_dim
        self.init_self_distillation(
            _twin_factory(type(self), arguments), embed_dim, task_loss_weight, ctc_space, ctc_delta,
            kd_temperature, teacher_checkpoint, student_init,
        )

    def _feature_grid(self) -> tuple[int, int]:
        """The backbone map's (H, W) at ``input_size``, from one probe forward (exact for any padding)."""
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            probe = self.backbone(torch.zeros(1, 3, self.input_size, self.input_size))[-1]
        self.backbone.train(was_training)
        return int(probe.shape[-2]), int(probe.shape[-1])

    def feature_map(self, images: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Backbone -> projection -> MoE -> LEVT: the map ``(B, embed_dim, H, W)`` before pooling."""
        features = self.projection(self.backbone(images)[-1])
        routing = {}
        if self.moe is not None:
            features, _, routing["moe"] = self.moe(features)
        if self.levt is not None:
            features = self.levt(features)
        return features, routing

    def forward(self, images: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> DetectorOutput:
        features, routing = self.feature_map(images)
        pooled = features.mean(dim=(2, 3))
        logits = self.classifier(pooled)
        aux = {} if batch is None else self.distillation_losses(logits, pooled, images, batch["label"])
        return DetectorOutput(logits=logits, features=pooled, aux_losses=aux, routing=routing)


class DistilledTimmDetector(SelfDistillationMixin, TimmDetector):
    """A timm baseline (e.g. Xception, DTN Table 10) trained with the DSD losses: CE weight, Ct-c on its
    probabilities and KD from ``teacher_checkpoint``."""

    def __init__(
        self,
        backbone: str,
        pretrained: object = None,
        size: str = "paper",
        drop_rate: float = 0.0,
        ctc_space: str = "probabilities",
        ctc_delta: float = 1.0,
        kd_temperature: float = 4.0,
        task_loss_weight: float = 1.0,
        teacher_checkpoint: str | None = None,
        student_init: str = "fresh",
        **base_kwargs,
    ) -> None:
        arguments = _constructor_arguments(locals())
        super().__init__(backbone=backbone, pretrained=pretrained, size=size, drop_rate=drop_rate, **base_kwargs)
        self.init_self_distillation(
            _twin_factory(type(self), arguments), self.backbone.num_features, task_loss_weight, ctc_space,
            ctc_delta, kd_temperature, teacher_checkpoint, student_init,
        )

    def forward(self, images: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> DetectorOutput:
        output = super().forward(images, batch)
        if batch is not None:
            output.aux_losses.update(self.distillation_losses(output.logits, output.features, images, batch["label"]))
        return output
