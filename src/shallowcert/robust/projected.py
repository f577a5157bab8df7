"""Wong & Kolter's dual bound with random projections (Wong, Schmidt, Metzen & Kolter 2018), for training.

The dual network (Fast-Lin) bounds every pre-activation ``z_m`` of a later layer over the
input box ``|x - mid| <= rad`` by a forward pass: with every earlier ReLU ``i`` replaced by
its relaxation ``z -> d_i * z + t_i / 2`` (``d_i`` the chord slope ``u / (u - l)`` on unstable
neurons, 1 active, 0 inactive; ``t_i = -d_i * l_i`` on unstable neurons, else 0),

    centre_m = g(mid)_m,
    spread_m = ||diag(rad) nu_0[m]||_1 + sum_i ||diag(t_i / 2) nu_i[m]||_1,
    l_m = centre_m - spread_m,   u_m = centre_m + spread_m,

where ``g`` is the relaxed network and ``nu_i[m]`` the row of the linear map from the output
of ReLU ``i`` (``i = 0``: the input) to ``z_m``. The exact dual computes the ℓ1 norms by pushing
an identity matrix through ``g`` (one column per input pixel and per unstable neuron), so its
cost grows with the input size. Here they are estimated instead: for a row ``a`` and a vector
``r`` of independent standard Cauchy variables, ``a · r`` is Cauchy with scale ``||a||_1``, so
the median of ``|a · r_1|, ..., |a · r_k|`` estimates ``||a||_1`` (median of ``|Cauchy(0, s)|`` is
``s``); its relative error shrinks like ``1 / sqrt(k)``. Because a sum of independent Cauchy
variables is Cauchy with the summed scales, the sources share the same ``k`` columns: a new
source adds ``diag(t_i / 2) R_i`` to the columns already pushed to layer ``i``, and the
median of the columns' absolute values at layer ``m`` estimates the whole ``spread_m``. The
cost is ``k`` forward passes of the linear network per example, whatever the input size and
depth. With ``projections=None`` the columns are identity blocks instead and the spread is
their exact absolute sum (the exact dual network, the engine's ``dual-exact``; costly, for
reference).

The final rows ``spec · f(x)`` are bounded exactly (back-substitution with the relaxations
above, :mod:`shallowcert.bounds.backward`), as Wong et al. do. The estimated intermediate bounds
are not sound (an estimate can fall inside the true range), so these bounds are for the
training loss only: no certificate, radius or reported bound is computed from them
(:mod:`shallowcert.certify` accepts only the engine's exact methods).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shallowcert.bounds import InputSet, margin_spec
from shallowcert.bounds.affine import AffineMap
from shallowcert.bounds.backward import back_substitute, concretize
from shallowcert.bounds.network import Network, read_network
from shallowcert.bounds.relaxation import Relaxation, relax
from shallowcert.checks import positive_int
from shallowcert.robust.loss import RobustLoss, negated_margin_bounds

DEFAULT_PROJECTIONS = 50


class _Columns:
    """The ℓ1 sources pushed forward through the relaxed network: ``(N, k, *shape)``.

    Projected (``projections=k``): ``k`` Cauchy columns, new sources added to them; exact
    (``None``): one identity column per source coordinate, new sources concatenated.
    """

    def __init__(self, scale: torch.Tensor, projections: int | None, generator: torch.Generator | None) -> None:
        self.projections, self.generator = projections, generator
        self.values = self._source(scale)

    def _source(self, scale: torch.Tensor) -> torch.Tensor:
        """``diag(scale) R`` (projected) or ``diag(scale)`` as columns (exact), ``scale`` ``(N, *shape)``."""
        points, shape = scale.shape[0], scale.shape[1:]
        if self.projections is None:
            size = scale[0].numel()
            eye = torch.eye(size, dtype=scale.dtype, device=scale.device).reshape(1, size, *shape)
            return eye * scale.unsqueeze(1)
        draws = torch.empty((points, self.projections, *shape), dtype=scale.dtype, device=scale.device)
        return draws.cauchy_(generator=self.generator) * scale.unsqueeze(1)

    def apply(self, step: AffineMap) -> None:
        """``A`` (the linear part of ``step``) on every column."""
        points, columns = self.values.shape[:2]
        self.values = step.apply(self.values.flatten(0, 1)).reshape(points, columns, *step.out_shape)

    def relu(self, slope: torch.Tensor, scale: torch.Tensor) -> None:
        """Through a relaxed ReLU: columns times ``slope`` ``(N, 1, *shape)``, plus the source ``scale``."""
        values = self.values * slope
        source = self._source(scale)
        self.values = torch.cat([values, source], 1) if self.projections is None else values + source

    def spread(self) -> torch.Tensor:
        """The estimated (or exact) sum of the ℓ1 norms, ``(N, *shape)``."""
        if self.projections is None:
            return self.values.abs().sum(1)
        return self.values.abs().median(1).values


def intermediate_relaxations(network: Network, lower: torch.Tensor, upper: torch.Tensor, *,
                             projections: int | None = DEFAULT_PROJECTIONS,
                             generator: torch.Generator | None = None,
                             ) -> tuple[dict[int, tuple[torch.Tensor, torch.Tensor]], dict[int, Relaxation]]:
    """Pre-activation bounds (estimated, module docstring) and dual relaxations of every ReLU.

    ``lower``/``upper``: the input box ``(N, *shape)``; ``projections``: ``k`` Cauchy columns
    (``None``: exact ℓ1 norms); ``generator``: the random source (default: torch's global one).
    Returns bounds ``(l, u)`` and :class:`Relaxation` per ReLU step index.
    """
    if projections is not None:
        positive_int("projections", projections)
    centre = (upper + lower) / 2
    columns = _Columns((upper - lower) / 2, projections, generator)
    bounds: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    relaxations: dict[int, Relaxation] = {}
    start = 0
    for position in network.relu_positions:
        for step in network.steps[start:position]:  # affine maps only: the ReLUs are the positions
            if isinstance(step, AffineMap):
                centre = step.apply(centre) if step.bias is None else step.apply(centre) + step.bias
                columns.apply(step)
        spread = columns.spread()
        bounds[position] = (centre - spread, centre + spread)
        relaxation = relax(*bounds[position], lower_slope="dual")
        relaxations[position] = relaxation
        half = relaxation.upper_intercept.squeeze(1) / 2
        centre = relaxation.upper_slope.squeeze(1) * centre + half
        columns.relu(relaxation.upper_slope, half)
        start = position + 1
    return bounds, relaxations


def projected_lower_bounds(model: nn.Module, input_set: InputSet, spec: torch.Tensor, *,
                           projections: int | None = DEFAULT_PROJECTIONS,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Lower bounds ``(N, K)`` of ``spec @ model(x)`` over ``input_set``, with estimated
    intermediate bounds (:func:`intermediate_relaxations`) and an exact final back-substitution.

    For training only: not sound (module docstring). ``spec``: ``(N, K, classes)``.
    """
    center = input_set.center
    network = read_network(model, tuple(center.shape[1:]), center.dtype, device=center.device)
    lower, upper = input_set.box()
    _, relaxations = intermediate_relaxations(network, lower, upper, projections=projections, generator=generator)
    bound = back_substitute(network.steps, spec.to(center.dtype), relaxations)
    return concretize(bound.coefficients, (upper + lower) / 2, (upper - lower) / 2)[0] + bound.offset_lower


def projected_robust_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                          projections: int | None = DEFAULT_PROJECTIONS,
                          domain: tuple[float, float] | None = None,
                          generator: torch.Generator | None = None) -> RobustLoss:
    """``mean_i CE(-J_i, y_i)`` with the margin bounds ``J`` of :func:`projected_lower_bounds`
    (the loss of :func:`shallowcert.robust.robust_loss` with the ℓ1 terms estimated), and the
    fraction of the batch whose *estimated* margins are not all positive."""
    classes = model(x[:1]).shape[1]
    radius = torch.full((len(x),), float(eps), dtype=x.dtype, device=x.device)
    bounds = projected_lower_bounds(model, InputSet(x, radius, domain=domain), margin_spec(y, classes),
                                    projections=projections, generator=generator)
    loss = F.cross_entropy(negated_margin_bounds(bounds, y), y)
    return RobustLoss(loss, float((bounds.detach() <= 0).any(dim=1).double().mean()))
