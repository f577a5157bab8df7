"""One loop for every gradient attack: four hooks, one result type.

For clean inputs ``x0`` in ``[0, 1]^d``, labels ``y`` and a radius ``eps`` per point (input
units), an iterative attack runs, for ``t = 0 .. steps-1``::

    x_0     = start(x0, eps)                       x0, or a random point of the ball
    g_t     = grad_x CE(f(x_t), y)                 cross-entropy of the logits f(x_t)
    d_t     = direction(g_t)                       the normalised gradient (e.g. sign g_t)
    x_{t+1} = project(step(x_t, s * d_t, alpha))   ball around x0, then the domain [0, 1]

with ``s = +1`` for an untargeted attack (ascend the loss of the true label) and ``s = -1``
for a targeted one (``y`` are then the target labels; descend their loss), and
``alpha = step_size`` or ``alpha = relative_step * eps`` per point. The goal is met when
``argmax f(x) != y`` (untargeted) or ``argmax f(x) == y`` (targeted).

Subclasses choose the geometry (``random_point``, ``direction``, ``project``,
``distance``); :class:`IterativeAttack` owns the loop, the restarts, early stopping,
evaluation mode, seeding and the checks. A point whose clean input already meets the goal
is reported as a success with ``adversarial = x0`` and is not attacked.

Restarts: restart ``r`` attacks only the points that every earlier restart missed; the
first adversarial example found is kept. A point that is never broken gets the final
iterate of the last restart (the strongest attempt, e.g. for adversarial training).

Early stop (``early_stop=True``): the goal is checked at every iterate ``x_0 .. x_T``, and
a point leaves the batch at the first iterate that meets it, with that iterate as its
adversarial example. Without it, only the final iterate ``x_T`` is checked (as Foolbox and
torchattacks do). Early stop is never weaker, point by point, on the same trajectory: until
a point's first success both runs compute the same iterates (a point's gradient does not
depend on the other rows), so if plain PGD's ``x_T`` meets the goal, some first iterate
``x_t, t <= T`` does too and early stop reports a success. The converse fails: plain PGD
may step away from an adversarial ``x_t`` and end on a correctly classified ``x_T``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shallowcert import checks
from shallowcert.model_state import evaluation_mode

Model = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class AttackResult:
    """What every attack returns for a batch of ``N`` points.

    ``adversarial``: ``(N, ...)`` inputs in ``[0, 1]`` within distance ``eps`` of ``x`` (up to
    the rounding of ``x + delta`` in the input dtype: about 6e-8 in float32 near 1);
    ``success``: bool ``(N,)``, the goal is met at ``adversarial``;
    ``perturbation``: float ``(N,)``, ``||adversarial - x||`` in the attack's norm (input units).
    """

    adversarial: Tensor
    success: Tensor
    perturbation: Tensor


def goal_met(logits: Tensor, y: Tensor, *, targeted: bool) -> Tensor:
    """``argmax logits == y`` if ``targeted``, else ``argmax logits != y`` (bool ``(N,)``)."""
    hit = logits.argmax(dim=1) == y
    return hit if targeted else ~hit


def per_point(values: Tensor, like: Tensor) -> Tensor:
    """Reshape ``(N,)`` values to ``(N, 1, ..., 1)`` so that they broadcast over ``like``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def logits_and_gradient(model: Model, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Logits ``f(x)`` and ``grad_x sum_i CE(f(x_i), y_i)`` (row ``i`` is point ``i``'s own gradient)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    loss = F.cross_entropy(logits, y, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, x)
    return logits.detach(), gradient


class IterativeAttack(ABC):
    """Base of the gradient attacks: subclasses supply the geometry hooks.

    Options (keyword-only): ``steps`` (>= 1), ``step_size`` (alpha in input units),
    ``relative_step`` (alpha as a fraction of each point's eps; replaces ``step_size``
    when given), ``random_start``, ``restarts`` (>= 1) and ``seed`` (random starts are
    drawn from ``torch.Generator().manual_seed(seed)`` unless a ``generator`` is passed).
    """

    norm: str

    def __init__(self, *, steps: int, step_size: float, relative_step: float | None,
                 random_start: bool, restarts: int, seed: int) -> None:
        self.steps = checks.positive_int("steps", steps)
        self.step_size = checks.positive_float("step_size", step_size)
        self.relative_step = None if relative_step is None else checks.positive_float("relative_step", relative_step)
        self.random_start = bool(random_start)
        self.restarts = checks.positive_int("restarts", restarts)
        self.seed = int(seed)

    # -- hooks -------------------------------------------------------------------------

    @abstractmethod
    def random_point(self, x0: Tensor, eps: Tensor, generator: torch.Generator) -> Tensor:
        """A random point of the ball of radius ``eps`` (per point) around ``x0``, in ``[0, 1]``."""

    @abstractmethod
    def direction(self, gradient: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """The normalised ascent direction and the updated per-point ``memory`` (e.g. momentum)."""

    @abstractmethod
    def project(self, x: Tensor, x0: Tensor, eps: Tensor) -> Tensor:
        """A point of the ball of radius ``eps`` around ``x0`` intersected with ``[0, 1]``."""

    @abstractmethod
    def distance(self, x: Tensor, x0: Tensor) -> Tensor:
        """``||x - x0||`` per point in this attack's norm, shape ``(N,)``."""

    def start(self, x0: Tensor, eps: Tensor, generator: torch.Generator) -> Tensor:
        """``x_0``: a random point of the ball if ``random_start``, else ``x0`` itself."""
        return self.random_point(x0, eps, generator) if self.random_start else x0.clone()

    def step(self, x: Tensor, direction: Tensor, alpha: Tensor) -> Tensor:
        """``x + alpha * direction`` with one ``alpha`` per point."""
        return x + per_point(alpha, x) * direction

    def step_length(self, eps: Tensor) -> Tensor:
        """``alpha`` per point: ``relative_step * eps``, or ``step_size`` when no relative step is set."""
        if self.relative_step is not None:
            return self.relative_step * eps
        return torch.full_like(eps, self.step_size)

    def step_options(self) -> dict[str, float]:
        """``{"relative_step": ...}`` if a relative step is set, else ``{"step_size": ...}``."""
        if self.relative_step is not None:
            return {"relative_step": self.relative_step}
        return {"step_size": self.step_size}

    def options(self) -> dict[str, Any]:
        """The constructor options, as shown by ``repr``."""
        return {"steps": self.steps, **self.step_options(), "random_start": self.random_start,
                "restarts": self.restarts, "seed": self.seed}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options().items())})"

    def new_generator(self, device: torch.device) -> torch.Generator:
        """A generator seeded with ``self.seed`` on ``device``."""
        return torch.Generator(device=device).manual_seed(self.seed)

    # -- the attack --------------------------------------------------------------------

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, *, eps: float | Tensor,
                 targeted: bool = False, early_stop: bool = False,
                 generator: torch.Generator | None = None) -> AttackResult:
        """Attack ``model`` at ``x`` (``(N, ...)`` in ``[0, 1]``) with labels ``y`` (``(N,)``).

        ``eps`` is the radius in input units, a float or one per point; ``targeted``
        makes ``y`` the target labels; ``early_stop`` keeps the first adversarial iterate
        of each point (see the module docstring). The model is in eval mode during the
        attack and each sub-module's mode is restored afterwards.
        """
        checks.inputs_and_labels(x, y)
        radius = checks.epsilon_per_point(eps, x)
        x = x.detach()
        generator = generator if generator is not None else self.new_generator(x.device)
        with evaluation_mode(model):
            with torch.no_grad():
                logits = model(x)
            checks.labels_within(y, logits.shape[1])
            success = goal_met(logits, y, targeted=targeted)
            adversarial = x.clone()
            for _ in range(self.restarts):
                todo = torch.nonzero(~success).squeeze(1)
                if todo.numel() == 0:
                    break
                found, hit = self._trajectory(model, x[todo], y[todo], radius[todo], targeted=targeted,
                                              early_stop=early_stop, generator=generator)
                adversarial[todo] = found
                success[todo] = hit
        return AttackResult(adversarial, success, self.distance(adversarial, x))

    def _trajectory(self, model: Model, x0: Tensor, y: Tensor, eps: Tensor, *, targeted: bool,
                    early_stop: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """One run from ``start``: the adversarial example and success of each point."""
        ascent = -1.0 if targeted else 1.0
        alpha = self.step_length(eps)
        x = self.start(x0, eps, generator)
        memory = torch.zeros_like(x0)
        found = x.clone()
        success = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
        rows = torch.arange(x0.shape[0], device=x0.device)  # position of each live row in the output
        for _ in range(self.steps):
            logits, gradient = logits_and_gradient(model, x, y)
            if early_stop:
                hit = goal_met(logits, y, targeted=targeted)
                if bool(hit.any()):
                    found[rows[hit]] = x[hit]
                    success[rows[hit]] = True
                    keep = ~hit
                    x0, y, eps, alpha, x, gradient, memory, rows = (
                        t[keep] for t in (x0, y, eps, alpha, x, gradient, memory, rows))
                    if rows.numel() == 0:
                        return found, success
            direction, memory = self.direction(gradient, memory)
            x = self.project(self.step(x, ascent * direction, alpha), x0, eps)
        with torch.no_grad():
            logits = model(x)
        found[rows] = x
        success[rows] = goal_met(logits, y, targeted=targeted)
        return found, success
