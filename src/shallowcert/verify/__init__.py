"""Complete verification of small ReLU networks (issue 10).

Public API::

    Property(lower, upper, unsafe=(Conjunction(matrix, bound), ...))
    robustness_property(center, eps, label, classes, *, domain=(0.0, 1.0)) -> Property
    verify(model, prop, *, timeout=60.0, method="crown", device=None, seed=0) -> VerificationResult
    falsify(model, prop, ...) -> Counterexample | None      # PGD over the box, re-checked

``verify`` answers ``sat`` only with a counterexample re-checked by running the network in
float64, ``unsat`` only from a bound above its rounding margin (or an MILP optimum above its
tolerance margin); otherwise ``timeout`` or ``unknown``.
"""

from shallowcert.verify.complete import VERIFY_METHODS, verify
from shallowcert.verify.falsify import Counterexample, falsify
from shallowcert.verify.property import Conjunction, Property, robustness_property
from shallowcert.verify.result import Status, VerificationResult

__all__ = ["VERIFY_METHODS", "Conjunction", "Counterexample", "Property", "Status", "VerificationResult",
           "falsify", "robustness_property", "verify"]
