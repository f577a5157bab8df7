"""BIM, the basic iterative method (Kurakin et al., 2017).

Iterated FGSM from the clean input, clipped to the ball and the domain after every step::

    x_0 = x
    x_{t+1} = clip(x + clip(x_t + s * alpha * sign(grad_x CE(f(x_t), y)) - x, -eps, eps), 0, 1)

``s = +1`` untargeted, ``s = -1`` targeted (``y`` the targets). Unlike PGD it never starts
at a random point. Kurakin et al. used ``alpha = 1/255`` and ``min(eps*255 + 4,
1.25 * eps * 255)`` steps; the defaults here are 10 steps of 0.01.

Example::

    from shallowcert.attacks import BIM
    result = BIM(steps=10, relative_step=0.25)(model, x, y, eps=0.1)
"""

from __future__ import annotations

from typing import Any

from shallowcert.attacks.linf import LinfAttack


class BIM(LinfAttack):
    """Basic iterative method.

    Arguments (keyword-only, defaults in brackets): ``steps`` iterations [10]; ``step_size``
    alpha in input units [0.01]; ``relative_step`` alpha as a fraction of each point's eps,
    replacing ``step_size`` when given [None].
    """

    def __init__(self, *, steps: int = 10, step_size: float = 0.01, relative_step: float | None = None) -> None:
        super().__init__(steps=steps, step_size=step_size, relative_step=relative_step,
                         random_start=False, restarts=1, seed=0)

    def options(self) -> dict[str, Any]:
        """Steps and step length only (BIM is deterministic)."""
        return {"steps": self.steps, **self.step_options()}
