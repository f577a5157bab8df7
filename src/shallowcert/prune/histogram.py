"""Histograms of the filters' L1 norms per conv layer (thesis figures 8.13/8.14).

One PNG per Conv2d, ``l1-norms-layer<position>.png``: the L1 norms ``sum |W[j]|`` of its
filters, the kept ones and the removed ones stacked in two colours.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from shallowcert.figures import new_figure, save_figure
from shallowcert.prune.ranking import conv_indices, filter_l1_norms


def plot_filter_norms(model: nn.Sequential, plan: Mapping[int, tuple[int, ...]], out_dir: str | Path,
                      *, bins: int = 20) -> list[Path]:
    """Write one histogram per conv layer of ``model`` (before pruning) into ``out_dir``."""
    paths = []
    for index in conv_indices(model):
        conv = model[index]
        assert isinstance(conv, nn.Conv2d)  # conv_indices: the Conv2d layers
        norms = filter_l1_norms(conv).cpu()
        removed = torch.zeros(len(norms), dtype=torch.bool)
        removed[list(plan.get(index, ()))] = True
        fig, ax = new_figure()
        ax.hist([norms[~removed].numpy(), norms[removed].numpy()], bins=bins, stacked=True,
                label=[f"kept ({int((~removed).sum())})", f"removed ({int(removed.sum())})"],
                color=["tab:blue", "tab:red"])
        ax.set_xlabel("filter L1 norm  sum |W|")
        ax.set_ylabel("filters")
        ax.set_title(f"layer {index}: Conv2d {conv.in_channels}->{conv.out_channels}, k={conv.kernel_size[0]}")
        ax.legend()
        path = Path(out_dir) / f"l1-norms-layer{index}.png"
        save_figure(fig, path)
        paths.append(path)
    return paths
