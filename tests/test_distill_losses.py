"""Each distillation loss equals its formula, and the temperature limits hold."""

import math

import pytest
import torch
import torch.nn.functional as F

from shallowcert.distill import hinton_loss, logits_mse, soft_target_cross_entropy
from shallowcert.distill.targets import pack_logits_and_labels, unpack_logits_and_labels

STUDENT = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]], dtype=torch.float64)
TEACHER = torch.tensor([[0.0, 1.0, 3.0], [2.0, 0.0, -1.0]], dtype=torch.float64)
LABELS = torch.tensor([2, 0])


def softmax(row, t=1.0):
    e = [math.exp(v / t) for v in row]
    return [v / sum(e) for v in e]


def test_logits_mse_is_half_the_squared_distance_averaged_over_the_batch():
    # row 0: (1, 1, -3) -> 11; row 1: (-1.5, -1, 4) -> 19.25; half, then batch mean
    assert float(logits_mse(STUDENT, TEACHER)) == pytest.approx((11 / 2 + 19.25 / 2) / 2)


def test_temperature_loss_is_cross_entropy_with_teacher_soft_targets():
    t = 2.5
    expected = 0.0
    for s_row, t_row in zip(STUDENT.tolist(), TEACHER.tolist()):
        p_t, p_s = softmax(t_row, t), softmax(s_row)
        expected += -sum(a * math.log(b) for a, b in zip(p_t, p_s))
    assert float(soft_target_cross_entropy(STUDENT, TEACHER, t)) == pytest.approx(expected / 2, rel=1e-12)


def test_hinton_loss_mixes_scaled_kl_and_hard_label_cross_entropy():
    t, alpha = 3.0, 0.7
    kl = ce = 0.0
    for s_row, t_row, y in zip(STUDENT.tolist(), TEACHER.tolist(), LABELS.tolist()):
        p_t, p_s = softmax(t_row, t), softmax(s_row, t)
        kl += sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
        ce += -math.log(softmax(s_row)[y])
    expected = alpha * t * t * kl / 2 + (1 - alpha) * ce / 2
    got = hinton_loss(STUDENT, TEACHER, LABELS, temperature=t, alpha=alpha)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_hinton_loss_at_alpha_zero_is_plain_cross_entropy():
    got = hinton_loss(STUDENT, TEACHER, LABELS, temperature=4.0, alpha=0.0)
    assert float(got) == pytest.approx(float(F.cross_entropy(STUDENT, LABELS)), rel=1e-12)


def kl_gradient(student, teacher, t):
    z = student.clone().requires_grad_(True)
    loss = hinton_loss(z, teacher, torch.zeros(len(z), dtype=torch.long), temperature=t, alpha=1.0)
    (grad,) = torch.autograd.grad(loss, z)
    return grad


def test_high_temperature_scaled_kl_gradient_tends_to_centred_logit_difference_over_classes():
    # d/dz_s of T^2 KL = T (softmax(z_s/T) - softmax(z_t/T)) -> (c(z_s) - c(z_t)) / K, per row,
    # where c centres each row; the batch mean divides by N as logits_mse's gradient does.
    n, k = STUDENT.shape

    def centre(z):
        return z - z.mean(dim=1, keepdim=True)

    limit = (centre(STUDENT) - centre(TEACHER)) / k / n
    assert torch.allclose(kl_gradient(STUDENT, TEACHER, 1e4), limit, rtol=1e-3, atol=1e-6)
    assert not torch.allclose(kl_gradient(STUDENT, TEACHER, 1.0), limit, rtol=1e-2, atol=1e-3)
    # for zero-mean logits this is 1/K times the gradient of logits_mse
    zs, zt = centre(STUDENT), centre(TEACHER)
    z = zs.clone().requires_grad_(True)
    (mse_grad,) = torch.autograd.grad(logits_mse(z, zt), z)
    assert torch.allclose(kl_gradient(zs, zt, 1e4), mse_grad / k, rtol=1e-3, atol=1e-6)


def test_low_temperature_targets_become_the_teacher_argmax():
    hard = F.cross_entropy(STUDENT, TEACHER.argmax(dim=1))
    assert float(soft_target_cross_entropy(STUDENT, TEACHER, 0.01)) == pytest.approx(float(hard), rel=1e-9)
    assert float(soft_target_cross_entropy(STUDENT, TEACHER, 1.0)) != pytest.approx(float(hard), rel=1e-3)


@pytest.mark.parametrize("t", [0.0, -1.0, float("inf"), float("nan")])
def test_temperature_must_be_positive_and_finite(t):
    with pytest.raises(ValueError, match="temperature"):
        soft_target_cross_entropy(STUDENT, TEACHER, t)


def test_packed_targets_round_trip():
    packed = pack_logits_and_labels(TEACHER.float(), LABELS)
    assert packed.shape == (2, 4)
    logits, labels = unpack_logits_and_labels(packed)
    assert torch.equal(logits, TEACHER.float()) and torch.equal(labels, LABELS)
