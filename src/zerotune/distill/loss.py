"""The distillation loss of Hinton et al. (2015): soft targets at temperature T mixed with the hard labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossTerms:
    """A batch's loss and its two parts (the parts detached, for logging)."""

    total: torch.Tensor
    soft: torch.Tensor  # T^2 * KL(teacher_T || student_T), before the alpha weight
    hard: torch.Tensor  # the task's own loss on the labels, before the (1 - alpha) weight


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch.

    The T² keeps the soft term's gradients the same size whatever T is (Hinton et al., section 2).

    Args:
        student: student logits (B, C).
        teacher: teacher logits (B, C).
        temperature: T > 0.
    """
    log_p_student = F.log_softmax(student.float() / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher.float() / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature ** 2


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, hard: torch.Tensor, temperature: float,
                 alpha: float) -> LossTerms:
    """alpha · T² · KL(teacher_T ‖ student_T) + (1 − alpha) · hard.

    Args:
        student: student logits (B, C).
        teacher: teacher logits (B, C), no gradient needed.
        hard: the hard-label loss of the batch (a scalar with its graph), e.g. cross-entropy.
        temperature: T.
        alpha: weight of the soft term, in [0, 1].
    """
    soft = soft_loss(student, teacher.detach(), temperature)
    total = alpha * soft + (1.0 - alpha) * hard
    return LossTerms(total, soft.detach(), hard.detach())
