"""Certification: robust error bounds, certified radii and the certification area.

Built on :mod:`shallowcert.bounds`. Radii and epsilons are L-infinity distances in input
units (inputs in [0, 1]); every verdict and radius records the dtype of its bounds.

Example::

    from shallowcert.certify import certified_radius, certification_area, robust_error_bound
    err = robust_error_bound(model, x, y, 0.1, method="dual")
    result = certified_radius(model, x, labels=y, dtype=torch.float64)
    area = certification_area(result.radius, result.correct)
"""

from shallowcert.certify.area import CertificationArea, certification_area
from shallowcert.certify.attack_bound import adversarial_distance
from shallowcert.certify.plot import plot_certification_area
from shallowcert.certify.precision import DTYPES, dtype_name, parse_dtype
from shallowcert.certify.radius import SEARCHES, RadiusResult, certified_radius
from shallowcert.certify.search import SearchSettings
from shallowcert.certify.verdict import Verdict, certify_points, robust_error_bound

__all__ = [
    "DTYPES", "SEARCHES", "CertificationArea", "RadiusResult", "SearchSettings", "Verdict",
    "adversarial_distance", "certification_area", "certified_radius", "certify_points", "dtype_name",
    "parse_dtype", "plot_certification_area", "robust_error_bound",
]
