"""Tighter pre-activation bounds on subdomains, for the ReLU layers just after a new split.

A split ``z_j >= 0`` (or ``<= 0``) makes ReLU ``j`` exact on the subdomain, so the neurons of
the next layers, bounded by CROWN with that ReLU as the identity (or zero), get bounds valid
on the subdomain and often much tighter than the parent's: neurons turn stable and the
relaxation of the rest shrinks, which no choice of slopes or multipliers of the final rows
can give. For each domain and each layer ``k`` with ``split < k <= split + depth`` (``split``:
the shallowest layer with a new split), every neuron unstable under the current bounds is bounded
below and above by back-substitution to the input with CROWN relaxations (lower slope 0 or
1) built from the current bounds of the earlier layers, then concretised over the whole box
(a superset of the subdomain). The result is intersected with the current bounds: both hold
on the subdomain, so their intersection does, and it is never looser. Layers are done in
order, so each uses its predecessors' refined bounds.

Cost per domain and layer: ``2 R`` rows (``R`` its unstable neurons) pushed back through
every earlier map, so the rows and domains of one call are chunked to ``memory_budget``
bytes of coefficients. A convolutional layer's rows live on their windows
(:func:`shallowcert.bounds.intermediate.candidate_bounds` picks patches or dense rows as the
engine does): on oval21's cifar_base_kw, refining the second convolution of 128 domains after
a split in the first took 0.36 s instead of 11.95 s as dense rows over the whole maps.
"""

from __future__ import annotations

import math

import torch

from shallowcert.bounds import AffineMap, Network, Relaxations, relax, unstable_mask
from shallowcert.bounds.intermediate import candidate_bounds

Bounds = list[tuple[torch.Tensor, torch.Tensor]]

LIVE_COPIES = 4  # coefficient-sized tensors alive at once in one back-substitution step


def refine_after_splits(network: Network, pre: Bounds, split_layer: torch.Tensor, mid: torch.Tensor,
                        rad: torch.Tensor, *, depth: int, memory_budget: int) -> Bounds:
    """``pre`` (per ReLU layer, ``(N, *shape)`` lower and upper bounds of its input on each
    domain) with layers ``split_layer < k <= split_layer + depth`` refined (module docstring).

    ``split_layer`` ``(N,)``: per domain, the shallowest ReLU layer with a new split (the
    number of layers: none); ``mid``, ``rad``: the box, ``(1, *input shape)``. A network with
    max pools keeps ``pre`` as it is (the refinement has no pool lines; the parent's bounds hold).
    """
    pre = list(pre)
    if network.pool_positions:
        return pre
    positions = network.relu_positions
    widest = max(math.prod(s.in_shape) for s in network.steps if isinstance(s, AffineMap))
    for layer in range(1, len(positions)):
        chosen = ((split_layer < layer) & (layer <= split_layer + depth)).nonzero().squeeze(1)
        if len(chosen) == 0:
            continue
        lower, upper = pre[layer]
        candidates = unstable_mask(lower[chosen], upper[chosen])
        rows = int(candidates.flatten(1).sum(1).max()) if candidates.numel() else 0
        if rows == 0:
            continue
        size = max(1, memory_budget // (2 * rows * widest * LIVE_COPIES * mid.element_size()))
        new_lower, new_upper = lower.clone(), upper.clone()
        for begin in range(0, len(chosen), size):
            part, mask = chosen[begin:begin + size], candidates[begin:begin + size]
            low, high = _bound_layer(network, [(lo[part], up[part]) for lo, up in pre[:layer]], layer, mask, mid, rad)
            old_lower, old_upper = new_lower[part], new_upper[part]
            new_lower[part] = old_lower.masked_scatter(mask, torch.maximum(old_lower[mask], low))
            new_upper[part] = old_upper.masked_scatter(mask, torch.minimum(old_upper[mask], high))
        pre[layer] = (new_lower, new_upper)
    return pre


def _bound_layer(network: Network, earlier: Bounds, layer: int, candidates: torch.Tensor, mid: torch.Tensor,
                 rad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CROWN bounds (lower, upper) of the ``candidates`` (bool ``(n, *shape)``) of ReLU layer
    ``layer``'s input, one value each in ``nonzero`` order, from ``earlier`` bounds of the layers
    before it (patches for a convolutional layer, dense rows otherwise)."""
    positions = network.relu_positions
    count = len(candidates)
    relaxations: Relaxations = {p: relax(lo, up, lower_slope="crown") for p, (lo, up) in zip(positions, earlier)}
    return candidate_bounds(network.steps[:positions[layer]], candidates, relaxations,
                            mid.expand(count, *mid.shape[1:]), rad.expand(count, *rad.shape[1:]))
