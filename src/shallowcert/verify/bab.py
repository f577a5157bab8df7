"""Branch and bound over ReLU splits, batched over subdomains.

A subdomain is the input box with some ReLUs fixed (``z >= 0`` or ``z <= 0``,
:mod:`shallowcert.verify.subdomain`). The loop keeps the unproved subdomains with their
priority (the lower bound of their weakest unproved disjunct) and, per round:

1. takes the ``batch / 2`` lowest ones and splits each on a free unstable neuron, chosen
   among its ``candidates`` best BaBSR-style scores by the bounder's estimate of the split
   (:meth:`shallowcert.verify.beta.SplitBounder.choose`), into two children, which inherit
   the parent's proved disjuncts, bounds and optimised slopes and multipliers;
2. bounds all children in one engine call; verified children (every disjunct proved, or an
   empty subdomain) are dropped;
3. runs each child's bound-minimising box corner through the network (a re-checked
   counterexample ends the search with ``sat``), and every ``falsify_every`` rounds a short
   PGD from the corners of the weakest subdomains.

A subdomain with no free unstable neuron left is linear on its region but its bound is
concretised over the whole box; it goes to ``exact`` (an LP/MILP on the subdomain) when one
is given, else the search cannot finish (``unknown``). The property holds (``unsat``) when
no subdomain is left. ``timeout`` when the deadline passes, ``unknown`` when ``max_domains``
subdomains were bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from shallowcert.verify.falsify import Counterexample, counterexample, falsify
from shallowcert.verify.property import Property
from shallowcert.verify.result import Status
from shallowcert.verify.beta import SplitBounder
from shallowcert.verify.subdomain import (DomainBounds, Inherited, per_disjunct_max, repeat_domains, split_states)

CANDIDATES = 3  # neurons per domain whose split is estimated before branching (FSB-style)
MAX_BATCH = 1024  # children per engine call at most: a round is never longer than a few seconds

# exact(states of one subdomain) -> ("unsat" | "sat" | "unknown", counterexample or None)
ExactSolver = Callable[[tuple[torch.Tensor, ...]], tuple[str, Counterexample | None]]


@dataclass
class BabOutcome:
    """What the search ended with (``status`` as in :class:`VerificationResult`)."""

    status: Status
    counterexample: Counterexample | None = None
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Queue:
    """The unproved subdomains: states per ReLU, open disjuncts, priority, depth, corner, the
    best-scoring neurons to split (``(N, k)`` indices into the concatenated flattened ReLUs,
    best first; ``-1``: none) and what each hands its children."""

    states: tuple[torch.Tensor, ...]
    open: torch.Tensor
    priority: torch.Tensor
    depth: torch.Tensor
    corner: torch.Tensor
    candidates: torch.Tensor
    inherited: Inherited

    def __len__(self) -> int:
        return len(self.priority)

    def take(self, count: int) -> _Queue:
        """Remove and return the ``count`` subdomains of lowest priority."""
        order = torch.argsort(self.priority)
        taken = self.select(order[:count])
        self.replace(self.select(order[count:]))
        return taken

    def select(self, index: torch.Tensor) -> _Queue:
        return _Queue(tuple(s[index] for s in self.states), self.open[index], self.priority[index], self.depth[index],
                      self.corner[index], self.candidates[index], self.inherited.map(lambda t: t[index]))

    def replace(self, other: _Queue) -> None:
        self.states, self.open, self.priority, self.depth = other.states, other.open, other.priority, other.depth
        self.corner, self.candidates, self.inherited = other.corner, other.candidates, other.inherited

    def extend(self, other: _Queue) -> None:
        if len(self) == 0:  # the whole box, which hands on no warm start, may differ in form
            self.replace(other)
            return
        self.replace(_Queue(tuple(torch.cat(pair) for pair in zip(self.states, other.states)),
                            torch.cat([self.open, other.open]), torch.cat([self.priority, other.priority]),
                            torch.cat([self.depth, other.depth]), torch.cat([self.corner, other.corner]),
                            torch.cat([self.candidates, other.candidates]),
                            Inherited.cat([self.inherited, other.inherited])))


def _priority(bounds: DomainBounds, owner: torch.Tensor) -> torch.Tensor:
    """The lower bound of each domain's weakest unproved disjunct (its best row)."""
    best = per_disjunct_max(bounds.rows, owner, bounds.proved.shape[1])
    return best.masked_fill(bounds.proved, torch.inf).amin(dim=1)


def _queue_of(bounds: DomainBounds, keep: torch.Tensor, depth: torch.Tensor, owner: torch.Tensor,
              candidates: int) -> _Queue:
    scores = torch.cat([s.flatten(1) for s in bounds.scores], dim=1)
    best, neuron = scores.topk(min(candidates, scores.shape[1]), dim=1)
    neuron = torch.where(best > 0, neuron, -1)
    return _Queue(tuple(s[keep] for s in bounds.states), ~bounds.proved[keep], _priority(bounds, owner)[keep],
                  depth[keep], bounds.corner[keep], neuron[keep], bounds.inherited.map(lambda t: t[keep]))


def branch_and_bound(model: nn.Module, prop: Property, bounder: SplitBounder, *, deadline: float,
                     root: DomainBounds | None = None, batch: int | None = None, max_domains: int = 2_000_000,
                     candidates: int = CANDIDATES, falsify_every: int = 8, exact: ExactSolver | None = None, seed: int = 0) -> BabOutcome:
    """Run the search (module docstring) until ``deadline`` (a ``time.monotonic()`` value).

    ``model``: the network in the dtype of the re-check (float64); ``root``: the bounds of
    the whole box if already computed. ``batch``: children bounded per engine call (default:
    as many as the bounder's memory budget holds, at most :data:`MAX_BATCH`). ``candidates``:
    neurons per domain whose split is estimated before one is chosen (1: the best score's).
    """
    batch = batch or min(MAX_BATCH, bounder.domains_per_call())
    owner = bounder.owner
    stats: dict[str, Any] = {"domains": 0, "rounds": 0, "max_depth": 0, "exact_calls": 0}
    if root is None:
        root = bounder.bound_domains(bounder.free_states(1))
    stats["domains"] += 1
    if bool(root.verified.all()):
        return BabOutcome("unsat", stats=stats)
    if not root.alpha:  # the whole box's own slopes, for its children's warm start and branching estimates
        root = bounder.bound_domains(root.states, ~root.proved)
        if bool(root.verified.all()):
            return BabOutcome("unsat", stats=stats)
    queue = _queue_of(root, ~root.verified, torch.zeros(1, dtype=torch.int64, device=root.rows.device), owner,
                      candidates)
    while len(queue):
        if time.monotonic() > deadline:
            return BabOutcome("timeout", stats=_final(stats, queue))
        if stats["domains"] >= max_domains:
            return BabOutcome("unknown", stats=_final(stats, queue))
        parents = queue.take(max(1, batch // 2))
        splittable = parents.candidates[:, 0] >= 0
        if not bool(splittable.all()):
            stuck = parents.select((~splittable).nonzero().squeeze(1))
            if exact is None:
                return BabOutcome("unknown", stats={**_final(stats, queue), "unsettled_domains": len(stuck)})
            outcome = _settle_exactly(stuck, exact, stats)
            if outcome is not None:
                timed_out = outcome.status == "unknown" and time.monotonic() > deadline
                return BabOutcome("timeout", stats=_final(stats, queue)) if timed_out else outcome
            parents = parents.select(splittable.nonzero().squeeze(1))
            if len(parents) == 0:
                continue
        neuron = bounder.choose(parents.states, parents.candidates, parents.open, parents.inherited)
        children_states = split_states(parents.states, neuron)
        open_rows = parents.open.repeat(2, 1)
        depth = parents.depth.repeat(2) + 1
        bounds = bounder.bound_domains(children_states, open_rows, parents.inherited.map(lambda t: repeat_domains(t, 2)))
        stats["domains"] += len(depth)
        stats["rounds"] += 1
        stats["max_depth"] = max(stats["max_depth"], int(depth.max()))
        keep = ~bounds.verified
        found = counterexample(model, prop, bounds.corner[keep]) if bool(keep.any()) else None
        if found is not None:
            return BabOutcome("sat", found, _final(stats, queue))
        queue.extend(_queue_of(bounds, keep, depth, owner, candidates))
        if falsify_every and stats["rounds"] % falsify_every == 0 and len(queue):
            weakest = torch.argsort(queue.priority)[:32]
            found = falsify(model, prop, steps=20, restarts=0, starts=queue.corner[weakest],
                            seed=seed + stats["rounds"], deadline=deadline, disjuncts=queue.open[weakest])
            if found is not None:
                return BabOutcome("sat", found, _final(stats, queue))
    return BabOutcome("unsat", stats=_final(stats, queue))


def _settle_exactly(stuck: _Queue, exact: ExactSolver, stats: dict[str, Any]) -> BabOutcome | None:
    """Hand fully split subdomains to ``exact``; ``None`` when it proves them all, else the
    search's end (``sat``, or ``unknown`` when it could not decide one)."""
    for index in range(len(stuck)):
        stats["exact_calls"] += 1
        status, found = exact(tuple(s[index] for s in stuck.states))
        if status == "sat":
            return BabOutcome("sat", found, stats)
        if status != "unsat":
            return BabOutcome("unknown", stats=stats)
    return None


def _final(stats: dict[str, Any], queue: _Queue) -> dict[str, Any]:
    """``stats`` with the open domains' count and their weakest bound (how far the search is from a proof)."""
    return {**stats, "open_domains": len(queue), "weakest_bound": float(queue.priority.min()) if len(queue) else None}
