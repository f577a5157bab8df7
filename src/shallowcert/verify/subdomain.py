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

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import nn

from shallowcert.bounds import (BoundOptions, Network, Relaxations, as_relu, back_substitute, concretize,
                                pool_relaxations, read_network, relax, relaxed_bound, states_of, unstable_mask)
from shallowcert.certify.precision import rounding_margin
from shallowcert.verify.property import Property

EMPTY_GAP = 1e-9  # crossing bounds must cross by this much (relative to their size) to count as empty


Tree = torch.Tensor | tuple["Tree", ...]


def tree_map(function: Callable[[torch.Tensor], torch.Tensor], tree: Tree) -> Tree:
    """``function`` applied to every tensor of a nested tuple of tensors."""
    return function(tree) if isinstance(tree, torch.Tensor) else tuple(tree_map(function, t) for t in tree)


def tree_cat(trees: list[Tree]) -> Tree:
    """Nested tuples of the same structure, their tensors concatenated along dim 0."""
    first = trees[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(trees)  # type: ignore[arg-type]
    return tuple(tree_cat([t[i] for t in trees]) for i in range(len(first)))


def repeat_domains(tensor: torch.Tensor, times: int) -> torch.Tensor:
    """``tensor`` stacked ``times`` times along dim 0 (children: all first ones, then all second ones)."""
    return tensor.repeat(times, *[1] * (tensor.dim() - 1))


@dataclass(frozen=True)
class Inherited:
    """What a subdomain hands its children, which lie inside it: ``rows (N, R)``, lower bounds
    of its unsafe rows (valid on every child); ``pre_activation``, per ReLU, bounds of its input
    (valid on every child); ``alpha`` and ``beta``, per ReLU, its optimised lower slopes and split
    multipliers ``(N, R, neurons unstable on the box)`` (empty tuples: none), a warm start."""

    rows: torch.Tensor
    pre_activation: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    alpha: tuple[torch.Tensor, ...] = ()
    beta: tuple[torch.Tensor, ...] = ()

    def map(self, function: Callable[[torch.Tensor], torch.Tensor]) -> Inherited:
        """The same fields with ``function`` applied to every tensor (e.g. selecting domains)."""
        return Inherited(*(tree_map(function, getattr(self, f.name)) for f in fields(self)))  # type: ignore[arg-type]

    @staticmethod
    def cat(parts: list[Inherited]) -> Inherited:
        """The domains of ``parts``, in order, as one (every part with the same fields filled)."""
        return Inherited(*(tree_cat([getattr(p, f.name) for p in parts]) for f in fields(Inherited)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class DomainBounds:
    """Bounds of ``N`` subdomains: ``rows (N, R)`` lower bounds of ``A y - b``; ``proved (N, K)``
    disjuncts shown unreachable; ``empty (N,)``; ``states`` per ReLU (int8, split and proved);
    ``scores`` per ReLU (``0`` where a neuron cannot be split); ``corner (N, *input shape)``;
    ``pre_activation``: per ReLU, the ``(lower, upper)`` bounds of its input on each subdomain;
    ``alpha``, ``beta``: the optimised slopes and multipliers, as in :class:`Inherited`."""

    rows: torch.Tensor
    proved: torch.Tensor
    empty: torch.Tensor
    states: tuple[torch.Tensor, ...]
    scores: tuple[torch.Tensor, ...]
    corner: torch.Tensor
    pre_activation: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    alpha: tuple[torch.Tensor, ...] = ()
    beta: tuple[torch.Tensor, ...] = ()

    @property
    def verified(self) -> torch.Tensor:
        """Bool ``(N,)``: no input of the subdomain is unsafe."""
        return self.empty | self.proved.all(dim=1)

    @property
    def inherited(self) -> Inherited:
        """What the subdomains hand their children."""
        return Inherited(self.rows, self.pre_activation, self.alpha, self.beta)

    @staticmethod
    def cat(parts: list[DomainBounds]) -> DomainBounds:
        """The domains of ``parts``, in order, as one."""
        if len(parts) == 1:
            return parts[0]
        return DomainBounds(*(tree_cat([getattr(p, f.name) for p in parts])  # type: ignore[arg-type]
                              for f in fields(DomainBounds)))


def per_disjunct_max(rows: torch.Tensor, owner: torch.Tensor, disjuncts: int) -> torch.Tensor:
    """``(N, K)``: the largest of each disjunct's rows in ``rows (N, R)`` (``owner (R,)``)."""
    member = owner.unsqueeze(1) == torch.arange(disjuncts, device=owner.device)  # (R, K)
    return rows.unsqueeze(2).masked_fill(~member, -torch.inf).amax(dim=1)


def split_states(states: tuple[torch.Tensor, ...], neuron: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Two children per parent: ``neuron`` (an index into the concatenated flattened ReLUs)
    fixed active in the first half, inactive in the second."""
    children = []
    offset = 0
    rows = torch.arange(len(neuron), device=neuron.device)
    for layer in states:
        size = layer[0].numel()
        flat = layer.flatten(1).repeat(2, 1)
        inside = (neuron >= offset) & (neuron < offset + size)
        local = (neuron - offset)[inside]
        picked = rows[inside]
        flat[picked, local] = 1
        flat[picked + len(neuron), local] = -1
        children.append(flat.reshape(2 * len(neuron), *layer.shape[1:]))
        offset += size
    return tuple(children)


class SubdomainBounder:
    """Bounds ``prop``'s rows on subdomains of its box for ``model`` (read once, in ``dtype``)."""

    def __init__(self, model: nn.Module, prop: Property, *, method: str = "crown", alpha_steps: int = 20,
                 dtype: torch.dtype = torch.float64) -> None:
        self.prop = prop.to(dtype=dtype)
        self.model = model
        self.network: Network = read_network(model, tuple(prop.lower.shape), dtype)
        self._networks: dict[torch.dtype, Network] = {dtype: self.network}
        self.method, self.alpha_steps = method, alpha_steps
        self.matrix, self.bound, self.owner = self.prop.rows()
        self.disjuncts = len(prop.unsafe)
        with torch.no_grad():
            centre = model((self.prop.lower + self.prop.upper).unsqueeze(0) / 2)
        self.scale = torch.cat([centre.to(dtype).flatten(), self.bound.abs()]).unsqueeze(0)
        self.margin = self.margin_in(dtype)
        self.shapes = [as_relu(self.network.steps[p]).shape for p in self.network.relu_positions]

    def margin_in(self, dtype: torch.dtype) -> float:
        """The rounding margin (:func:`shallowcert.certify.precision.rounding_margin`) of a row
        computed in ``dtype``, at the scale of the property's logits and thresholds."""
        return float(rounding_margin(self.scale.to(dtype))[0])

    def network_in(self, dtype: torch.dtype) -> Network:
        """The network read in ``dtype`` (read once; its tensors record no gradient)."""
        if dtype not in self._networks:
            with torch.no_grad():
                self._networks[dtype] = read_network(self.model, tuple(self.prop.lower.shape), dtype)
        return self._networks[dtype]

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
