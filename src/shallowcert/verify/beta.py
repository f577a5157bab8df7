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
neuron again — what makes deep networks' branch and bound affordable. Max pools are never
split: they keep the CROWN lines of the subdomain's ReLU bounds
(:func:`shallowcert.bounds.intermediate.pool_relaxations`), so a subdomain whose ReLUs are all
split is exact only when every pool window is stable.
"""

from __future__ import annotations

import math
import time

import torch

from shallowcert.bounds import (ProjectedAdam, back_substitute, concretize, pool_relaxations, relax, unstable_mask,
                                with_lower_slopes)
from shallowcert.verify.subdomain import DomainBounds, SubdomainBounder, branching_scores, per_disjunct_max

MEMORY_BUDGET = 1 << 29  # bytes of slopes, multipliers and optimiser state per engine call


class SplitBounder:
    """Bounds subdomains of ``base``'s property with beta-CROWN (module docstring), reusing
    ``root``'s pre-activation bounds (one domain: the whole box). ``steps``: Adam steps per
    call (fewer once every domain is proved, or past ``deadline``, a ``time.monotonic()``
    value: the bounds reached so far hold)."""

    def __init__(self, base: SubdomainBounder, root: DomainBounds, *, steps: int = 20, alpha_lr: float = 0.1,
                 beta_lr: float = 0.05, memory_budget: int = MEMORY_BUDGET, deadline: float = math.inf) -> None:
        self.base, self.owner, self.margin = base, base.owner, base.margin
        self.steps, self.alpha_lr, self.beta_lr, self.memory_budget = steps, alpha_lr, beta_lr, memory_budget
        self.positions = base.network.relu_positions
        self.box_bounds = tuple((lo[0].detach(), up[0].detach()) for lo, up in root.pre_activation)
        self.unstable = tuple(unstable_mask(lo, up).flatten().nonzero().squeeze(1) for lo, up in self.box_bounds)
        self.neurons = sum(len(index) for index in self.unstable)
        self.width = sum(lo.numel() for lo, _ in self.box_bounds)
        self.deadline = deadline

    def free_states(self, count: int) -> tuple[torch.Tensor, ...]:
        return self.base.free_states(count)

    def bound_domains(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor | None = None,
                      ) -> DomainBounds:
        """Bounds of the subdomains split by ``states`` (one int8 tensor ``(N, *shape)`` per ReLU:
        ``1`` active, ``-1`` inactive, ``0`` free); ``open_rows`` as in
        :meth:`SubdomainBounder.bound_domains`. Processed in chunks within the memory budget."""
        count = states[0].shape[0]
        if open_rows is None:
            open_rows = torch.ones(count, self.base.disjuncts, dtype=torch.bool, device=states[0].device)
        rows = int(open_rows[:, self.owner].any(dim=0).sum()) or 1
        per_domain = rows * (8 * self.neurons + 4 * self.width + 4 * self.base.prop.lower.numel()) * 8
        size = max(1, self.memory_budget // per_domain)
        parts = [self._bound(tuple(s[i:i + size] for s in states), open_rows[i:i + size])
                 for i in range(0, count, size)]
        if len(parts) == 1:
            return parts[0]
        cat_rows, cat_proved, cat_empty = (torch.cat([getattr(p, name) for p in parts])
                                           for name in ("rows", "proved", "empty"))
        cat_states, cat_scores = (tuple(torch.cat(layer) for layer in zip(*(getattr(p, name) for p in parts)))
                                  for name in ("states", "scores"))
        return DomainBounds(
            cat_rows, cat_proved, cat_empty, cat_states, cat_scores, torch.cat([p.corner for p in parts]),
            tuple((torch.cat([p.pre_activation[i][0] for p in parts]), torch.cat([p.pre_activation[i][1] for p in parts]))
                  for i in range(len(self.positions))))

    def _bound(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor) -> DomainBounds:
        base, count = self.base, states[0].shape[0]
        needed = open_rows[:, self.owner].any(dim=0).nonzero().squeeze(1)
        spec = base.matrix[needed].unsqueeze(0).expand(count, -1, -1)
        shift = base.bound[needed]
        lower, upper = base.prop.lower.unsqueeze(0), base.prop.upper.unsqueeze(0)
        mid, rad = (upper + lower) / 2, (upper - lower) / 2
        pre, relaxations, signs = [], {}, {}
        for p, (box_lo, box_up), index, state in zip(self.positions, self.box_bounds, self.unstable, states):
            lo = torch.where(state == 1, box_lo.clamp(min=0), box_lo.expand_as(state))
            up = torch.where(state == -1, box_up.clamp(max=0), box_up.expand_as(state))
            pre.append((lo, up))
            relaxations[p] = relax(lo, up, lower_slope="crown")
            signs[p] = state.flatten(1)[:, index].to(lo.dtype).unsqueeze(1)  # 0 where not split
        pools = pool_relaxations(base.network, dict(zip(self.positions, pre)), (lower, upper))  # never split
        # one slope and one multiplier per domain, row and neuron unstable on the box
        alpha = {p: r.lower_slope.flatten(2)[:, :, index].expand(-1, len(needed), -1).clone()
                 for (p, r), index in zip(relaxations.items(), self.unstable)}
        beta = {p: torch.zeros_like(alpha[p]) for p in relaxations}
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
                    terms[p] = spec.new_zeros(shape[0], shape[1], math.prod(shape[2:])) \
                        .index_copy(2, index, -beta[p] * signs[p]).reshape(shape)
                bound = back_substitute(base.network.steps, spec, {**full_slopes, **pools}, extra=terms, record=record)
                value = concretize(bound.coefficients, mid, rad)[0] + bound.offset_lower - shift
                with torch.no_grad():
                    improved = value > best
                    best = torch.where(improved, value, best)
                    best_lam = torch.where(improved.reshape(*improved.shape, *[1] * (mid.dim() - 1)),
                                           bound.coefficients, best_lam)
                    settled = self._proved(best, needed, open_rows).all()
                if step == self.steps or bool(settled) or time.monotonic() > self.deadline:
                    break
                gradients = torch.autograd.grad(-value.masked_fill(best > self.margin, 0.0).sum(),
                                                [*alpha.values(), *beta.values()], allow_unused=True)
                slopes.step(list(gradients[:len(alpha)]))
                multipliers.step(list(gradients[len(alpha):]))
        with torch.no_grad():
            rows = torch.full((count, len(self.owner)), -torch.inf, dtype=best.dtype, device=best.device)
            rows[:, needed] = best
            proved = self._proved(best, needed, open_rows)
            target = base.target_rows(rows, proved)
            local = (needed.unsqueeze(0) == target.unsqueeze(1)).float().argmax(dim=1)
            corner = base.corner(best_lam, local, mid.expand(count, *mid.shape[1:]),
                                 rad.expand(count, *rad.shape[1:]))
            index = torch.arange(count, device=local.device)
            scores = tuple(branching_scores(record[p][index, local].detach(), lo, up, state == 0)
                           for p, (lo, up), state in zip(self.positions, pre, states))
        empty = torch.zeros(count, dtype=torch.bool, device=best.device)
        return DomainBounds(rows, proved, empty, states, scores, corner, tuple(pre))

    def _proved(self, values: torch.Tensor, needed: torch.Tensor, open_rows: torch.Tensor) -> torch.Tensor:
        """``(N, K)``: disjuncts closed on the parent or with a computed row above the margin."""
        hits = torch.zeros((len(values), len(self.owner)), dtype=values.dtype, device=values.device)
        hits[:, needed] = (values > self.margin).to(values.dtype)
        return (per_disjunct_max(hits, self.owner, self.base.disjuncts) > 0) | ~open_rows

