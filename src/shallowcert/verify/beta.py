"""beta-CROWN bounds on subdomains (Wang et al. 2021): per subdomain optimised lower slopes
(alpha) and split multipliers (beta), warm-started from the parent subdomain.

A subdomain is the box with some ReLU inputs split, ``s_j z_j(x) >= 0`` with ``s_j = 1``
(active: ``z_j >= 0``) or ``s_j = -1`` (inactive). For multipliers ``beta_j >= 0`` and every
``x`` of the subdomain::

    c · f(x) - b  >=  c · f(x) - b - sum_j beta_j s_j z_j(x)

because each ``s_j z_j(x) >= 0`` there. The right side is bounded below by back-substitution
(:func:`shallowcert.bounds.backward.back_substitute`, the multiplier term entering at each
ReLU's input) with relaxations valid on the subdomain: pre-activation bounds ``l <= z <= u``
valid on it (the parent's, which hold on every part of the parent), tightened by the split
(``l := max(l, 0)`` when active, ``u := min(u, 0)`` when inactive) so that split ReLUs are
exact, and refined in the layers after the newest split (:mod:`shallowcert.verify.refine`);
lower slopes ``alpha`` in [0, 1] on the other unstable ones. The linear function of ``x`` it
ends in is minimised over the whole box, a superset of the subdomain. So the bound holds for
*every* alpha in [0, 1] and beta >= 0: both are optimised per subdomain and row by projected
Adam, and the best bound each row reached is kept, never below the parent's (which holds on
the child too). Once every unstable neuron is split the function is affine on the
subdomain, and the optimum over beta is the LP's value (Lagrange duality), which Adam
approaches.

Warm start: a child starts from its parent's best alpha and beta (the new split's beta is the
parent's, 0, since a free neuron's multiplier gets no gradient), so its few Adam steps
continue the parent's optimisation instead of repeating it.

Branching (:meth:`SplitBounder.choose`, FSB-style, De Palma et al. 2021): the BaBSR-style
scores (:func:`shallowcert.verify.subdomain.branching_scores`) nominate a few candidates per
domain; each candidate's two children are bounded once with the parent's alpha and beta (no
optimisation, no refinement), and the candidate whose weaker child bounds highest is split.

Only the whole box is bounded with full CROWN (or alpha-CROWN); a subdomain then costs
``steps`` back-substitutions of its open rows alone, plus the refinement of the layer after
its split, instead of bounding every unstable neuron again.
"""

from __future__ import annotations

import math
import time

import torch

from shallowcert.bounds import (LinearBound, ProjectedAdam, Relaxation, back_substitute, concretize, relax, unstable_mask,
                               with_lower_slopes)
from shallowcert.verify.refine import refine_after_splits
from shallowcert.verify.subdomain import (EMPTY_GAP, DomainBounds, Inherited, SubdomainBounder, branching_scores,
                                          per_disjunct_max, repeat_domains, split_states)

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
                   rad: torch.Tensor, *, refine: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The parents' pre-activation bounds with the splits applied (``l := max(l, 0)`` where
        active, ``u := min(u, 0)`` where inactive), then refined after the shallowest new split
        (one that the parent's bounds left unstable)."""
        pre, first = [], torch.full((len(states[0]),), len(states), dtype=torch.int64, device=mid.device)
        for layer, ((lo, up), state) in enumerate(zip(parents.pre_activation, states)):
            fresh = ((state != 0) & unstable_mask(lo, up)).flatten(1).any(dim=1)
            first = torch.where(fresh & (first == len(states)), layer, first)
            pre.append((torch.where(state == 1, lo.clamp(min=0), lo), torch.where(state == -1, up.clamp(max=0), up)))
        if refine:
            pre = refine_after_splits(self.base.network, pre, first, mid, rad, depth=self.refine_depth,
                                      memory_budget=self.memory_budget)
        return pre

    def choose(self, states: tuple[torch.Tensor, ...], candidates: torch.Tensor, open_rows: torch.Tensor,
               parents: Inherited) -> torch.Tensor:
        """Per domain, the neuron to split among ``candidates`` (``(N, k)`` indices into the
        concatenated flattened ReLUs, best score first; ``-1``: none): the one whose weaker child
        gets the highest estimated bound (module docstring); ``-1`` where there is none."""
        count, k = candidates.shape
        if k == 1 or count == 0:
            return candidates[:, 0]
        children = tuple(torch.cat(layer) for layer in zip(*(split_states(states, candidates[:, j]) for j in range(k))))
        value = self._estimate(children, repeat_domains(open_rows, 2 * k),
                               parents.map(lambda t: repeat_domains(t, 2 * k))).reshape(k, 2, count)
        value = value.clamp(max=0).sum(dim=1)  # a child shown safe counts as 0, whatever its margin
        value = value.masked_fill(candidates.T < 0, -torch.inf)
        return candidates[torch.arange(count, device=candidates.device), value.argmax(dim=0)]

    def _estimate(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor, parents: Inherited) -> torch.Tensor:
        """``(N,)``: one bound with the parents' slopes and multipliers, of each domain's weakest
        open disjunct (its best row); in chunks within the memory budget."""
        size = self.domains_per_call()
        return torch.cat([self._estimate_chunk(tuple(s[i:i + size] for s in states), open_rows[i:i + size],
                                               parents.map(lambda t, i=i: t[i:i + size]))  # type: ignore[misc]
                          for i in range(0, len(open_rows), size)])

    def _estimate_chunk(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor,
                        parents: Inherited) -> torch.Tensor:
        needed = open_rows[:, self.owner].any(dim=0).nonzero().squeeze(1)
        mid, rad = self._box()
        with torch.no_grad():
            pre = self._tightened(states, parents, mid, rad, refine=False)
            relaxations, signs = self._relaxed(pre, states)
            alpha, beta = self._start(relaxations, parents, needed)
            bound = self._evaluate(relaxations, signs, alpha, beta, needed, len(open_rows))
            rows = parents.rows.clone()  # a parent's bound holds on its children
            rows[:, needed] = torch.maximum(rows[:, needed], concretize(bound.coefficients, mid, rad)[0]
                                            + bound.offset_lower - self.base.bound[needed])
            best = per_disjunct_max(rows, self.owner, self.base.disjuncts)
            return best.masked_fill(~open_rows, torch.inf).amin(dim=1)

    def _box(self) -> tuple[torch.Tensor, torch.Tensor]:
        lower, upper = self.base.prop.lower.unsqueeze(0), self.base.prop.upper.unsqueeze(0)
        return (upper + lower) / 2, (upper - lower) / 2

    def _relaxed(self, pre: list[tuple[torch.Tensor, torch.Tensor]], states: tuple[torch.Tensor, ...],
                 ) -> tuple[dict[int, Relaxation], dict[int, torch.Tensor]]:
        """CROWN relaxations from ``pre``, and per ReLU the split signs ``(N, 1, box-unstable)``
        (0 where not split)."""
        relaxations, signs = {}, {}
        for p, (lo, up), index, state in zip(self.positions, pre, self.unstable, states):
            relaxations[p] = relax(lo, up, lower_slope="crown")
            signs[p] = state.flatten(1)[:, index].to(lo.dtype).unsqueeze(1)
        return relaxations, signs

    def _start(self, relaxations: dict[int, Relaxation], parents: Inherited, needed: torch.Tensor,
               ) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        """Starting alpha and beta ``(N, needed rows, box-unstable)`` per ReLU: the parents'
        (warm start), else CROWN's slopes and zero multipliers."""
        if parents.alpha:
            dtype = next(iter(relaxations.values())).lower_slope.dtype
            return ({p: a[:, needed].to(dtype) for p, a in zip(relaxations, parents.alpha)},
                    {p: b[:, needed].to(dtype) for p, b in zip(relaxations, parents.beta)})
        alpha = {p: r.lower_slope.flatten(2)[:, :, index].expand(-1, len(needed), -1).clone()
                 for (p, r), index in zip(relaxations.items(), self.unstable)}
        return alpha, {p: torch.zeros_like(a) for p, a in alpha.items()}

    def _evaluate(self, relaxations: dict[int, Relaxation], signs: dict[int, torch.Tensor],
                  alpha: dict[int, torch.Tensor], beta: dict[int, torch.Tensor], needed: torch.Tensor, count: int,
                  record: dict[int, torch.Tensor] | None = None) -> LinearBound:
        """The back-substituted bound of the ``needed`` rows with slopes ``alpha`` and split
        terms ``-beta * sign`` at each ReLU's input."""
        spec = self.base.matrix[needed].unsqueeze(0).expand(count, -1, -1)
        full_slopes, terms = {}, {}
        for (p, r), index in zip(relaxations.items(), self.unstable):
            shape = (count, len(needed), *r.lower_slope.shape[2:])
            full_slopes[p] = with_lower_slopes(r, r.lower_slope.flatten(2).expand(shape[0], shape[1], -1)
                                               .index_copy(2, index, alpha[p]).reshape(shape))
            terms[p] = spec.new_zeros(shape[0], shape[1], math.prod(shape[2:])) \
                .index_copy(2, index, -beta[p] * signs[p]).reshape(shape)
        return back_substitute(self.base.network.steps, spec, full_slopes, extra=terms, record=record)

    def _bound(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor, parents: Inherited) -> DomainBounds:
        base, count = self.base, states[0].shape[0]
        needed = open_rows[:, self.owner].any(dim=0).nonzero().squeeze(1)
        shift = base.bound[needed]
        mid, rad = self._box()
        with torch.no_grad():
            pre = self._tightened(states, parents, mid, rad, refine=self.refine_depth > 0)
        empty = torch.zeros(count, dtype=torch.bool, device=mid.device)
        for lo, up in pre:
            empty |= ((lo - up) > EMPTY_GAP * (1 + lo.abs() + up.abs())).flatten(1).any(dim=1)
        relaxations, signs = self._relaxed(pre, states)
        alpha, beta = self._start(relaxations, parents, needed)
        best_alpha = {p: a.clone() for p, a in alpha.items()}
        best_beta = {p: b.clone() for p, b in beta.items()}
        best = torch.full((count, len(needed)), -torch.inf, dtype=mid.dtype, device=mid.device)
        best_lam = torch.zeros((count, len(needed), *mid.shape[1:]), dtype=mid.dtype, device=mid.device)
        # the domains still optimised (the others are proved or empty), with their relaxations and optimisers
        active = torch.arange(count, device=mid.device)
        live_relaxations, live_signs = relaxations, signs
        slopes = ProjectedAdam([a.requires_grad_(True) for a in alpha.values()], lr=self.alpha_lr, low=0.0, high=1.0)
        multipliers = ProjectedAdam([b.requires_grad_(True) for b in beta.values()], lr=self.beta_lr, low=0.0)
        record: dict[int, torch.Tensor] = {}
        with torch.enable_grad():
            for step in range(self.steps + 1):
                alpha, beta = dict(zip(relaxations, slopes.parameters)), dict(zip(relaxations, multipliers.parameters))
                record = {}
                bound = self._evaluate(live_relaxations, live_signs, alpha, beta, needed, len(active), record)
                value = concretize(bound.coefficients, mid, rad)[0] + bound.offset_lower - shift
                with torch.no_grad():
                    improved = value > best[active]
                    best[active] = torch.where(improved, value, best[active])
                    best_lam[active] = torch.where(improved.reshape(*improved.shape, *[1] * (mid.dim() - 1)),
                                                   bound.coefficients, best_lam[active])
                    for p in relaxations:
                        best_alpha[p][active] = torch.where(improved.unsqueeze(2), alpha[p], best_alpha[p][active])
                        best_beta[p][active] = torch.where(improved.unsqueeze(2), beta[p], best_beta[p][active])
                    done = self._proved(best[active], needed, open_rows[active]).all(dim=1) | empty[active]
                if step == self.steps or bool(done.all()) or time.monotonic() > self.deadline:
                    break
                gradients = torch.autograd.grad(-value.masked_fill(best[active] > self.margin, 0.0).sum(),
                                                [*alpha.values(), *beta.values()], allow_unused=True)
                slopes.step(list(gradients[:len(alpha)]))
                multipliers.step(list(gradients[len(alpha):]))
                if bool(done.any()):
                    keep = (~done).nonzero().squeeze(1)
                    active, slopes, multipliers = active[keep], slopes.select(keep), multipliers.select(keep)
                    live_relaxations = {p: Relaxation(r.lower_slope[keep], r.upper_slope[keep], r.upper_intercept[keep])
                                        for p, r in live_relaxations.items()}
                    live_signs = {p: sign[keep] for p, sign in live_signs.items()}
        with torch.no_grad():
            rows = parents.rows.clone()  # a parent's bound holds on its children
            rows[:, needed] = torch.maximum(best, rows[:, needed])
            proved = self._proved(rows[:, needed], needed, open_rows)
            target = base.target_rows(rows, proved)
            local = (needed.unsqueeze(0) == target.unsqueeze(1)).float().argmax(dim=1)
            corner = base.corner(best_lam, local, mid.expand(count, *mid.shape[1:]),
                                 rad.expand(count, *rad.shape[1:]))
            scores = []
            for p, (lo, up), state in zip(self.positions, pre, states):
                coefficient = torch.zeros_like(lo)  # proved domains are not split again
                coefficient[active] = record[p][torch.arange(len(active), device=mid.device), local[active]].detach()
                scores.append(branching_scores(coefficient, lo, up, state == 0))
            kept_alpha, kept_beta = self._kept(relaxations, parents, needed, best_alpha, best_beta)
        return DomainBounds(rows, proved, empty, states, tuple(scores), corner, tuple(pre), kept_alpha, kept_beta)

    def _kept(self, relaxations: dict[int, Relaxation], parents: Inherited, needed: torch.Tensor,
              alpha: dict[int, torch.Tensor], beta: dict[int, torch.Tensor],
              ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """The slopes and multipliers the domains hand on, every row's, in float32 (any slope in
        [0, 1] and multiplier >= 0 is sound, and rounding keeps them there): the optimised ones
        on the ``needed`` rows, the parents' (or CROWN's, and 0) on the others."""
        every = torch.arange(len(self.owner), device=needed.device)
        start_alpha, start_beta = self._start(relaxations, parents, every) if len(needed) < len(every) else (alpha, beta)
        kept = []
        for start, optimised in ((start_alpha, alpha), (start_beta, beta)):
            layers = []
            for p in relaxations:
                full = start[p].to(torch.float32, copy=True)
                full[:, needed] = optimised[p].to(torch.float32)
                layers.append(full)
            kept.append(tuple(layers))
        return kept[0], kept[1]

    def _proved(self, values: torch.Tensor, needed: torch.Tensor, open_rows: torch.Tensor) -> torch.Tensor:
        """``(N, K)``: disjuncts closed on the parent or with a computed row above the margin."""
        hits = torch.zeros((len(values), len(self.owner)), dtype=values.dtype, device=values.device)
        hits[:, needed] = (values > self.margin).to(values.dtype)
        return (per_disjunct_max(hits, self.owner, self.base.disjuncts) > 0) | ~open_rows

