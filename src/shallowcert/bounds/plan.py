"""How each ReLU layer's neurons are bounded, and how much memory a point needs.

Back-substituting one neuron costs, at every map on the way back, one coefficient per value
it carries: the whole map in dense form, or the neuron's window in patches
(:mod:`shallowcert.bounds.patches`). Windows grow by ``(P - 1) * s + k`` per convolution, so
after a few stride-2 layers a window can be larger than the map it lies on (cert-teacher's
last convolution: a 22x22 window on a 14x14 map, a 46x46 one on the 28x28 input). A layer
therefore uses patches only where the summed window sizes are below the summed map sizes.

Memory per point (float values times ``itemsize``, an upper bound: every neuron counted as
a candidate, or at most ``candidates[p]`` neurons at the ReLU at step ``p`` when that bound is
known, e.g. from :func:`shallowcert.bounds.intermediate.interval_candidates`): without
autograd the largest single layer's working set, ``rows * widest coefficient map * LIVE_COPIES``; with autograd every layer's tensors stay
saved until backward, ``rows * sum of coefficient maps * SAVED_COPIES`` summed over layers.
alpha-CROWN adds its free slopes: every row of a layer that has them holds one slope per value
of each earlier ReLU's map (or window), at most the sum of its coefficient maps, kept in
``SLOPE_COPIES`` tensors; the final rows always, every bounded layer's rows when the
intermediate slopes are optimised too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from shallowcert.bounds.affine import AffineMap, ReshapeMap, ScaleMap
from shallowcert.bounds.maxpool import MaxPoolStep
from shallowcert.bounds.network import Network, ReLUStep, Step, as_relu

LIVE_COPIES = 16  # coefficient-sized tensors alive at once in one step (8), doubled for allocator slack
SAVED_COPIES = 6  # coefficient-sized tensors autograd keeps per step
SLOPE_COPIES = 5  # slopes, their gradient, Adam's two moments, the best final slopes


@dataclass(frozen=True)
class LayerPlan:
    """Bounding one layer's neurons: ``patches`` or dense rows; ``sizes``: coefficient values
    per neuron at the input of every affine step on the way back (last step first)."""

    patches: bool
    sizes: tuple[int, ...]


def is_spatial(steps: list[Step]) -> bool:
    """Every step is a ReLU on a feature map, a max pool or a map with a window (convolution, scaling)."""
    return all((isinstance(s, ReLUStep) and len(s.shape) == 3) or _windowed(s) is not None for s in steps)


def _windowed(step: Step) -> AffineMap | MaxPoolStep | None:
    """``step`` if it moves windows (a max pool, or an affine map with a window), else ``None``."""
    if isinstance(step, MaxPoolStep) or (isinstance(step, AffineMap) and step.window is not None):
        return step
    return None


def mixing_maps(steps: list[Step]) -> int:
    """How many maps mix coordinates; interval bounds through at most one (plus elementwise
    maps and reshapes) are already exact."""
    return sum(isinstance(s, AffineMap) and not isinstance(s, (ScaleMap, ReshapeMap)) for s in steps)


def _window_sizes(steps: list[Step]) -> tuple[int, ...]:
    """Per-neuron window values at the input of each affine step, going back from the end."""
    size, sizes = (1, 1), []
    for step in reversed(steps):
        windowed = _windowed(step)
        if windowed is not None:
            kernel, stride, _ = windowed.spatial_window()
            size = ((size[0] - 1) * stride[0] + kernel[0], (size[1] - 1) * stride[1] + kernel[1])
            sizes.append(windowed.in_shape[0] * size[0] * size[1])
    return tuple(sizes)


def layer_plan(steps: list[Step], target_shape: tuple[int, ...]) -> LayerPlan:
    """The plan for neurons of shape ``target_shape`` at the output of ``steps``."""
    dense = tuple(math.prod(s.in_shape) for s in reversed(steps) if not isinstance(s, ReLUStep))
    if len(target_shape) == 3 and is_spatial(steps):
        windows = _window_sizes(steps)
        if sum(windows) < sum(dense):
            return LayerPlan(True, windows)
    return LayerPlan(False, dense)


def _layers(network: Network, rows: int, signs: int, intermediate: bool = True,
            candidates: Mapping[int, int] | None = None) -> list[tuple[int, tuple[int, ...]]]:
    """Per bounded layer: (rows per point, coefficient values per row at each affine step);
    ``intermediate=False``: the final rows only (intermediate bounds by interval arithmetic);
    ``candidates``: the most neurons bounded per point at each ReLU (default: all of them)."""
    layers = []
    for position in network.relu_positions if intermediate else ():
        steps = network.steps[:position]
        if mixing_maps(steps) > 1 or position != network.relu_positions[0]:
            shape = as_relu(network.steps[position]).shape
            count = math.prod(shape) if candidates is None else candidates[position]
            layers.append((count * signs, layer_plan(steps, shape).sizes))
    layers.append((rows, layer_plan(network.steps, network.output_shape).sizes))
    return layers


def coefficient_bytes_per_point(network: Network, rows: int, itemsize: int, *, signs: int,
                                intermediate: bool = True, candidates: Mapping[int, int] | None = None) -> int:
    """An upper bound of one point's share of the largest coefficient tensor (bytes); ``candidates``:
    the most neurons bounded per point at each ReLU position (default: every neuron)."""
    return itemsize * max(count * max(sizes, default=1)
                          for count, sizes in _layers(network, rows, signs, intermediate, candidates))


def bytes_per_point(network: Network, rows: int, itemsize: int, *, signs: int, autograd: bool,
                    slopes: str | None = None, intermediate: bool = True) -> int:
    """An upper bound of the memory one point needs (bytes): every ReLU layer's neurons
    (times ``signs`` bounded directions; not with ``intermediate=False``, CROWN-IBP) and the
    ``rows`` specification rows; ``slopes``: alpha-CROWN's free slopes, ``"final"`` (the final
    rows only) or ``"intermediate"`` (every layer's rows), or ``None``."""
    layers = _layers(network, rows, signs, intermediate)
    total = LIVE_COPIES * coefficient_bytes_per_point(network, rows, itemsize, signs=signs,
                                                      intermediate=intermediate)
    if autograd:
        total = itemsize * SAVED_COPIES * sum(count * sum(sizes) for count, sizes in layers)
    if slopes is not None:
        with_slopes = layers if slopes == "intermediate" else layers[-1:]
        total += itemsize * SLOPE_COPIES * sum(count * sum(sizes) for count, sizes in with_slopes)
    return total
