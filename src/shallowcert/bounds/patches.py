"""Back-substitution for single neurons of a convolutional layer, in patches.

A neuron at position ``(i, j)`` of a feature map depends only on a window of every earlier
map: going back through a map with ``(kernel k, stride s, padding p)`` a window of size ``P``
with top-left ``i * S - D`` becomes one of size ``(P - 1) * s + k`` with stride ``S * s`` and
offset ``D * s + p``. Coefficients are kept only on these windows (``(M, C, Ph, Pw)`` per
neuron), so a neuron after two 4x4 stride-2 convolutions costs a 10x10 input window instead
of the whole image. Maps (biases, ReLU slopes, the input box) are cut into the same windows
with zero padding, so coefficients that fall outside a map contribute nothing there; they are
zeroed explicitly only before an affine map, which would otherwise spread them inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shallowcert.bounds.affine import AffineMap
from shallowcert.bounds.network import Step, as_affine
from shallowcert.bounds.relaxation import Relaxation

Pair = tuple[int, int]


@dataclass(frozen=True)
class _Geometry:
    """Windows of size ``size`` at top-left ``position * stride - offset``."""

    size: Pair
    stride: Pair
    offset: Pair

    def back_through(self, kernel: Pair, stride: Pair, padding: Pair) -> _Geometry:
        return _Geometry(
            ((self.size[0] - 1) * stride[0] + kernel[0], (self.size[1] - 1) * stride[1] + kernel[1]),
            (self.stride[0] * stride[0], self.stride[1] * stride[1]),
            (self.offset[0] * stride[0] + padding[0], self.offset[1] * stride[1] + padding[1]),
        )


class _Neurons:
    """The selected neurons: point index, and flat window index per map geometry."""

    def __init__(self, index: torch.Tensor, target_hw: tuple[int, ...]) -> None:
        self.point, self.channel, row, col = index.unbind(1)
        self.target_hw = target_hw
        self.position = row * target_hw[1] + col                        # on the target map
        self.point_position = self.point * (target_hw[0] * target_hw[1]) + self.position

    def windows(self, maps: torch.Tensor, geometry: _Geometry, *, shared: bool = False) -> torch.Tensor:
        """Cut ``maps`` ``(B, C, H, W)`` into each neuron's window: ``(M, C, Ph, Pw)``.

        ``shared``: ``maps`` has batch size 1 and serves every point. The windows of every
        (point, position) are laid out as contiguous rows first (all channels of a position
        share one), then rows are gathered: much faster than indexing the strided view.
        """
        (ph, pw), (sh, sw), (dh, dw) = geometry.size, geometry.stride, geometry.offset
        (rows, cols), (height, width) = self.target_hw, maps.shape[-2:]
        pad_h = max(0, (rows - 1) * sh + ph - dh - height)
        pad_w = max(0, (cols - 1) * sw + pw - dw - width)
        padded = F.pad(maps, (dw, pad_w, dh, pad_h))
        views = padded.unfold(2, ph, sh).unfold(3, pw, sw)[:, :, :rows, :cols]  # (B, C, rows, cols, Ph, Pw)
        table = views.permute(0, 2, 3, 1, 4, 5).reshape(-1, maps.shape[1], ph, pw)
        return table.index_select(0, self.position if shared else self.point_position)


def _zero_outside(lam: torch.Tensor, steps: list[Step], index: int, neurons: _Neurons,
                  geometry: _Geometry) -> torch.Tensor:
    """Zero the coefficients of ``lam`` (windows on the input of ``steps[index]``) outside that map.

    Needed only before another affine map: a ReLU's slope and intercept windows and the
    input box's windows are cut with zero padding, so there such coefficients add nothing.
    """
    if index == 0 or not isinstance(steps[index - 1], AffineMap):
        return lam
    inside = torch.ones((1, 1, *as_affine(steps[index]).in_shape[1:]), dtype=lam.dtype, device=lam.device)
    return lam * neurons.windows(inside, geometry, shared=True)


def relu_windows(steps: list[Step], neurons: torch.Tensor, target_shape: tuple[int, ...],
                 maps: dict[int, torch.Tensor], *, repeat: int) -> dict[int, torch.Tensor]:
    """``maps[index]`` ``(N, C, H, W)``, a map at the ReLU ``steps[index]``, cut into the windows
    :func:`patch_back_substitute` uses there for ``neurons`` (repeated ``repeat`` times, one
    copy per sign): ``(repeat * M, C, Ph, Pw)`` per index."""
    chosen = _Neurons(neurons.repeat(repeat, 1), target_shape[1:])
    geometry = _Geometry((1, 1), (1, 1), (0, 0))
    windows = {}
    for index in range(len(steps) - 1, -1, -1):
        step = steps[index]
        if isinstance(step, AffineMap):
            geometry = geometry.back_through(*step.spatial_window())
        elif index in maps:
            windows[index] = chosen.windows(maps[index], geometry)
    return windows


def patch_back_substitute(steps: list[Step], neurons: torch.Tensor, target_shape: tuple[int, ...],
                          relaxations: dict[int, Relaxation], mid: torch.Tensor, rad: torch.Tensor, *,
                          signs: tuple[float, ...], slopes: dict[int, torch.Tensor] | None = None,
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of selected neurons of the output of ``steps`` (all spatial) over the input box.

    ``neurons`` is ``(M, 4)`` rows ``(point, channel, row, col)``; ``mid``/``rad`` the input box
    ``(N, C, H, W)``. For each sign ``σ`` in ``signs`` the neuron is multiplied by ``σ`` before
    bounding. Returns ``(lower, upper)`` of ``σ z`` per neuron, shaped ``(len(signs), M)``;
    ``upper`` is only valid for symmetric relaxations (the dual one).

    ``slopes`` (alpha-CROWN): lower slopes per bounded row on the windows of a ReLU
    (``slopes[index]`` ``(len(signs) * M, C, Ph, Pw)``, laid out as :func:`relu_windows`), used
    on its unstable neurons (positive intercept) instead of the relaxation's lower slope.
    """
    chosen = _Neurons(neurons, target_shape[1:])
    repeat, channels = len(signs), target_shape[0]
    chosen_all = _Neurons(neurons.repeat(repeat, 1), target_shape[1:])
    geometry = _Geometry((1, 1), (1, 1), (0, 0))
    lower = mid.new_zeros(repeat * neurons.shape[0])
    upper = mid.new_zeros(repeat * neurons.shape[0])
    table = torch.eye(channels, dtype=mid.dtype, device=mid.device).reshape(channels, channels, 1, 1)
    last = len(steps) - 1
    first = steps[last]
    if isinstance(first, AffineMap):  # A^T of the one-hot windows: one row per channel, shared
        if first.bias is not None:
            term = torch.cat([sign * first.bias.flatten(1)[chosen.channel, chosen.position] for sign in signs])
            lower, upper = lower + term, upper + term
        table = first.transpose_patch(table)
        geometry = geometry.back_through(*first.spatial_window())
        last -= 1
    lam = torch.cat([sign * table[chosen.channel] for sign in signs])
    if isinstance(first, AffineMap):
        lam = _zero_outside(lam, steps, last + 1, chosen_all, geometry)
    for index in range(last, -1, -1):
        step = steps[index]
        if isinstance(step, AffineMap):
            if step.bias is not None:
                term = (lam * chosen_all.windows(step.bias.unsqueeze(0), geometry, shared=True)).sum((1, 2, 3))
                lower, upper = lower + term, upper + term
            kernel, stride, padding = step.spatial_window()
            lam = step.transpose_patch(lam)
            geometry = geometry.back_through(kernel, stride, padding)
            lam = _zero_outside(lam, steps, index, chosen_all, geometry)
        else:
            relaxation = relaxations[index]
            intercept = chosen_all.windows(relaxation.upper_intercept.squeeze(1), geometry)
            term = lam * intercept  # intercepts are >= 0: the sign of lam splits the terms
            lower = lower + term.clamp(max=0).sum((1, 2, 3))
            upper = upper + term.clamp(min=0).sum((1, 2, 3))
            del term
            upper_slope = chosen_all.windows(relaxation.upper_slope.squeeze(1), geometry)
            if relaxation.lower_slope is relaxation.upper_slope:
                lam = lam * upper_slope
            else:
                lower_slope = chosen_all.windows(relaxation.lower_slope.squeeze(1), geometry)
                if slopes is not None and index in slopes:
                    lower_slope = torch.where(intercept > 0, slopes[index], lower_slope)
                lam = torch.where(lam > 0, lam * lower_slope, lam * upper_slope)
            del intercept
    centre = (lam * chosen_all.windows(mid, geometry)).sum((1, 2, 3))
    spread = (lam.abs() * chosen_all.windows(rad, geometry)).sum((1, 2, 3))
    return (centre - spread + lower).reshape(repeat, -1), (centre + spread + upper).reshape(repeat, -1)
