"""Helpers shared by the branch-and-bound tests."""

from __future__ import annotations

import torch

from shallowcert.verify.beta import SplitBounder


def random_splits(bounder: SplitBounder, count: int, per_domain: int, generator: torch.Generator,
                  ) -> tuple[torch.Tensor, ...]:
    """``count`` domains, each with ``per_domain`` random box-unstable neurons split either way."""
    states = [s.flatten(1).clone() for s in bounder.free_states(count)]
    flat = [(layer, int(j)) for layer, index in enumerate(bounder.unstable) for j in index]
    for n in range(count):
        for pick in torch.randperm(len(flat), generator=generator)[:per_domain].tolist():
            layer, j = flat[pick]
            states[layer][n, j] = 1 if bool(torch.rand(1, generator=generator) < 0.5) else -1
    return tuple(s.reshape(count, *shape) for s, shape in zip(states, bounder.base.shapes))
