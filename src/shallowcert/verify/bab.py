"""Branch and bound over ReLU splits, batched over subdomains.

A subdomain is the input box with some ReLUs fixed (``z >= 0`` or ``z <= 0``,
:mod:`shallowcert.verify.subdomain`). The loop keeps the unproved subdomains with their
priority (the lower bound of their weakest unproved disjunct) and, per round:

1. takes the ``batch / 2`` lowest ones and splits each on its best-scoring free unstable
   neuron (BaBSR-style score) into two children, which inherit the parent's proved states
   and proved disjuncts;
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
from typing import Any, Protocol

import torch
from torch import nn

from shallowcert.verify.falsify import Counterexample, counterexample, falsify
from shallowcert.verify.property import Property
from shallowcert.verify.result import Status
from shallowcert.verify.subdomain import DomainBounds, per_disjunct_max


class Bounder(Protocol):
    """What the search needs of a subdomain bounder (CROWN's or beta-CROWN's): the disjunct
    owning each row, the states of the unsplit box, and the bounds of split subdomains."""

    owner: torch.Tensor

    def free_states(self, count: int) -> tuple[torch.Tensor, ...]: ...

    def bound_domains(self, states: tuple[torch.Tensor, ...], open_rows: torch.Tensor | None = None,
                      ) -> DomainBounds: ...

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
    """The unproved subdomains: states per ReLU, open disjuncts, priority, depth, corner and
    the neuron to split next (index into the concatenated flattened ReLUs; ``-1``: none left)."""

    states: tuple[torch.Tensor, ...]
    open: torch.Tensor
    priority: torch.Tensor
    depth: torch.Tensor
    corner: torch.Tensor
    neuron: torch.Tensor

    def __len__(self) -> int:
        return len(self.priority)

    def take(self, count: int) -> _Queue:
        """Remove and return the ``count`` subdomains of lowest priority."""
        order = torch.argsort(self.priority)
        chosen, rest = order[:count], order[count:]
        taken = self.select(chosen)
        kept = self.select(rest)
        self.states, self.open, self.priority, self.depth, self.corner, self.neuron = (
            kept.states, kept.open, kept.priority, kept.depth, kept.corner, kept.neuron)
        return taken

    def select(self, index: torch.Tensor) -> _Queue:
        return _Queue(tuple(s[index] for s in self.states), self.open[index], self.priority[index],
                      self.depth[index], self.corner[index], self.neuron[index])

    def extend(self, other: _Queue) -> None:
        self.states = tuple(torch.cat([a, b]) for a, b in zip(self.states, other.states))
        self.open, self.priority, self.depth, self.corner, self.neuron = (
            torch.cat([a, b]) for a, b in ((self.open, other.open), (self.priority, other.priority),
                                           (self.depth, other.depth), (self.corner, other.corner),
                                           (self.neuron, other.neuron)))


def _priority(bounds: DomainBounds, owner: torch.Tensor) -> torch.Tensor:
    """The lower bound of each domain's weakest unproved disjunct (its best row)."""
    best = per_disjunct_max(bounds.rows, owner, bounds.proved.shape[1])
    return best.masked_fill(bounds.proved, torch.inf).amin(dim=1)


def _queue_of(bounds: DomainBounds, keep: torch.Tensor, depth: torch.Tensor, owner: torch.Tensor) -> _Queue:
    best, neuron = torch.cat([s.flatten(1) for s in bounds.scores], dim=1).max(dim=1)
    neuron = torch.where(best > 0, neuron, -1)
    return _Queue(tuple(s[keep] for s in bounds.states), ~bounds.proved[keep], _priority(bounds, owner)[keep],
                  depth[keep], bounds.corner[keep], neuron[keep])


def branch_and_bound(model: nn.Module, prop: Property, bounder: Bounder, *, deadline: float,
                     root: DomainBounds | None = None, batch: int = 256, max_domains: int = 2_000_000,
                     falsify_every: int = 8, exact: ExactSolver | None = None, seed: int = 0) -> BabOutcome:
    """Run the search (module docstring) until ``deadline`` (a ``time.monotonic()`` value).

    ``model``: the network in the dtype of the re-check (float64); ``root``: the bounds of
    the whole box if already computed. ``batch``: children bounded per engine call.
    """
    owner = bounder.owner
    stats: dict[str, Any] = {"domains": 0, "rounds": 0, "max_depth": 0, "exact_calls": 0}
    if root is None:
        root = bounder.bound_domains(bounder.free_states(1))
    stats["domains"] += 1
    if bool(root.verified.all()):
        return BabOutcome("unsat", stats=stats)
    queue = _queue_of(root, ~root.verified, torch.zeros(1, dtype=torch.int64, device=root.rows.device), owner)
    while len(queue):
        if time.monotonic() > deadline:
            return BabOutcome("timeout", stats=_final(stats, queue))
        if stats["domains"] >= max_domains:
            return BabOutcome("unknown", stats=_final(stats, queue))
        parents = queue.take(max(1, batch // 2))
        splittable = parents.neuron >= 0
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
        children_states = _split(parents.states, parents.neuron)
        open_rows = parents.open.repeat(2, 1)
        depth = parents.depth.repeat(2) + 1
        bounds = bounder.bound_domains(children_states, open_rows)
        stats["domains"] += len(depth)
        stats["rounds"] += 1
        stats["max_depth"] = max(stats["max_depth"], int(depth.max()))
        keep = ~bounds.verified
        found = counterexample(model, prop, bounds.corner[keep]) if bool(keep.any()) else None
        if found is not None:
            return BabOutcome("sat", found, _final(stats, queue))
        queue.extend(_queue_of(bounds, keep, depth, owner))
        if falsify_every and stats["rounds"] % falsify_every == 0 and len(queue):
            weakest = torch.argsort(queue.priority)[:32]
            found = falsify(model, prop, steps=20, restarts=0, starts=queue.corner[weakest],
                            seed=seed + stats["rounds"], deadline=deadline)
            if found is not None:
                return BabOutcome("sat", found, _final(stats, queue))
    return BabOutcome("unsat", stats=_final(stats, queue))


def _split(states: tuple[torch.Tensor, ...], neuron: torch.Tensor) -> tuple[torch.Tensor, ...]:
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
    return {**stats, "open_domains": len(queue)}
