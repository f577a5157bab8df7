"""The falsifier: projected gradient descent over the input box towards the unsafe set.

For a property with box ``[lo, hi]`` and unsafe set ``OR_k {y : A_k y <= b_k}`` it minimises
the violation ``v(x) = min_k max_i (A_k f(x) - b_k)_i`` (``<= 0``: unsafe) by signed
gradient steps projected back onto the box (a clamp)::

    x_{t+1} = clamp(x_t - alpha_t * (hi - lo) * sign(grad v(x_t)), lo, hi)

with ``alpha_t`` decaying from ``step`` to ``step / 10`` over the run (cosine), from several
starts at once (the box centre, given points, uniform random points). Every candidate is
**re-checked** by :func:`counterexample`: run through the network in the network's own
dtype (the verifier passes a float64 copy), inside the box, with violation ``<= 0`` — only
then is it returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from shallowcert.model_state import evaluation_mode
from shallowcert.verify.property import Property


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


def falsify(model: nn.Module, prop: Property, *, steps: int = 50, restarts: int = 16, step: float = 0.25,
            starts: torch.Tensor | None = None, seed: int = 0, deadline: float | None = None,
            ) -> Counterexample | None:
    """Search the box for an unsafe input (module docstring); ``None`` when none was found.

    ``starts``: extra starting points ``(M, *input shape)`` (projected onto the box);
    ``restarts`` uniform random starts are added to them and to the box centre, all run as
    one batch for ``steps`` steps. ``deadline``: a ``time.monotonic()`` value after which
    the search stops early. Nothing found proves nothing.
    """
    dtype = next(model.parameters()).dtype
    lower, upper = prop.lower.to(dtype), prop.upper.to(dtype)
    generator = torch.Generator(device=lower.device).manual_seed(seed)
    noise = torch.rand((restarts, *lower.shape), generator=generator, device=lower.device, dtype=dtype)
    points = [((lower + upper) / 2).unsqueeze(0), lower + noise * (upper - lower)]
    if starts is not None:
        points.insert(0, torch.minimum(torch.maximum(starts.to(dtype), lower), upper))
    x = torch.cat(points)
    found = counterexample(model, prop, x)
    width = upper - lower
    with evaluation_mode(model):
        for t in range(steps):
            if found is not None or (deadline is not None and time.monotonic() > deadline):
                break
            alpha = step * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / steps)))
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                outputs = model(x)
                violation = prop.violation(outputs)
                (gradient,) = torch.autograd.grad(violation.sum(), x)
            hit = violation.detach() <= 0
            if bool(hit.any()):
                found = counterexample(model, prop, x[hit])
                if found is not None:
                    break
            with torch.no_grad():
                x = torch.minimum(torch.maximum(x - alpha * width * gradient.sign(), lower), upper)
        if found is None:
            found = counterexample(model, prop, x)
    return found
