"""Certified verdicts at one radius: is every point provably classified as its label?

For a point ``x`` with label ``y`` and radius ``eps`` (input units, inputs in [0, 1]) the
engine returns lower bounds ``J_j <= min_{x' in B} (f(x')_y - f(x')_j)`` over the input set
``B = {x' : ||x' - x||_inf <= eps}`` (intersected with the data domain when one is given).
The point is *certified* when ``J_j > 0`` for every ``j != y``: no input of ``B`` can change
the decision; in floating point, when every ``J_j`` exceeds the rounding margin of
:func:`shallowcert.certify.precision.rounding_margin` (a bound closer to 0 certifies nothing). The robust error bound at ``eps`` is the fraction of points that are
misclassified or not certified for their true label,

    robust_error_bound = 1 - (1/N) * #{i : argmax f(x_i) = y_i and min_j J_ij > 0},

an upper bound on the error any attack within ``eps`` can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shallowcert.checks import epsilon_per_point, inputs_and_labels, labels_within, non_negative_float
from shallowcert.bounds import METHODS, InputSet, lower_bounds, margin_spec
from shallowcert.certify.precision import dtype_name, rounding_margin
from shallowcert.device import model_device
from shallowcert.errors import UserError
from shallowcert.model_state import model_in_dtype

Domain = tuple[float, float] | None


def check_method(method: str) -> str:
    """Return ``method`` if the bound engine knows it, else raise a UserError naming the choices."""
    if method not in METHODS:
        raise UserError(f"unknown bound method '{method}' (choose from {', '.join(METHODS)})")
    return method


def margin_lower_bounds(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor, *,
                        method: str, domain: Domain, classes: int) -> torch.Tensor:
    """Lower bounds ``J`` (N, classes-1) of ``f(x')_label - f(x')_j`` over the ball of radius ``eps`` (N,)."""
    spec = margin_spec(labels, classes).to(x.dtype)
    return lower_bounds(model, InputSet(x, eps, domain=domain), spec, method=method)


@dataclass(frozen=True)
class Verdict:
    """Per-point outcome of a certification at one radius (``dtype`` = precision of the bounds)."""

    eps: float
    method: str
    domain: Domain
    dtype: str
    correct: torch.Tensor    # bool (N,): argmax f(x) == y
    certified: torch.Tensor  # bool (N,): every margin lower bound of the true label > the rounding margin

    @property
    def n(self) -> int:
        return int(self.correct.numel())

    @property
    def clean_accuracy(self) -> float:
        return float(self.correct.double().mean())

    @property
    def certified_accuracy(self) -> float:
        """Fraction of points both correctly classified and certified at ``eps``."""
        return float((self.correct & self.certified).double().mean())

    @property
    def robust_error_bound(self) -> float:
        return 1.0 - self.certified_accuracy

    def summary(self) -> dict[str, object]:
        return {"n": self.n, "eps": self.eps, "method": self.method,
                "domain": list(self.domain) if self.domain is not None else None, "dtype": self.dtype,
                "clean_accuracy": self.clean_accuracy, "certified_accuracy": self.certified_accuracy,
                "robust_error_bound": self.robust_error_bound}


def certify_points(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, method: str = "dual",
                   domain: Domain = None, dtype: torch.dtype = torch.float32,
                   batch_size: int = 256, device: torch.device | None = None) -> Verdict:
    """Certify every point of ``x`` (N, C, H, W in [0, 1]) for its label ``y`` at radius ``eps``.

    Each batch is moved to ``device`` (default: the model's device; the model is moved there
    in place); the verdict's tensors are on the CPU.
    """
    check_method(method)
    radius = non_negative_float("epsilon", eps)
    inputs_and_labels(x, y)
    if len(x) == 0:
        raise UserError("no points to certify")
    device = model_device(model) if device is None else device
    net = model_in_dtype(model.to(device), dtype)
    correct, certified = [], []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device=device, dtype=dtype)
            yb = y[start:start + batch_size].to(device)
            logits = net(xb)
            labels_within(yb, logits.shape[1])
            bounds = margin_lower_bounds(net, xb, yb, epsilon_per_point(radius, xb), method=method, domain=domain,
                                         classes=logits.shape[1])
            correct.append((logits.argmax(dim=1) == yb).cpu())
            certified.append((bounds > rounding_margin(logits).unsqueeze(1)).all(dim=1).cpu())
    return Verdict(radius, method, domain, dtype_name(dtype), torch.cat(correct), torch.cat(certified))


def robust_error_bound(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, method: str = "dual",
                       domain: Domain = None, dtype: torch.dtype = torch.float32,
                       device: torch.device | None = None) -> float:
    """Fraction of points misclassified or not certified for their true label at ``eps`` (see module doc)."""
    return certify_points(model, x, y, eps, method=method, domain=domain, dtype=dtype, device=device).robust_error_bound
