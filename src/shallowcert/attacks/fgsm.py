"""FGSM, the fast gradient sign method (Goodfellow et al., 2015).

One step of size ``eps`` from the clean input, then the domain::

    x_adv = clip(x + s * eps * sign(grad_x CE(f(x), y)), 0, 1)

``s = +1`` untargeted, ``s = -1`` targeted (``y`` the targets). It equals one step of
:class:`~shallowcert.attacks.PGD` without random start and with ``step_size = eps``.

Example::

    from shallowcert.attacks import FGSM
    result = FGSM()(model, x, y, eps=0.1)
    accuracy = 1 - result.success.float().mean()
"""

from __future__ import annotations

from typing import Any

from shallowcert.attacks.linf import LinfAttack


class FGSM(LinfAttack):
    """FGSM: ``clip(x + s * eps * sign(grad), 0, 1)``; no options."""

    def __init__(self) -> None:
        super().__init__(steps=1, step_size=1.0, relative_step=1.0, random_start=False, restarts=1, seed=0)

    def options(self) -> dict[str, Any]:
        """FGSM has no options."""
        return {}
