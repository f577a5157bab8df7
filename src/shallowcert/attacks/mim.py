"""MIM, the momentum iterative method (Dong et al., 2018).

From the clean input, with ``g_0 = 0`` and ``mu`` the decay::

    g_{t+1} = mu * g_t + grad_t / ||grad_t||_1          (L1 norm per point, over all pixels)
    x_{t+1} = clip(x + clip(x_t + s * alpha * sign(g_{t+1}) - x, -eps, eps), 0, 1)

where ``grad_t = grad_x CE(f(x_t), y)``, ``s = +1`` untargeted, ``s = -1`` targeted (``y``
the targets). Dong et al. used ``mu = 1`` and ``alpha = eps / steps``
(``relative_step = 1 / steps``). A zero gradient leaves the momentum unchanged.

Example::

    from shallowcert.attacks import MIM
    result = MIM(steps=10, relative_step=0.1, decay=1.0)(model, x, y, eps=0.1)
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from shallowcert import checks
from shallowcert.attacks.base import per_point
from shallowcert.attacks.linf import LinfAttack


class MIM(LinfAttack):
    """Momentum iterative method.

    Arguments (keyword-only, defaults in brackets): ``steps`` iterations [10]; ``step_size``
    alpha in input units [0.01]; ``relative_step`` alpha as a fraction of each point's eps,
    replacing ``step_size`` when given [None]; ``decay`` the momentum factor mu >= 0 [1.0].
    """

    def __init__(self, *, steps: int = 10, step_size: float = 0.01, relative_step: float | None = None,
                 decay: float = 1.0) -> None:
        super().__init__(steps=steps, step_size=step_size, relative_step=relative_step,
                         random_start=False, restarts=1, seed=0)
        self.decay = checks.non_negative_float("decay", decay)

    def direction(self, gradient: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """``g <- mu * g + grad / ||grad||_1``; the direction is ``sign(g)``."""
        l1 = gradient.flatten(1).abs().sum(dim=1).clamp_min(1e-12)
        momentum = self.decay * memory + gradient / per_point(l1, gradient)
        return momentum.sign(), momentum

    def options(self) -> dict[str, Any]:
        """Steps, step length and decay (MIM is deterministic)."""
        return {"steps": self.steps, **self.step_options(), "decay": self.decay}
