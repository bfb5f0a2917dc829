"""The distillation loss against a NumPy reference: T² scaling of the KL term and the alpha mix."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zerotune.distill.loss import distill_loss, soft_loss


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _reference(student, teacher, labels, t, alpha):
    """Hinton et al. by hand: alpha * T^2 * mean_i sum_c p_t log(p_t / p_s) + (1 - alpha) * CE."""
    p_s, p_t = _softmax(student / t), _softmax(teacher / t)
    kl = np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))
    ce = np.mean(-np.log(_softmax(student)[np.arange(len(labels)), labels]))
    return alpha * t * t * kl + (1 - alpha) * ce, t * t * kl, ce


@pytest.mark.parametrize("t,alpha", [(1.0, 0.5), (4.0, 0.9), (2.0, 0.0), (8.0, 1.0)])
def test_loss_matches_hand_computed_reference(t, alpha):
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(6, 5)) * 3, rng.normal(size=(6, 5)) * 3
    labels = rng.integers(0, 5, size=6)
    s = torch.tensor(student, dtype=torch.float64)
    hard = F.cross_entropy(s, torch.tensor(labels))
    terms = distill_loss(s, torch.tensor(teacher), hard, t, alpha)
    want_total, want_soft, want_hard = _reference(student, teacher, labels, t, alpha)
    assert float(terms.total) == pytest.approx(want_total, rel=1e-5)
    assert float(terms.soft) == pytest.approx(want_soft, rel=1e-5)
    assert float(terms.hard) == pytest.approx(want_hard, rel=1e-9)


def test_soft_term_is_zero_when_student_matches_teacher_and_scales_with_t_squared():
    z = torch.randn(4, 10)
    assert float(soft_loss(z, z.clone(), 3.0)) == pytest.approx(0.0, abs=1e-6)
    # At high T the KL falls as 1/T^2 (Hinton et al., section 2.1): T^2 * KL tends to a constant,
    # so the soft gradients keep their size whatever T is.
    s, t = torch.randn(8, 10), torch.randn(8, 10)
    s, t = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    high = [float(soft_loss(s, t, temp)) for temp in (50.0, 100.0)]
    assert high[0] == pytest.approx(high[1], rel=0.01)
    assert high[0] == pytest.approx(float(((s - t) ** 2).mean(1).mean()) / 2, rel=0.02)


def test_gradient_flows_to_student_only():
    s = torch.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2])
    distill_loss(s, t, F.cross_entropy(s, y), 2.0, 0.7).total.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
