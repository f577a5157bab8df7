"""The CROWN-IBP robust loss and its gradient equal a straightforward dense implementation.

The reference writes every layer as a dense matrix (a convolution's from its response to the
unit inputs), bounds every ReLU's input by interval arithmetic, and back-substitutes the margin
rows with CROWN's relaxation (lower slope 1 if ``u >= -l`` else 0, upper line the chord)
using nothing but matrix products and plain autograd. The engine's patches, chunking and
hand-written gradients must give the same loss and parameter gradients (float64, 1e-6).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bounds_support import random_convnet, random_mlp
from shallowcert.robust.loss import robust_loss


def _dense_layers(model: nn.Sequential, input_shape: tuple[int, ...]) -> list[tuple[str, torch.Tensor | None,
                                                                                      torch.Tensor | None]]:
    """``("affine", W, b)`` (``W`` (out, in) on flattened activations) or ``("relu", None, None)``."""
    layers, shape = [], input_shape
    for layer in model:
        if isinstance(layer, nn.ReLU):
            layers.append(("relu", None, None))
            continue
        if isinstance(layer, nn.Flatten):
            shape = (int(torch.Size(shape).numel()),)
            continue
        size = int(torch.Size(shape).numel())
        basis = torch.eye(size, dtype=torch.float64).reshape(size, *shape)
        zero = torch.zeros(1, *shape, dtype=torch.float64)
        bias = layer(zero).flatten()
        matrix = (layer(basis).flatten(1) - bias).T
        layers.append(("affine", matrix, bias))
        shape = tuple(layer(zero).shape[1:])
    return layers


def reference_loss(model: nn.Sequential, x: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    layers = _dense_layers(model, tuple(x.shape[1:]))
    lower, upper = (x - eps).flatten(1), (x + eps).flatten(1)
    bounds = []  # (l, u) of every ReLU's input
    for kind, matrix, bias in layers:
        if kind == "affine":
            mid, rad = (upper + lower) / 2, (upper - lower) / 2
            mid, rad = mid @ matrix.T + bias, rad @ matrix.abs().T
            lower, upper = mid - rad, mid + rad
        else:
            bounds.append((lower, upper))
            lower, upper = lower.clamp(min=0), upper.clamp(min=0)
    classes = layers[-1][1].shape[0]
    eye = torch.eye(classes, dtype=torch.float64)
    spec = torch.stack([eye[y] - eye[[j for j in range(classes) if j != y]] for y in labels.tolist()])
    lam, offset = spec, torch.zeros(spec.shape[:2], dtype=torch.float64)
    relu = len(bounds)
    for kind, matrix, bias in reversed(layers):
        if kind == "affine":
            offset = offset + lam @ bias
            lam = lam @ matrix
            continue
        relu -= 1
        low, high = bounds[relu]
        unstable = (low < 0) & (high > 0)
        active = (low >= 0).to(torch.float64)
        chord = torch.where(unstable, high / torch.where(unstable, high - low, 1.0), active)
        intercept = torch.where(unstable, -chord * low, 0.0)
        slope = torch.where(unstable, (high >= -low).to(torch.float64), active)
        positive, negative = lam.clamp(min=0), lam.clamp(max=0)
        offset = offset + (negative * intercept.unsqueeze(1)).sum(-1)
        lam = positive * slope.unsqueeze(1) + negative * chord.unsqueeze(1)
    flat = x.flatten(1).unsqueeze(1)
    margins = offset + (lam * flat).sum(-1) - eps * lam.abs().sum(-1)
    logits = torch.zeros(len(x), classes, dtype=torch.float64)
    others = torch.ones(len(x), classes, dtype=torch.bool)
    others[torch.arange(len(x)), labels] = False
    return F.cross_entropy(logits.masked_scatter(others, -margins), labels)


CASES = {
    "mlp": (lambda: random_mlp([12, 20, 16, 5], seed=0), (6, 12), 0.1),
    "convnet": (lambda: random_convnet(seed=1, classes=5), (5, 1, 8, 8), 0.05),
    "deeper mlp": (lambda: random_mlp([10, 30, 30, 30, 4], seed=2), (7, 10), 0.2),
}


@pytest.mark.parametrize("name", CASES)
def test_crown_ibp_loss_and_gradient_equal_the_reference(name: str) -> None:
    make, shape, eps = CASES[name]
    model = make()
    generator = torch.Generator().manual_seed(7)
    x = torch.rand(*shape, dtype=torch.float64, generator=generator)
    labels = torch.randint(0, model[-1].out_features, (shape[0],), generator=generator)
    ours = robust_loss(model, x, labels, eps, method="crown-ibp").loss
    our_grads = torch.autograd.grad(ours, list(model.parameters()))
    reference = reference_loss(model, x, labels, eps)
    reference_grads = torch.autograd.grad(reference, list(model.parameters()))
    assert abs(float(ours.detach()) - float(reference.detach())) < 1e-6 * max(1.0, abs(float(reference.detach())))
    for mine, theirs in zip(our_grads, reference_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-8)
