"""Gradient attacks under L-infinity and L2, and robust-accuracy sweeps over radii.

Every attack is called the same way and returns an :class:`AttackResult`::

    from shallowcert.attacks import PGD, robust_accuracy
    result = PGD(steps=40, step_size=0.01)(model, x, y, eps=0.1)        # x in [0, 1]
    sweep = robust_accuracy(model, x, y, PGD(steps=100, relative_step=0.5), [0, 0.05, 0.1])

Radii ``eps`` are in input units (inputs in ``[0, 1]``).
"""

from shallowcert.attacks.base import AttackResult, IterativeAttack
from shallowcert.attacks.bim import BIM
from shallowcert.attacks.fgsm import FGSM
from shallowcert.attacks.l2pgd import L2PGD
from shallowcert.attacks.linf import LinfAttack
from shallowcert.attacks.mim import MIM
from shallowcert.attacks.pgd import PGD
from shallowcert.attacks.plot import plot_robust_accuracy
from shallowcert.attacks.registry import ATTACKS, make_attack
from shallowcert.attacks.sweep import SweepResult, parse_eps_grid, robust_accuracy

__all__ = [
    "ATTACKS", "BIM", "FGSM", "L2PGD", "MIM", "PGD", "AttackResult", "IterativeAttack", "LinfAttack",
    "SweepResult", "make_attack", "parse_eps_grid", "plot_robust_accuracy", "robust_accuracy",
]
