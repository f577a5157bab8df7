"""L2 PGD: projected gradient descent in the Euclidean ball (Madry et al., 2018).

Ball of radius ``eps`` (input units, L2 norm over all pixels of a point) around ``x``::

    x_{t+1} = clip(x + r(x_t + s * alpha * g_t / ||g_t||_2 - x), 0, 1),
    r(d)    = d * min(1, eps / ||d||_2)

with ``g_t = grad_x CE(f(x_t), y)``, ``s = +1`` untargeted, ``s = -1`` targeted (``y`` the
targets). The final clip keeps the point in the ball (it moves every coordinate towards
``x``, which lies in ``[0, 1]``), though it is not the Euclidean projection onto the
intersection. The random start is uniform in the ball: direction ``z / ||z||_2`` with ``z``
Gaussian, radius ``eps * u^(1/d)`` with ``u`` uniform in ``[0, 1]``, then the domain clip.

Example::

    from shallowcert.attacks import L2PGD
    result = L2PGD(steps=40, relative_step=0.1)(model, x, y, eps=1.0)
"""

from __future__ import annotations

import torch
from torch import Tensor

from shallowcert.attacks.base import IterativeAttack, per_point

TINY = 1e-12  # guards the division by a zero norm


def l2_norms(t: Tensor) -> Tensor:
    """``||t_i||_2`` over all entries of each row ``i``, shape ``(N,)``."""
    return t.flatten(1).norm(dim=1)


class L2PGD(IterativeAttack):
    """L2 PGD.

    Arguments (keyword-only, defaults in brackets): ``steps`` iterations [40]; ``step_size``
    alpha in input units of L2 length [0.1]; ``relative_step`` alpha as a fraction of each
    point's eps, replacing ``step_size`` when given [None]; ``random_start`` start at a
    uniform point of the ball [True]; ``restarts`` runs from fresh random starts, each on the
    points not broken yet [1]; ``seed`` of the random starts [0].
    """

    norm = "l2"

    def __init__(self, *, steps: int = 40, step_size: float = 0.1, relative_step: float | None = None,
                 random_start: bool = True, restarts: int = 1, seed: int = 0) -> None:
        super().__init__(steps=steps, step_size=step_size, relative_step=relative_step,
                         random_start=random_start, restarts=restarts, seed=seed)

    def random_point(self, x0: Tensor, eps: Tensor, generator: torch.Generator) -> Tensor:
        """A uniform point of the L2 ball of radius ``eps`` around ``x0``, clipped to ``[0, 1]``."""
        z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        u = torch.rand(x0.shape[0], generator=generator, dtype=x0.dtype, device=x0.device)
        dimension = x0[0].numel()
        radius = eps * u.pow(1.0 / dimension)
        return (x0 + per_point(radius, x0) * z / per_point(l2_norms(z).clamp_min(TINY), z)).clamp(0.0, 1.0)

    def direction(self, gradient: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """``g / ||g||_2``: the steepest ascent direction of the L2 ball."""
        norm = l2_norms(gradient).clamp_min(TINY)
        return gradient / per_point(norm, gradient), memory

    def project(self, x: Tensor, x0: Tensor, eps: Tensor) -> Tensor:
        delta = x - x0
        factor = (eps / l2_norms(delta).clamp_min(TINY)).clamp(max=1.0)
        return (x0 + per_point(factor, delta) * delta).clamp(0.0, 1.0)

    def distance(self, x: Tensor, x0: Tensor) -> Tensor:
        """``||x - x0||_2`` per point."""
        return l2_norms(x - x0)
