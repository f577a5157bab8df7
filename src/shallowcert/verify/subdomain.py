"""Bounds of the property's rows on a batch of subdomains (ReLU splits) of the input box.

A subdomain is the box intersected with split constraints, one int8 state per neuron
(``1``: ``z >= 0``, ``-1``: ``z <= 0``, ``0``: free), passed to the bounds engine as known
ReLU states: on the subdomain a split ReLU *is* the identity (or zero), so the engine's
bounds, computed with it and concretised over the whole box, hold on the subdomain
(:mod:`shallowcert.bounds.intermediate`). For every subdomain this module returns

* the lower bound of every unsafe row ``(A_k y - b_k)_i`` (a row above the rounding margin
  proves disjunct ``k`` unreachable there);
* the ReLU states the bounds proved (children inherit them) and whether some split neuron's
  bounds cross (``l > u``: the subdomain is empty, nothing to prove);
* a branching score per neuron (BaBSR-style): for the weakest unproved row, ``lam_j`` is
  the coefficient of ``relu(z_j)`` after back-substitution to that ReLU's output; a
  negative ``lam_j`` pays the chord intercept ``-u l / (u - l)``, a positive one the lower
  line's gap, at most ``min(u, -l)``; the score ``|min(lam_j, 0)| * (-u l / (u - l)) +
  max(lam_j, 0) * min(u, -l) / 4`` estimates what splitting ``j`` gains;
* the box corner minimising that row's linear bound, a cheap counterexample candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shallowcert.bounds import (BoundOptions, Network, Relaxations, back_substitute, concretize, pool_relaxations,
                                read_network, relax, relaxed_bound, relu_step, states_of, unstable_mask)
from shallowcert.certify.precision import rounding_margin
from shallowcert.verify.property import Property

EMPTY_GAP = 1e-9  # crossing bounds must cross by this much (relative to their size) to count as empty


@dataclass(frozen=True)
class DomainBounds:
    """Bounds of ``N`` subdomains: ``rows (N, R)`` lower bounds of ``A y - b``; ``proved (N, K)``
    disjuncts shown unreachable; ``empty (N,)``; ``states`` per ReLU (int8, split and proved);
    ``scores`` per ReLU (``0`` where a neuron cannot be split); ``corner (N, *input shape)``;
    ``pre_activation``: per ReLU, the ``(lower, upper)`` bounds of its input on each subdomain."""

    rows: torch.Tensor
    proved: torch.Tensor
    empty: torch.Tensor
    states: tuple[torch.Tensor, ...]
    scores: tuple[torch.Tensor, ...]
    corner: torch.Tensor
    pre_activation: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @property
    def verified(self) -> torch.Tensor:
        """Bool ``(N,)``: no input of the subdomain is unsafe."""
        return self.empty | self.proved.all(dim=1)


def per_disjunct_max(rows: torch.Tensor, owner: torch.Tensor, disjuncts: int) -> torch.Tensor:
    """``(N, K)``: the largest of each disjunct's rows in ``rows (N, R)`` (``owner (R,)``)."""
    member = owner.unsqueeze(1) == torch.arange(disjuncts, device=owner.device)  # (R, K)
    return rows.unsqueeze(2).masked_fill(~member, -torch.inf).amax(dim=1)


class SubdomainBounder:
    """Bounds ``prop``'s rows on subdomains of its box for ``model`` (read once, in ``dtype``)."""

    def __init__(self, model: nn.Module, prop: Property, *, method: str = "crown", alpha_steps: int = 20,
                 dtype: torch.dtype = torch.float64) -> None:
        self.prop = prop.to(dtype=dtype)
        self.network: Network = read_network(model, tuple(prop.lower.shape), dtype)
        self.method, self.alpha_steps = method, alpha_steps
        self.matrix, self.bound, self.owner = self.prop.rows()
        self.disjuncts = len(prop.unsafe)
        with torch.no_grad():
            centre = model((self.prop.lower + self.prop.upper).unsqueeze(0) / 2)
        scale = torch.cat([centre.to(dtype).flatten(), self.bound.abs()]).unsqueeze(0)
        self.margin = float(rounding_margin(scale)[0])
        self.shapes = [relu_step(self.network.steps[p]).shape for p in self.network.relu_positions]

    def free_states(self, count: int) -> tuple[torch.Tensor, ...]:
        """States of ``count`` copies of the whole box (nothing split)."""
        device = self.prop.lower.device
        return tuple(torch.zeros((count, *shape), dtype=torch.int8, device=device) for shape in self.shapes)

    def bound_domains(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor | None = None,
                      ) -> DomainBounds:
        """Bounds of the subdomains given by ``states`` (one int8 tensor per ReLU, ``(N, *shape)``).

        ``open_rows`` (bool ``(N, K)``, optional): disjuncts still to prove (the others were
        proved on a parent domain, which holds on every child); they count as proved.
        """
        count = states[0].shape[0] if states else 1
        lower = self.prop.lower.unsqueeze(0).expand(count, *self.prop.lower.shape)
        upper = self.prop.upper.unsqueeze(0).expand(count, *self.prop.upper.shape)
        spec = self.matrix.unsqueeze(0).expand(count, *self.matrix.shape)
        positions = self.network.relu_positions
        with torch.no_grad():
            linear, bounds = relaxed_bound(self.network, spec, lower, upper,
                                           BoundOptions(self.method, alpha_steps=self.alpha_steps),
                                           known=dict(zip(positions, states)))
            mid, rad = (upper + lower) / 2, (upper - lower) / 2
            rows = concretize(linear.coefficients, mid, rad)[0] + linear.offset_lower - self.bound
            proved_rows = rows > self.margin
            proved = per_disjunct_max(proved_rows.to(rows.dtype), self.owner, self.disjuncts) > 0
            if open_rows is not None:
                proved |= ~open_rows
            empty = torch.zeros(count, dtype=torch.bool, device=rows.device)
            for lo, up in bounds.values():
                gap = (lo - up) > EMPTY_GAP * (1 + lo.abs() + up.abs())
                empty |= gap.flatten(1).any(dim=1)
            target = self.target_rows(rows, proved)
            corner = self.corner(linear.coefficients, target, mid, rad)
            scores = self._scores(bounds, states, target)
        proved_states = states_of(bounds)
        return DomainBounds(rows, proved, empty, tuple(proved_states[p] for p in positions), scores, corner,
                            tuple(bounds[p] for p in positions))

    def target_rows(self, rows: torch.Tensor, proved: torch.Tensor) -> torch.Tensor:
        """Per domain, the row to branch on: the best row of the unproved disjunct whose best
        row is lowest (a disjunct is proved by its best row)."""
        best = per_disjunct_max(rows, self.owner, self.disjuncts)
        weakest = best.masked_fill(proved, torch.inf).argmin(dim=1)
        candidate = rows.masked_fill(self.owner.unsqueeze(0) != weakest.unsqueeze(1), -torch.inf)
        return candidate.argmax(dim=1)

    def corner(self, coefficients: torch.Tensor, target: torch.Tensor, mid: torch.Tensor,
                rad: torch.Tensor) -> torch.Tensor:
        lam = coefficients[torch.arange(len(target), device=target.device), target].reshape(mid.shape)
        return mid - rad * lam.sign()

    def _scores(self, bounds: dict[int, tuple[torch.Tensor, torch.Tensor]], states: tuple[torch.Tensor, ...],
                target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        steps, positions = self.network.steps, self.network.relu_positions
        relaxations: Relaxations = {p: relax(lo, up, lower_slope="crown") for p, (lo, up) in bounds.items()}
        relaxations.update(pool_relaxations(self.network, bounds, (self.prop.lower.unsqueeze(0),
                                                                   self.prop.upper.unsqueeze(0))))
        lam = self.matrix[target].unsqueeze(1)
        end, scores = len(steps), {}
        for p, known in zip(reversed(positions), reversed(states)):
            lam = back_substitute(steps[:end], lam, relaxations, begin=p + 1).coefficients
            lo, up = bounds[p]
            scores[p] = branching_scores(lam[:, 0], lo, up, known == 0)
            end = p + 1
        return tuple(scores[p] for p in positions)


def branching_scores(coefficient: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                     free: torch.Tensor) -> torch.Tensor:
    """BaBSR-style score per neuron (module docstring) from ``coefficient``, the coefficient
    of ``relu(z_j)`` in the row being bounded, and ``lower <= z <= upper``; ``0`` where the
    neuron is stable or not ``free`` (already split)."""
    free = unstable_mask(lower, upper) & free
    width = torch.where(free, upper - lower, torch.ones_like(lower))
    intercept = -upper * lower / width
    score = (-coefficient.clamp(max=0)) * intercept + coefficient.clamp(min=0) * torch.minimum(upper, -lower) / 4
    return torch.where(free, score + 1e-12 * width, torch.zeros_like(score))
