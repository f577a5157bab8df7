"""Projected Adam for the bound parameters: lower slopes (kept in [0, 1]) and split
multipliers (kept >= 0).

Per parameter ``x`` with gradient ``g`` at step ``t`` (Kingma & Ba 2015, then projection)::

    m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
    x <- clamp(x - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), low, high)

Why not ``torch.optim.Adam``: its first construction in a process imports ``torch._dynamo``
(about 4 s on a 2-core CPU), more than a whole verification may take; the update itself is
these few element-wise operations.
"""

from __future__ import annotations

import torch


class ProjectedAdam:
    """Adam steps on ``parameters`` (updated in place, without autograd), projected onto
    ``[low, high]`` (``None``: unbounded on that side)."""

    def __init__(self, parameters: list[torch.Tensor], *, lr: float, low: float | None = None,
                 high: float | None = None, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.parameters, self.lr, self.low, self.high = parameters, lr, low, high
        self.betas, self.eps, self.count = betas, eps, 0
        self.first = [torch.zeros_like(p) for p in parameters]
        self.second = [torch.zeros_like(p) for p in parameters]

    def step(self, gradients: list[torch.Tensor | None]) -> None:
        """One step *descending* ``gradients`` (one per parameter; ``None``: zero)."""
        self.count += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1 ** self.count, 1 - b2 ** self.count
        with torch.no_grad():
            for x, m, v, g in zip(self.parameters, self.first, self.second, gradients):
                if g is None:
                    g = torch.zeros_like(x)
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                x.sub_(self.lr * (m / correction1) / ((v / correction2).sqrt() + self.eps))
                if self.low is not None or self.high is not None:
                    x.clamp_(self.low, self.high)

    def select(self, index: torch.Tensor) -> ProjectedAdam:
        """The optimiser restricted to the entries ``index`` (along dim 0) of every parameter,
        moments and step count kept; its parameters are new leaf tensors (requiring grad as before)."""
        chosen = ProjectedAdam([p.detach()[index].requires_grad_(p.requires_grad) for p in self.parameters],
                               lr=self.lr, low=self.low, high=self.high, betas=self.betas, eps=self.eps)
        chosen.first = [m[index] for m in self.first]
        chosen.second = [v[index] for v in self.second]
        chosen.count = self.count
        return chosen
