"""Robust accuracy along a grid of radii, attacking only the points still standing.

For a grid ``eps_1 <= eps_2 <= ... <= eps_K`` (input units) the robust accuracy at
``eps_k`` is the fraction of points that are classified correctly and that the attack does
not break within the ball of radius ``eps_k`` (intersected with ``[0, 1]``).

The sweep is faster than attacking every point at every radius, by two shortcuts:

1. *A point broken at ``eps_j`` stays broken at every ``eps_k >= eps_j``*: its adversarial
   example ``x'`` has ``||x' - x|| <= eps_j <= eps_k`` and ``x' in [0, 1]^d``, so it is a
   witness inside the larger ball too. At ``eps_k`` only the points not broken at a smaller
   radius are attacked.
2. *Early stop* (the default; report it as "<attack> with early stop"): a point stops at its
   first adversarial iterate, which is kept. It skips the remaining steps of broken points.

Claim: the sweep is never weaker than the per-radius loop (the same attack, without early
stop, on every point at every radius): if the loop breaks point ``i`` at ``eps_k``, so does
the sweep. Proof: if the sweep broke ``i`` at some ``eps_j < eps_k``, shortcut 1 gives a
witness in the ``eps_k`` ball. Otherwise ``i`` is still standing at ``eps_k`` and the sweep
runs the same attack on it at ``eps_k`` from the same start; its iterates are the loop's
(in eval mode a point's iterates do not depend on the other rows of its batch) until its
first success, and since the loop's final iterate is adversarial, such a first success
exists (see :mod:`shallowcert.attacks.base`). So at every radius the sweep's robust set is
contained in the loop's, and its robust accuracy is at most the loop's — up to last-bit
float differences that some kernels show between batch sizes, which can flip the sign of a
near-zero gradient coordinate.

Random starts are drawn from one generator seeded with ``attack.seed``, so a sweep is
deterministic; with random starts the per-radius loop draws different starts, and "never
weaker" holds for the same starts, not draw for draw. The curve is non-increasing by
construction, and at ``eps = 0`` it equals the clean accuracy exactly (nothing is attacked:
the ball is the point itself).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from shallowcert import checks
from shallowcert.attacks.base import IterativeAttack
from shallowcert.device import batch_to, model_device
from shallowcert.errors import UserError
from shallowcert.model_state import evaluation_mode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    """Robust accuracy of ``n`` points along ``eps`` (input units).

    ``robust_accuracy[k]``: fraction of points correct and not broken at ``eps[k]``;
    ``clean_accuracy``: fraction correct at ``eps = 0``; ``seconds``: wall-clock time;
    ``breaking_eps``: float64 ``(n,)``, per point the smallest grid radius at which it was
    broken (``0`` if misclassified clean, ``inf`` if never broken on the grid) — an upper
    bound on its true robust radius; ``attack``: what was run, e.g.
    ``"PGD(steps=40, ...) with early stop"``.
    """

    attack: str
    n: int
    eps: list[float]
    robust_accuracy: list[float]
    clean_accuracy: float
    seconds: float
    breaking_eps: Tensor

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``breaking_eps`` as a list, ``None`` for never broken)."""
        return {
            "attack": self.attack,
            "n": self.n,
            "eps": self.eps,
            "robust_accuracy": self.robust_accuracy,
            "clean_accuracy": self.clean_accuracy,
            "seconds": self.seconds,
            "breaking_eps": [None if math.isinf(v) else v for v in self.breaking_eps.tolist()],
        }


def robust_accuracy(model: nn.Module, x: Tensor, y: Tensor, attack: IterativeAttack,
                    eps_grid: Sequence[float], *, batch_size: int = 256,
                    early_stop: bool = True, device: torch.device | None = None) -> SweepResult:
    """Untargeted robust accuracy of ``model`` at ``x`` (``(N, ...)`` in ``[0, 1]``), labels ``y``.

    ``eps_grid``: non-decreasing radii >= 0 in input units; ``batch_size``: points per
    attack call; ``early_stop``: keep each point's first adversarial iterate (see the
    module docstring for why this and the shortcuts never weaken the attack); ``device``: where
    the attack runs (default: the model's device; the model is moved there in place). ``x`` and
    ``y`` may stay on the CPU: each batch is moved; the per-point results are on the CPU.
    """
    checks.inputs_and_labels(x, y)
    grid = checks.increasing_grid(eps_grid)
    batch_size = checks.positive_int("batch_size", batch_size)
    if x.shape[0] == 0:
        raise UserError("robust accuracy needs at least one point")
    started = time.perf_counter()
    device = model_device(model) if device is None else device
    model.to(device)
    x, y = x.detach().cpu(), y.detach().cpu()
    with evaluation_mode(model), torch.no_grad():
        predictions = torch.cat([model(batch_to(chunk, device)).argmax(dim=1).cpu() for chunk in x.split(batch_size)])
    correct = predictions == y
    breaking = torch.where(correct, math.inf, 0.0).to(torch.float64)
    generator = attack.new_generator(device)
    accuracies = []
    progress = tqdm(grid, desc=f"{type(attack).__name__} sweep", leave=False, unit="eps")
    for eps in progress:
        standing = torch.nonzero(torch.isinf(breaking)).squeeze(1)
        if eps > 0:
            for rows in standing.split(batch_size):
                result = attack(model, batch_to(x[rows], device), batch_to(y[rows], device), eps=eps,
                                early_stop=early_stop, generator=generator)
                breaking[rows[result.success.cpu()]] = eps
        accuracies.append(float(torch.isinf(breaking).double().mean()))
        progress.set_postfix(eps=eps, robust=f"{accuracies[-1]:.3f}")
        log.debug("eps %.4g: robust accuracy %.4f (%d points attacked)", eps, accuracies[-1],
                  standing.numel() if eps > 0 else 0)
    description = f"{attack!r} with early stop" if early_stop else repr(attack)
    seconds = time.perf_counter() - started
    log.info("%s: %d points, %d radii, %.1f s", description, x.shape[0], len(grid), seconds)
    return SweepResult(attack=description, n=int(x.shape[0]), eps=grid, robust_accuracy=accuracies,
                       clean_accuracy=float(correct.double().mean()), seconds=seconds, breaking_eps=breaking)


def parse_eps_grid(text: str) -> list[float]:
    """Parse ``"start:stop:count"`` (``count`` evenly spaced radii, ends included) or ``"a,b,c"``.

    Radii are in input units, e.g. ``"0:0.2:21"`` -> ``[0.0, 0.01, ..., 0.2]``; values are
    rounded to 12 decimals so that ``0.03`` prints as ``0.03``.
    """
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            if not count.strip().isdigit() or int(count) < 1:
                raise ValueError
            values = np.linspace(float(start), float(stop), int(count)).tolist()
        else:
            values = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"bad eps grid '{text}': use start:stop:count (e.g. 0:0.2:21) "
                        "or a comma list (e.g. 0,0.05,0.1)") from None
    return checks.increasing_grid([round(v, 12) for v in values])
