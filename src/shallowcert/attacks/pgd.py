"""PGD, projected gradient descent under L-infinity (Madry et al., 2018).

From ``x_0`` (``x`` itself, or ``clip(x + U[-eps, eps]^d, 0, 1)`` with ``random_start``)::

    x_{t+1} = clip(x + clip(x_t + s * alpha * sign(grad_x CE(f(x_t), y)) - x, -eps, eps), 0, 1)

for ``steps`` iterations; ``s = +1`` untargeted, ``s = -1`` targeted (``y`` the targets);
``alpha = step_size``, or ``relative_step * eps`` (the thesis: ``steps=100,
relative_step=0.5``). ``restarts`` reruns the attack from fresh random starts on the points
not broken yet. Same update order as Foolbox's ``LinfPGD``.

Example::

    from shallowcert.attacks import PGD
    attack = PGD(steps=100, relative_step=0.5, random_start=False)
    result = attack(model, x, y, eps=0.1, early_stop=True)
    robust = ~result.success
"""

from __future__ import annotations

from shallowcert.attacks.linf import LinfAttack


class PGD(LinfAttack):
    """L-infinity PGD.

    Arguments (keyword-only, defaults in brackets): ``steps`` iterations [40]; ``step_size``
    alpha in input units [0.01]; ``relative_step`` alpha as a fraction of each point's eps,
    replacing ``step_size`` when given [None]; ``random_start`` start at a uniform point of
    the ball [True]; ``restarts`` runs from fresh random starts, each on the points not broken
    yet [1]; ``seed`` of the random starts [0].
    """

    def __init__(self, *, steps: int = 40, step_size: float = 0.01, relative_step: float | None = None,
                 random_start: bool = True, restarts: int = 1, seed: int = 0) -> None:
        super().__init__(steps=steps, step_size=step_size, relative_step=relative_step,
                         random_start=random_start, restarts=restarts, seed=seed)
