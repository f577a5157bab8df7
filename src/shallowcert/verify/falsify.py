"""The falsifier: projected gradient descent over the input box towards each unsafe disjunct.

For a property with box ``[lo, hi]`` and unsafe set ``OR_k {y : A_k y <= b_k}`` every start
``x_0`` is attacked once *per disjunct* ``k`` (all of them, or the ones asked for), each
copy minimising that disjunct's margin loss ``m_k(x) = max_i (A_k f(x) - b_k)_i`` (``<= 0``:
``f(x)`` lies in disjunct ``k``; for robustness properties, ``y_label - y_target``) by
signed gradient steps projected back onto the box (a clamp)::

    x_{t+1} = clamp(x_t - alpha_t * (hi - lo) * sign(grad m_k(x_t)), lo, hi)

with ``alpha_t`` decaying from ``step`` to ``step / 50`` over the run (cosine), so that late
steps settle on counterexamples whose margin is tiny. Attacking each disjunct on its own
matters: the property's violation ``min_k m_k`` only follows the disjunct that is closest at
the start, which is often not the one that can be reached.

Every candidate is **re-checked** by :func:`counterexample`: run through the network in the
network's own dtype (the verifier passes a float64 copy), inside the box, with violation
``<= 0`` -- only then is it returned. Nothing found proves nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from shallowcert.model_state import evaluation_mode
from shallowcert.verify.property import Property

FINAL_STEP = 0.02  # the last step is this fraction of the first


@dataclass(frozen=True)
class Counterexample:
    """An input in the box (``x``, one input, no batch dimension) and the network's output on it."""

    x: torch.Tensor
    output: torch.Tensor


def counterexample(model: nn.Module, prop: Property, candidates: torch.Tensor) -> Counterexample | None:
    """The first row of ``candidates`` (``(N, *input shape)``) that lies in the box and whose
    output, computed by ``model`` in its own dtype, is unsafe; ``None`` if there is none."""
    dtype = next(model.parameters()).dtype
    candidates = candidates.detach().to(dtype)
    with torch.no_grad(), evaluation_mode(model):
        outputs = model(candidates)
    good = prop.contains(candidates) & (prop.violation(outputs) <= 0)
    if not bool(good.any()):
        return None
    index = int(good.nonzero()[0, 0])
    return Counterexample(candidates[index].clone(), outputs[index].clone())


def disjunct_margins(prop: Property, outputs: torch.Tensor) -> torch.Tensor:
    """``m_k(y) = max_i (A_k y - b_k)_i`` for every output row and disjunct: ``(N, K)``."""
    return torch.stack([(outputs @ c.matrix.to(outputs).T - c.bound.to(outputs)).amax(dim=1)
                        for c in prop.unsafe], dim=1)


def falsify(model: nn.Module, prop: Property, *, steps: int = 50, restarts: int = 16, step: float = 0.25,
            starts: torch.Tensor | None = None, seed: int = 0, deadline: float | None = None,
            disjuncts: torch.Tensor | None = None) -> Counterexample | None:
    """Search the box for an unsafe input (module docstring); ``None`` when none was found.

    Starting points: ``starts`` ``(M, *input shape)`` (projected onto the box), the box
    centre and ``restarts`` uniform random points; each is attacked for ``steps`` steps
    against every disjunct of ``disjuncts``, all as one batch. ``disjuncts``: a bool mask over
    ``prop.unsafe``, ``(K,)`` for every start or ``(M, K)`` one row per given start (the
    centre and the random starts then take the union of the rows); default: all disjuncts.
    ``step``: the first step as a fraction of the box width. ``deadline``: a
    ``time.monotonic()`` value after which the search stops early.
    """
    dtype = next(model.parameters()).dtype
    lower, upper = prop.lower.to(dtype), prop.upper.to(dtype)
    generator = torch.Generator(device=lower.device).manual_seed(seed)
    noise = torch.rand((restarts, *lower.shape), generator=generator, device=lower.device, dtype=dtype)
    points = [((lower + upper) / 2).unsqueeze(0), lower + noise * (upper - lower)]
    if starts is not None:
        points.insert(0, torch.minimum(torch.maximum(starts.to(device=lower.device, dtype=dtype), lower), upper))
    x = torch.cat(points)
    found = counterexample(model, prop, x)
    pairs = _pairs(disjuncts, len(prop.unsafe), len(x), 0 if starts is None else len(starts)).to(lower.device)
    if found is not None or steps <= 0 or len(pairs) == 0:
        return found
    x, target = x[pairs[:, 0]], pairs[:, 1]
    width = upper - lower
    with evaluation_mode(model):
        for t in range(steps):
            if deadline is not None and time.monotonic() > deadline:
                break
            alpha = step * (FINAL_STEP + (1 - FINAL_STEP) * 0.5 * (1 + math.cos(math.pi * t / steps)))
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                margins = disjunct_margins(prop, model(x))
                loss = margins.gather(1, target.unsqueeze(1)).sum()
                (gradient,) = torch.autograd.grad(loss, x)
            hit = margins.detach().amin(dim=1) <= 0
            if bool(hit.any()):
                found = counterexample(model, prop, x[hit])
                if found is not None:
                    return found
            with torch.no_grad():
                x = torch.minimum(torch.maximum(x - alpha * width * gradient.sign(), lower), upper)
    return counterexample(model, prop, x)


def _pairs(disjuncts: torch.Tensor | None, count: int, points: int, given: int) -> torch.Tensor:
    """``(P, 2)`` int64 rows ``(start, disjunct)`` to attack: the given starts come first in
    the batch of ``points``, then the centre and the random ones (module docstring)."""
    mask = torch.ones(count, dtype=torch.bool) if disjuncts is None else disjuncts.detach().cpu().bool()
    rows = mask.expand(points, count).clone() if mask.dim() == 1 else torch.cat(
        [mask, mask.any(dim=0, keepdim=True).expand(points - given, count)])
    return rows.nonzero()


def attack(model: nn.Module, prop: Property, *, deadline: float, seed: int = 0, steps: int = 100,
           restarts: int = 8, rounds: int = 4, starts: torch.Tensor | None = None,
           disjuncts: torch.Tensor | None = None) -> Counterexample | None:
    """Up to ``rounds`` calls of :func:`falsify` with fresh random starts (seeds ``seed``,
    ``seed + 1``, ...; ``starts`` in the first only), each of ``steps`` steps from
    ``restarts`` random points per disjunct, until one finds a counterexample or
    ``deadline`` (``time.monotonic()``) passes. The entry point for branch and bound: pass
    the corners of the weakest subdomains as ``starts`` and their open disjuncts as
    ``disjuncts``."""
    for index in range(rounds):
        if time.monotonic() > deadline:
            break
        found = falsify(model, prop, steps=steps, restarts=restarts, seed=seed + index, deadline=deadline,
                        starts=starts if index == 0 else None, disjuncts=disjuncts)
        if found is not None:
            return found
    return None
