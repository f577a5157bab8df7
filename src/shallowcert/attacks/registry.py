"""Attacks by name, built from keyword options (as the CLI and the study configure them)."""

from __future__ import annotations

import inspect
from typing import Any

from shallowcert.attacks.base import IterativeAttack
from shallowcert.attacks.bim import BIM
from shallowcert.attacks.fgsm import FGSM
from shallowcert.attacks.l2pgd import L2PGD
from shallowcert.attacks.mim import MIM
from shallowcert.attacks.pgd import PGD
from shallowcert.errors import UserError

ATTACKS: dict[str, type[IterativeAttack]] = {"fgsm": FGSM, "pgd": PGD, "bim": BIM, "mim": MIM, "l2pgd": L2PGD}


def make_attack(name: str, **options: Any) -> IterativeAttack:
    """``ATTACKS[name](**options)``; an option the attack does not take is a UserError.

    ``seed`` is passed only to attacks that have randomness (it is ignored by the others).
    """
    cls = ATTACKS.get(name)
    if cls is None:
        raise UserError(f"unknown attack '{name}' (choose from {', '.join(ATTACKS)})")
    accepted = inspect.signature(cls).parameters
    seed = options.pop("seed", None)
    refused = [option for option in options if option not in accepted]
    if refused:
        raise UserError(f"{name} does not take {', '.join('--' + o.replace('_', '-') for o in refused)}")
    if "step_size" in options and "relative_step" in options:
        raise UserError("give --step-size or --relative-step, not both")
    if seed is not None and "seed" in accepted:
        options["seed"] = seed
    return cls(**options)
