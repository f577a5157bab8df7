"""Complete verification of small ReLU networks.

Public API::

    Property(lower, upper, unsafe=(Conjunction(matrix, bound), ...))
    robustness_property(center, eps, label, classes, *, domain=(0.0, 1.0)) -> Property
    verify(model, prop, *, timeout=60.0, method="alpha-crown", device=None, seed=0, batch=256,
           max_domains=2_000_000, milp_unstable=MILP_UNSTABLE) -> VerificationResult
    falsify(model, prop, *, steps=50, restarts=16, step=0.25, starts=None, seed=0,
            deadline=None) -> Counterexample | None           # PGD over the box, re-checked
    exact_radius(model, x, labels, ExactSettings(time_limit, rtol=0.01, ...), *, device=None)
        -> ExactRadius                                        # per-point brackets of the robust radius

``verify`` answers ``sat`` only with a counterexample re-checked by running the network in
float64, ``unsat`` only from a bound above its rounding margin (or an MILP optimum above its
tolerance margin); otherwise ``timeout`` or ``unknown``.
"""

from shallowcert.verify.complete import VERIFY_METHODS, verify
from shallowcert.verify.exact import ExactRadius, ExactSettings, exact_radius
from shallowcert.verify.falsify import Counterexample, falsify
from shallowcert.verify.property import Conjunction, Property, robustness_property
from shallowcert.verify.result import Status, VerificationResult

__all__ = ["VERIFY_METHODS", "Conjunction", "Counterexample", "ExactRadius", "ExactSettings", "Property", "Status",
           "VerificationResult", "exact_radius", "falsify", "robustness_property", "verify"]
