"""Knowledge distillation against a frozen teacher (DTN's KD term of the deepfake self-distillation loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def as_two_class_logits(logits: torch.Tensor) -> torch.Tensor:
    """``(B,)`` or ``(B, 1)`` fake logits -> ``(B, 2)`` class logits ``[0, z]`` (softmax gives
    ``[1 - sigmoid(z), sigmoid(z)]``); ``(B, 2)`` is returned as is. Lets one KD / Ct-c formula serve
    one-logit (BCE) and two-logit (CE) detectors alike."""
    if logits.ndim == 2 and logits.shape[1] == 2:
        return logits
    if logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1):
        fake = logits.reshape(-1)
        return torch.stack([torch.zeros_like(fake), fake], dim=1)
    raise ValueError(f"as_two_class_logits: expected logits (B,), (B, 1) or (B, 2), got {tuple(logits.shape)}")


def knowledge_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0
) -> torch.Tensor:
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over the batch (Hinton et al. 2015).

    The ``T^2`` factor keeps the gradient scale independent of the temperature. ``teacher_logits`` are
    detached (the teacher is never trained by this loss). Both ``(B, C)``, or one-logit ``(B,)`` (see
    :func:`as_two_class_logits`). Scalar, fp32; 0 exactly when the two distributions agree.
    """
    if temperature <= 0:
        raise ValueError(f"knowledge_distillation_loss: temperature must be > 0, got {temperature}")
    student = as_two_class_logits(student_logits).float()
    teacher = as_two_class_logits(teacher_logits).detach().float()
    if student.shape != teacher.shape:
        raise ValueError(
            f"knowledge_distillation_loss: student logits {tuple(student.shape)} and teacher logits "
            f"{tuple(teacher.shape)} differ in shape"
        )
    student_log_probs = F.log_softmax(student / temperature, dim=1)
    teacher_log_probs = F.log_softmax(teacher / temperature, dim=1)
    divergence = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    return divergence * temperature**2
