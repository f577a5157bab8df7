"""beta-CROWN bounds on subdomains (Wang et al. 2021): the whole box's intermediate bounds,
kept fixed, and per subdomain optimised lower slopes (alpha) and split multipliers (beta).

A subdomain is the box with some ReLU inputs split, ``s_j z_j(x) >= 0`` with ``s_j = 1``
(active: ``z_j >= 0``) or ``s_j = -1`` (inactive). For multipliers ``beta_j >= 0`` and every
``x`` of the subdomain::

    c · f(x) - b  >=  c · f(x) - b - sum_j beta_j s_j z_j(x)

because each ``s_j z_j(x) >= 0`` there. The right side is bounded below by back-substitution
(:func:`shallowcert.bounds.backward.back_substitute`, the multiplier term entering at each
ReLU's input) with relaxations valid on the subdomain: the whole box's pre-activation bounds
``l <= z <= u`` (valid on every part of it), tightened by the split (``l := max(l, 0)`` when
active, ``u := min(u, 0)`` when inactive) so that split ReLUs are exact, and lower slopes
``alpha`` in [0, 1] on the other unstable ones. The linear function of ``x`` it ends in is
minimised over the whole box, a superset of the subdomain. So the bound holds for *every*
alpha in [0, 1] and beta >= 0: both are optimised per subdomain and row by projected Adam,
and the best bound each row reached is kept. Once every unstable neuron is split the
function is affine on the subdomain, and the optimum over beta is the LP's value (Lagrange
duality), which Adam approaches.

Only the whole box is bounded with full CROWN (or alpha-CROWN); a subdomain then costs
``steps`` back-substitutions of its open rows alone, instead of bounding every unstable
neuron again — what makes deep networks' branch and bound affordable.
"""

from __future__ import annotations

import math
import time

import torch

from shallowcert.bounds.adam import ProjectedAdam
from shallowcert.bounds.backward import back_substitute, concretize
from shallowcert.bounds.relaxation import relax, unstable_mask, with_lower_slopes
from shallowcert.verify.refine import refine_after_splits
from shallowcert.verify.subdomain import (EMPTY_GAP, DomainBounds, Inherited, SubdomainBounder, branching_scores,
                                          per_disjunct_max)

MEMORY_BUDGET = 1 << 29  # bytes of slopes, multipliers and optimiser state per engine call
REFINE_DEPTH = 1  # ReLU layers after a new split whose bounds are refined (shallowcert.verify.refine)


class SplitBounder:
    """Bounds subdomains of ``base``'s property with beta-CROWN (module docstring), starting
    from ``root``'s pre-activation bounds (one domain: the whole box). ``steps``: Adam steps per
    call (fewer once every domain is proved, or past ``deadline``, a ``time.monotonic()``
    value: the bounds reached so far hold). ``refine_depth``: layers after each new split whose
    bounds are tightened first (:mod:`shallowcert.verify.refine`; 0: keep the parent's)."""

    def __init__(self, base: SubdomainBounder, root: DomainBounds, *, steps: int = 20, alpha_lr: float = 0.1,
                 beta_lr: float = 0.05, memory_budget: int = MEMORY_BUDGET, deadline: float = math.inf,
                 refine_depth: int = REFINE_DEPTH) -> None:
        self.base, self.owner, self.margin = base, base.owner, base.margin
        self.steps, self.alpha_lr, self.beta_lr, self.memory_budget = steps, alpha_lr, beta_lr, memory_budget
        self.positions = base.network.relu_positions
        self.root = Inherited(root.rows[:1], tuple((lo[:1].detach(), up[:1].detach()) for lo, up in root.pre_activation))
        self.unstable = tuple(unstable_mask(lo[0], up[0]).flatten().nonzero().squeeze(1)
                              for lo, up in self.root.pre_activation)
        self.neurons = sum(len(index) for index in self.unstable)
        self.width = sum(lo[0].numel() for lo, _ in self.root.pre_activation)
        self.deadline, self.refine_depth = deadline, refine_depth

    def free_states(self, count: int) -> tuple[torch.Tensor, ...]:
        return self.base.free_states(count)

    def domains_per_call(self, rows: int | None = None) -> int:
        """How many domains one optimisation over ``rows`` rows (default: all) keeps within the
        memory budget: slopes, multipliers and Adam's moments per neuron unstable on the box,
        coefficients per ReLU and input value, for every row, in float64, with autograd's copies."""
        rows = len(self.owner) if rows is None else max(1, rows)
        per_domain = rows * (8 * self.neurons + 4 * self.width + 4 * self.base.prop.lower.numel()) * 8
        return max(1, self.memory_budget // per_domain)

    def bound_domains(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor | None = None,
                      parents: Inherited | None = None) -> DomainBounds:
        """Bounds of the subdomains split by ``states`` (one int8 tensor ``(N, *shape)`` per ReLU:
        ``1`` active, ``-1`` inactive, ``0`` free); ``open_rows`` as in
        :meth:`SubdomainBounder.bound_domains`; ``parents``: what each domain's parent handed
        it (its bounds and a warm start; default: the whole box's, a cold start). Processed in
        chunks within the memory budget."""
        count = states[0].shape[0]
        if open_rows is None:
            open_rows = torch.ones(count, self.base.disjuncts, dtype=torch.bool, device=states[0].device)
        if parents is None:
            parents = self.root.map(lambda t: t.expand(count, *t.shape[1:]))
        size = self.domains_per_call(int(open_rows[:, self.owner].any(dim=0).sum()))
        return DomainBounds.cat([self._bound(tuple(s[i:i + size] for s in states), open_rows[i:i + size],
                                             parents.map(lambda t, i=i: t[i:i + size]))  # type: ignore[misc]
                                 for i in range(0, count, size)])

    def _tightened(self, states: tuple[torch.Tensor, ...], parents: Inherited, mid: torch.Tensor,
                   rad: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The parents' pre-activation bounds with the splits applied (``l := max(l, 0)`` where
        active, ``u := min(u, 0)`` where inactive), then refined after the newest split."""
        pre, newest = [], torch.full((len(states[0]),), -1, dtype=torch.int64, device=mid.device)
        for layer, ((lo, up), state) in enumerate(zip(parents.pre_activation, states)):
            fresh = ((state != 0) & unstable_mask(lo, up)).flatten(1).any(dim=1)
            newest = torch.where(fresh, layer, newest)
            pre.append((torch.where(state == 1, lo.clamp(min=0), lo), torch.where(state == -1, up.clamp(max=0), up)))
        if self.refine_depth > 0:
            pre = refine_after_splits(self.base.network, pre, newest, mid, rad, depth=self.refine_depth,
                                      memory_budget=self.memory_budget)
        return pre

    def _bound(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor, parents: Inherited) -> DomainBounds:
        base, count = self.base, states[0].shape[0]
        needed = open_rows[:, self.owner].any(dim=0).nonzero().squeeze(1)
        spec = base.matrix[needed].unsqueeze(0).expand(count, -1, -1)
        shift = base.bound[needed]
        lower, upper = base.prop.lower.unsqueeze(0), base.prop.upper.unsqueeze(0)
        mid, rad = (upper + lower) / 2, (upper - lower) / 2
        pre = self._tightened(states, parents, mid, rad)
        empty = torch.zeros(count, dtype=torch.bool, device=mid.device)
        for lo, up in pre:
            empty |= ((lo - up) > EMPTY_GAP * (1 + lo.abs() + up.abs())).flatten(1).any(dim=1)
        relaxations, signs = {}, {}
        for p, (lo, up), index, state in zip(self.positions, pre, self.unstable, states):
            relaxations[p] = relax(lo, up, lower_slope="crown")
            signs[p] = state.flatten(1)[:, index].to(lo.dtype).unsqueeze(1)  # 0 where not split
        # one slope and one multiplier per domain, row and neuron unstable on the box
        start = {p: r.lower_slope.flatten(2)[:, :, index].expand(-1, len(self.owner), -1)
                 for (p, r), index in zip(relaxations.items(), self.unstable)}
        if parents.alpha:
            start = {p: old.to(mid.dtype) for p, old in zip(relaxations, parents.alpha)}
        alpha = {p: slope[:, needed].clone() for p, slope in start.items()}
        beta = {p: torch.zeros_like(alpha[p]) for p in relaxations} if not parents.beta else \
            {p: old[:, needed].to(mid.dtype) for p, old in zip(relaxations, parents.beta)}
        best_alpha = {p: a.clone() for p, a in alpha.items()}
        best_beta = {p: b.clone() for p, b in beta.items()}
        best = torch.full((count, len(needed)), -torch.inf, dtype=mid.dtype, device=mid.device)
        best_lam = torch.zeros((count, len(needed), *mid.shape[1:]), dtype=mid.dtype, device=mid.device)
        record: dict[int, torch.Tensor] = {}
        slopes = ProjectedAdam(list(alpha.values()), lr=self.alpha_lr, low=0.0, high=1.0)
        multipliers = ProjectedAdam(list(beta.values()), lr=self.beta_lr, low=0.0)
        with torch.enable_grad():
            for x in (*alpha.values(), *beta.values()):
                x.requires_grad_(True)
            for step in range(self.steps + 1):
                record = {}
                full_slopes, terms = {}, {}
                for (p, r), index in zip(relaxations.items(), self.unstable):
                    shape = (count, len(needed), *r.lower_slope.shape[2:])
                    full_slopes[p] = with_lower_slopes(r, r.lower_slope.flatten(2).expand(shape[0], shape[1], -1)
                                                       .index_copy(2, index, alpha[p]).reshape(shape))
                    terms[p] = spec.new_zeros(shape[0], shape[1], index.new_tensor(shape[2:]).prod()) \
                        .index_copy(2, index, -beta[p] * signs[p]).reshape(shape)
                bound = back_substitute(base.network.steps, spec, full_slopes, extra=terms, record=record)
                value = concretize(bound.coefficients, mid, rad)[0] + bound.offset_lower - shift
                with torch.no_grad():
                    improved = value > best
                    best = torch.where(improved, value, best)
                    best_lam = torch.where(improved.reshape(*improved.shape, *[1] * (mid.dim() - 1)),
                                           bound.coefficients, best_lam)
                    for p in relaxations:
                        best_alpha[p] = torch.where(improved.unsqueeze(2), alpha[p], best_alpha[p])
                        best_beta[p] = torch.where(improved.unsqueeze(2), beta[p], best_beta[p])
                    settled = self._proved(best, needed, open_rows).all()
                if step == self.steps or bool(settled) or time.monotonic() > self.deadline:
                    break
                gradients = torch.autograd.grad(-value.masked_fill(best > self.margin, 0.0).sum(),
                                                [*alpha.values(), *beta.values()], allow_unused=True)
                slopes.step(list(gradients[:len(alpha)]))
                multipliers.step(list(gradients[len(alpha):]))
        with torch.no_grad():
            rows = parents.rows.clone()  # a parent's bound holds on its children
            rows[:, needed] = torch.maximum(best, rows[:, needed])
            proved = self._proved(rows[:, needed], needed, open_rows)
            target = base.target_rows(rows, proved)
            local = (needed.unsqueeze(0) == target.unsqueeze(1)).float().argmax(dim=1)
            corner = base.corner(best_lam, local, mid.expand(count, *mid.shape[1:]),
                                 rad.expand(count, *rad.shape[1:]))
            index = torch.arange(count, device=local.device)
            scores = tuple(branching_scores(record[p][index, local].detach(), lo, up, state == 0)
                           for p, (lo, up), state in zip(self.positions, pre, states))
            kept_alpha = tuple(_stored(start[p], best_alpha[p], needed) for p in relaxations)
            kept_beta = tuple(_stored(torch.zeros_like(start[p]) if not parents.beta else parents.beta[i],
                                      best_beta[p], needed) for i, p in enumerate(relaxations))
        return DomainBounds(rows, proved, empty, states, scores, corner, tuple(pre), kept_alpha, kept_beta)

    def _proved(self, values: torch.Tensor, needed: torch.Tensor, open_rows: torch.Tensor) -> torch.Tensor:
        """``(N, K)``: disjuncts closed on the parent or with a computed row above the margin."""
        hits = torch.zeros((len(values), len(self.owner)), dtype=values.dtype, device=values.device)
        hits[:, needed] = (values > self.margin).to(values.dtype)
        return (per_disjunct_max(hits, self.owner, self.base.disjuncts) > 0) | ~open_rows


def _stored(previous: torch.Tensor, optimised: torch.Tensor, needed: torch.Tensor) -> torch.Tensor:
    """The slopes or multipliers kept for the children, in float32 (any slope in [0, 1] and any
    multiplier >= 0 is sound, and rounding keeps them there): ``optimised`` on the ``needed``
    rows, ``previous`` on the others."""
    kept = previous.to(torch.float32).clone()
    kept[:, needed] = optimised.to(torch.float32)
    return kept
