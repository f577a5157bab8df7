"""Complete verification of small ReLU networks (issue 10; being built).

Public API (to be filled)::

    Property(lower, upper, unsafe=(Conjunction(matrix, bound), ...))
    robustness_property(center, eps, label, classes, domain=(0.0, 1.0)) -> Property
    verify(model, prop, *, timeout=60.0, method="crown", device=None) -> VerificationResult
    exact_radius(model, x, label, *, time_limit=..., ...) -> ExactRadius
"""

from shallowcert.verify.property import Conjunction, Property
from shallowcert.verify.result import Status, VerificationResult

__all__ = ["Conjunction", "Property", "Status", "VerificationResult"]
