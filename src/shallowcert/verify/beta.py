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
exact, and, on networks without convolutions (:func:`convolutional`), refined in the layers
after the newest split (:mod:`shallowcert.verify.refine`);
lower slopes ``alpha`` in [0, 1] on the other unstable ones. The linear function of ``x`` it
ends in is minimised over the whole box, a superset of the subdomain. So the bound holds for
*every* alpha in [0, 1] and beta >= 0: both are optimised per subdomain and row by projected
Adam, and the best bound each row reached is kept, never below the parent's (which holds on
the child too). Once every unstable neuron is split the function is affine on the
subdomain, and the optimum over beta is the LP's value (Lagrange duality), which Adam
approaches.

Precision: the optimisation is a search, run in ``search_dtype`` (float32 by default: 1.4x to
1.9x the subdomains per second of float64 on one CPU thread, mnist_fc 256x4); the bound a
domain reports is one more back-substitution in the bounder's dtype (float64) with the best
slopes and multipliers found, on the same float64 pre-activation bounds. A domain stops
early once its float32 rows pass the margin by float32's own rounding margin, so the float64
re-evaluation almost always confirms it; where it does not, the domain stays open.

Warm start: a child starts from its parent's best alpha and beta (the new split's beta is the
parent's, 0, since a free neuron's multiplier gets no gradient), so its few Adam steps
continue the parent's optimisation instead of repeating it.

Branching (:meth:`SplitBounder.choose`, FSB-style, De Palma et al. 2021): the BaBSR-style
scores (:func:`shallowcert.verify.subdomain.branching_scores`) nominate a few candidates per
domain; each candidate's two children are bounded once with the parent's alpha and beta (no
optimisation, no refinement), and the candidate whose weaker child bounds highest is split.

Only the whole box is bounded with full CROWN (or alpha-CROWN); a subdomain then costs
``steps`` back-substitutions of its open rows alone, plus any refinement of the layer after
its split, instead of bounding every unstable neuron again. Max pools are never split: they
keep the CROWN lines of the subdomain's ReLU bounds
(:func:`shallowcert.bounds.intermediate.pool_relaxations`), so a subdomain whose ReLUs are all
split is exact only when every pool window is stable.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import TypeVar

import torch

from shallowcert.bounds import (LinearBound, Network, ProjectedAdam, Relaxation, Relaxations, back_substitute,
                                concretize, pool_relaxations, relax, unstable_mask, with_lower_slopes)
from shallowcert.bounds.affine import ConvMap
from shallowcert.bounds.maxpool import PoolRelaxation
from shallowcert.verify.refine import refine_after_splits
from shallowcert.verify.subdomain import (EMPTY_GAP, DomainBounds, Inherited, SubdomainBounder, branching_scores,
                                          per_disjunct_max, repeat_domains, split_states)

MEMORY_BUDGET = 1 << 29  # bytes of slopes, multipliers and optimiser state per engine call
REFINE_DEPTH = 1  # ReLU layers after a new split whose bounds are refined (shallowcert.verify.refine)
STEPS = 20  # Adam steps per subdomain bound (fewer once every domain is proved)
CONV_STEPS = 10  # the same on networks with convolutions (:func:`convolutional`)
SEARCH_DTYPE = torch.float32  # of the slope and multiplier optimisation (module docstring)

Lines = TypeVar("Lines", Relaxation, PoolRelaxation)


def convolutional(network: Network) -> bool:
    """Whether ``network`` has a convolution: its subdomains get :data:`CONV_STEPS` Adam steps
    and no refinement after splits (the defaults of :class:`SplitBounder`).

    Measured on one thread, float32 search, branch and bound alone (the rest of ``verify``
    adds about 1.8 s). On oval21's cifar_base_kw the refinement (dense rows of the fully
    connected layer back through both convolutions, float64) took 19 of 28.5 s of a 30 s run
    on img6638. Without it, 20 steps proved img6638 in 15.2 s, img8194 in 13.5 s and img6767
    in 28.7 s; with 10 steps as well: img6638 13.0 s, img2578 10.4 s (16.6 s with 20), img6767
    21.2 s (a timeout with 20 in one of two runs), and the timeouts img4631 and img876 ended
    closer to a proof (weakest bound -0.014 against -0.016 and -0.039). Refining only the
    layers whose rows are patches changed nothing but the time. On mnist_fc both pay: the
    refinement (256x4 prop_8_0.03 4.9 s with it, 6.1 s without; 256x6 prop_7_0.03 15.8 s
    against 18.0 s), and 20 steps rather than 10 on 256x4 prop_11_0.05 (14.8 s against
    23.5 s), though not on 256x6 prop_7_0.03 (2.6 s with 10)."""
    return any(isinstance(step, ConvMap) for step in network.steps)


def _in_dtype(lines: Lines, dtype: torch.dtype) -> Lines:
    """A relaxation's floating-point tensors cast to ``dtype``."""
    return dataclasses.replace(lines, **{f.name: getattr(lines, f.name).to(dtype) for f in dataclasses.fields(lines)
                                         if getattr(lines, f.name).is_floating_point()})


class SplitBounder:
    """Bounds subdomains of ``base``'s property with beta-CROWN (module docstring), starting
    from ``root``'s pre-activation bounds (one domain: the whole box). ``steps``: Adam steps per
    call (fewer once every domain is proved, or past ``deadline``, a ``time.monotonic()``
    value: the bounds reached so far hold; default :data:`STEPS`, :data:`CONV_STEPS` on a
    :func:`convolutional` network). ``refine_depth``: layers after each new split whose bounds
    are tightened first (:mod:`shallowcert.verify.refine`; 0: keep the parent's; default
    :data:`REFINE_DEPTH`, 0 on a convolutional network).
    ``search_dtype``: of the optimisation and the branching estimates; the reported bounds are
    computed in ``base``'s dtype (module docstring)."""

    def __init__(self, base: SubdomainBounder, root: DomainBounds, *, steps: int | None = None,
                 alpha_lr: float = 0.1, beta_lr: float = 0.05, memory_budget: int = MEMORY_BUDGET,
                 deadline: float = math.inf, refine_depth: int | None = None,
                 search_dtype: torch.dtype = SEARCH_DTYPE) -> None:
        self.base, self.owner, self.margin = base, base.owner, base.margin
        conv = convolutional(base.network)
        self.steps = (CONV_STEPS if conv else STEPS) if steps is None else steps
        self.alpha_lr, self.beta_lr, self.memory_budget = alpha_lr, beta_lr, memory_budget
        self.positions = base.network.relu_positions
        self.root = Inherited(root.rows[:1], tuple((lo[:1].detach(), up[:1].detach()) for lo, up in root.pre_activation))
        self.unstable = tuple(unstable_mask(lo[0], up[0]).flatten().nonzero().squeeze(1)
                              for lo, up in self.root.pre_activation)
        self.neurons = sum(len(index) for index in self.unstable)
        self.width = sum(lo[0].numel() for lo, _ in self.root.pre_activation)
        self.deadline = deadline
        self.refine_depth = (0 if conv else REFINE_DEPTH) if refine_depth is None else refine_depth
        self.search_dtype = search_dtype
        # float32 rows past this are confirmed by the float64 re-evaluation, barring rounding
        self.search_margin = self.margin + base.margin_in(search_dtype)

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
        dtype = self.search_dtype
        mid, rad = self._box(dtype)
        with torch.no_grad():
            pre = [(lo.to(dtype), up.to(dtype)) for lo, up in self._tightened(states, parents, *self._box(),
                                                                              refine=False)]
            relaxations, pools, signs = self._relaxed(pre, states)
            alpha, beta = self._start(relaxations, parents, needed)
            bound = self._evaluate(dtype, relaxations, pools, signs, alpha, beta, needed, len(open_rows))
            rows = parents.rows.clone()  # a parent's bound holds on its children
            rows[:, needed] = torch.maximum(rows[:, needed], (concretize(bound.coefficients, mid, rad)[0]
                                            + bound.offset_lower).to(rows.dtype) - self.base.bound[needed])
            best = per_disjunct_max(rows, self.owner, self.base.disjuncts)
            return best.masked_fill(~open_rows, torch.inf).amin(dim=1)

    def _box(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre and radius of the input box, ``(1, *input shape)``, in ``dtype`` (default: the base's)."""
        lower, upper = self.base.prop.lower.unsqueeze(0), self.base.prop.upper.unsqueeze(0)
        mid, rad = (upper + lower) / 2, (upper - lower) / 2
        return (mid, rad) if dtype is None else (mid.to(dtype), rad.to(dtype))

    def _relaxed(self, pre: list[tuple[torch.Tensor, torch.Tensor]], states: tuple[torch.Tensor, ...],
                 ) -> tuple[dict[int, Relaxation], dict[int, PoolRelaxation], dict[int, torch.Tensor]]:
        """CROWN relaxations of the ReLUs from ``pre`` (in its dtype), the max pools' CROWN lines
        (never split), and per ReLU the split signs ``(N, 1, box-unstable)`` (0 where not split)."""
        relaxations, signs = {}, {}
        for p, (lo, up), index, state in zip(self.positions, pre, self.unstable, states):
            relaxations[p] = relax(lo, up, lower_slope="crown")
            signs[p] = state.flatten(1)[:, index].to(lo.dtype).unsqueeze(1)
        dtype = pre[0][0].dtype
        box = (self.base.prop.lower.unsqueeze(0).to(dtype), self.base.prop.upper.unsqueeze(0).to(dtype))
        network = self.base.network_in(dtype)
        return relaxations, pool_relaxations(network, dict(zip(self.positions, pre)), box), signs

    def _start(self, relaxations: dict[int, Relaxation], parents: Inherited, needed: torch.Tensor,
               ) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        """Starting alpha and beta ``(N, needed rows, box-unstable)`` per ReLU, in the relaxations'
        dtype: the parents' (warm start), else CROWN's slopes and zero multipliers."""
        if parents.alpha:
            dtype = next(iter(relaxations.values())).lower_slope.dtype
            return ({p: a[:, needed].to(dtype) for p, a in zip(relaxations, parents.alpha)},
                    {p: b[:, needed].to(dtype) for p, b in zip(relaxations, parents.beta)})
        alpha = {p: r.lower_slope.flatten(2)[:, :, index].expand(-1, len(needed), -1).clone()
                 for (p, r), index in zip(relaxations.items(), self.unstable)}
        return alpha, {p: torch.zeros_like(a) for p, a in alpha.items()}

    def _evaluate(self, dtype: torch.dtype, relaxations: dict[int, Relaxation], pools: dict[int, PoolRelaxation],
                  signs: dict[int, torch.Tensor],
                  alpha: dict[int, torch.Tensor], beta: dict[int, torch.Tensor], needed: torch.Tensor, count: int,
                  record: dict[int, torch.Tensor] | None = None) -> LinearBound:
        """The back-substituted bound of the ``needed`` rows with slopes ``alpha`` and split terms
        ``-beta * sign`` at each ReLU's input; the max pools keep their lines ``pools``; all (and
        the network) in ``dtype``."""
        spec = self.base.matrix[needed].to(dtype).unsqueeze(0).expand(count, -1, -1)
        full_slopes: Relaxations = dict(pools)
        terms = {}
        for (p, r), index in zip(relaxations.items(), self.unstable):
            shape = (count, len(needed), *r.lower_slope.shape[2:])
            full_slopes[p] = with_lower_slopes(r, r.lower_slope.flatten(2).expand(shape[0], shape[1], -1)
                                               .index_copy(2, index, alpha[p]).reshape(shape))
            terms[p] = spec.new_zeros(shape[0], shape[1], math.prod(shape[2:])) \
                .index_copy(2, index, -beta[p] * signs[p]).reshape(shape)
        return back_substitute(self.base.network_in(dtype).steps, spec, full_slopes, extra=terms, record=record)

    def _bound(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor, parents: Inherited) -> DomainBounds:
        base, count = self.base, states[0].shape[0]
        needed = open_rows[:, self.owner].any(dim=0).nonzero().squeeze(1)
        mid, rad = self._box()
        with torch.no_grad():
            pre = self._tightened(states, parents, mid, rad, refine=self.refine_depth > 0)
        empty = torch.zeros(count, dtype=torch.bool, device=mid.device)
        for lo, up in pre:
            empty |= ((lo - up) > EMPTY_GAP * (1 + lo.abs() + up.abs())).flatten(1).any(dim=1)
        relaxations, pools, signs = self._relaxed(pre, states)
        best_alpha, best_beta, record, active = self._search(relaxations, pools, signs, parents, needed, open_rows,
                                                             empty)
        with torch.no_grad():  # the bound reported: the best slopes and multipliers, in the base's dtype
            bound = self._evaluate(mid.dtype, relaxations, pools, signs,
                                   {p: a.to(mid.dtype) for p, a in best_alpha.items()},
                                   {p: b.to(mid.dtype) for p, b in best_beta.items()}, needed, count)
            rows = parents.rows.clone()  # a parent's bound holds on its children
            rows[:, needed] = torch.maximum(concretize(bound.coefficients, mid, rad)[0] + bound.offset_lower
                                            - base.bound[needed], rows[:, needed])
            proved = self._proved(rows[:, needed], needed, open_rows)
            target = base.target_rows(rows, proved)
            local = (needed.unsqueeze(0) == target.unsqueeze(1)).float().argmax(dim=1)
            corner = base.corner(bound.coefficients, local, mid.expand(count, *mid.shape[1:]),
                                 rad.expand(count, *rad.shape[1:]))
            scores = []
            for p, (lo, up), state in zip(self.positions, pre, states):
                coefficient = torch.zeros_like(lo)  # proved domains are not split again
                last = record[p][torch.arange(len(active), device=mid.device), local[active]]
                coefficient[active] = last.to(lo.dtype)
                scores.append(branching_scores(coefficient, lo, up, state == 0))
            kept_alpha, kept_beta = self._kept(relaxations, parents, needed, best_alpha, best_beta)
        return DomainBounds(rows, proved, empty, states, tuple(scores), corner, tuple(pre), kept_alpha, kept_beta)

    def _search(self, relaxations: dict[int, Relaxation], pools: dict[int, PoolRelaxation],
                signs: dict[int, torch.Tensor], parents: Inherited, needed: torch.Tensor, open_rows: torch.Tensor,
                empty: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], dict[int, torch.Tensor],
                                              torch.Tensor]:
        """Per domain the best slopes and multipliers ``steps`` of projected Adam reached, in
        ``search_dtype``, from the parents' (module docstring); a domain stops once its rows pass
        :attr:`search_margin` (or it is ``empty``). Also the domains still optimised at the last
        step and their coefficients at each ReLU there (``record`` of the back-substitution),
        from which the branching scores are taken: scores from the last step's slopes and
        multipliers branched better than from the best ones (mnist_fc 256x4 prop_8_0.03:
        8 s against a timeout at 60 s)."""
        count, dtype = len(open_rows), self.search_dtype
        mid, rad = self._box(dtype)
        shift = self.base.bound[needed].to(dtype)
        live_relaxations = {p: _in_dtype(r, dtype) for p, r in relaxations.items()}
        live_pools = {p: _in_dtype(r, dtype) for p, r in pools.items()}
        live_signs = {p: sign.to(dtype) for p, sign in signs.items()}
        alpha, beta = self._start(live_relaxations, parents, needed)
        best_alpha = {p: a.clone() for p, a in alpha.items()}
        best_beta = {p: b.clone() for p, b in beta.items()}
        best = torch.full((count, len(needed)), -torch.inf, dtype=dtype, device=mid.device)
        # the domains still optimised (the others are proved or empty), with their relaxations and optimisers
        active = torch.arange(count, device=mid.device)
        slopes = ProjectedAdam([a.requires_grad_(True) for a in alpha.values()], lr=self.alpha_lr, low=0.0, high=1.0)
        multipliers = ProjectedAdam([b.requires_grad_(True) for b in beta.values()], lr=self.beta_lr, low=0.0)
        record: dict[int, torch.Tensor] = {}
        with torch.enable_grad():
            for step in range(self.steps + 1):
                alpha, beta = dict(zip(relaxations, slopes.parameters)), dict(zip(relaxations, multipliers.parameters))
                record = {}
                bound = self._evaluate(dtype, live_relaxations, live_pools, live_signs, alpha, beta, needed,
                                       len(active), record)
                value = concretize(bound.coefficients, mid, rad)[0] + bound.offset_lower - shift
                with torch.no_grad():
                    improved = value > best[active]
                    best[active] = torch.where(improved, value, best[active])
                    for p in relaxations:
                        best_alpha[p][active] = torch.where(improved.unsqueeze(2), alpha[p], best_alpha[p][active])
                        best_beta[p][active] = torch.where(improved.unsqueeze(2), beta[p], best_beta[p][active])
                    done = self._proved(best[active], needed, open_rows[active],
                                        margin=self.search_margin).all(dim=1) | empty[active]
                if step == self.steps or bool(done.all()) or time.monotonic() > self.deadline:
                    break
                gradients = torch.autograd.grad(-value.masked_fill(best[active] > self.search_margin, 0.0).sum(),
                                                [*alpha.values(), *beta.values()], allow_unused=True)
                slopes.step(list(gradients[:len(alpha)]))
                multipliers.step(list(gradients[len(alpha):]))
                if bool(done.any()):
                    keep = (~done).nonzero().squeeze(1)
                    active, slopes, multipliers = active[keep], slopes.select(keep), multipliers.select(keep)
                    live_relaxations = {p: Relaxation(r.lower_slope[keep], r.upper_slope[keep], r.upper_intercept[keep])
                                        for p, r in live_relaxations.items()}
                    live_pools = {p: r.select(keep) for p, r in live_pools.items()}
                    live_signs = {p: sign[keep] for p, sign in live_signs.items()}
        return best_alpha, best_beta, record, active

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

    def _proved(self, values: torch.Tensor, needed: torch.Tensor, open_rows: torch.Tensor, *,
                margin: float | None = None) -> torch.Tensor:
        """``(N, K)``: disjuncts closed on the parent or with a computed row above ``margin``
        (default: the rounding margin of the base's dtype)."""
        margin = self.margin if margin is None else margin
        hits = torch.zeros((len(values), len(self.owner)), dtype=values.dtype, device=values.device)
        hits[:, needed] = (values > margin).to(values.dtype)
        return (per_disjunct_max(hits, self.owner, self.base.disjuncts) > 0) | ~open_rows

