"""Where a CROWN-IBP training step's time goes: MACs, CPU time, GFLOP/s, profile by operator kind.

    python benchmarks/profile_crown_ibp.py [--specs wong-small cert-teacher] [--threads 1]

One step is ``robust_loss(model, x, y, 0.1, method="crown-ibp")``, backward and Adam on a batch
of 64 uniform 28x28 inputs from random initialisation. The MACs the method must do per example:
the IBP forward pass is 2 x the network's forward MACs (centre through ``W``, radius through
``|W|``), the CROWN back-substitution of the 9 margin rows 9 x (every map transposed once per
row), and the gradients 2 x both; GFLOP/s = 2 x MACs / CPU seconds. The CPU time is the median
of ``--steps`` steps of this process (steadier than wall time on a shared machine); the profile
sums ``torch.profiler``'s self CPU time of the ``aten::`` operators over 3 steps, by kind.
Also prints the GFLOP/s of a plain convolution, its transpose and a matrix product of the shapes
a wong-small step uses (rows of 64 points x 9 margins), for comparison. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from shallowcert.models import build
from shallowcert.robust.loss import robust_loss

KINDS = (("convolutions", ("conv", "col2im", "im2col", "mkldnn")),
         ("matrix products", ("mm", "bmm", "addmm", "matmul", "addmv", "dot")))
ROWS = 9  # margin rows of a 10-class problem


def forward_macs(model: nn.Sequential, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of one example (convolutions and linear layers)."""
    x, total = torch.zeros(1, *input_shape), 0
    for layer in model:
        y = layer(x)
        if isinstance(layer, nn.Conv2d):
            total += y.numel() * layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, nn.Linear):
            total += layer.in_features * layer.out_features
        x = y
    return total


def _kind(name: str) -> str:
    return next((kind for kind, keys in KINDS if any(key in name for key in keys)), "elementwise and other")


def profile_spec(spec: str, steps: int) -> dict:
    torch.manual_seed(0)
    model = build(spec, (1, 28, 28), 10)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def step() -> None:
        optimiser.zero_grad()
        robust_loss(model, x, y, 0.1, method="crown-ibp").loss.backward()
        optimiser.step()

    per_example = _median_cpu_seconds(step, steps) / 64
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            totals[_kind(event.key[len("aten::"):])] += event.self_cpu_time_total
    forward = forward_macs(model, (1, 28, 28))
    macs = 3 * (2 * forward + ROWS * forward)
    return {"spec": spec, "mmac": macs / 1e6, "cpu_ms": 1000 * per_example, "gflops": 2 * macs / per_example / 1e9,
            "shares": {kind: value / sum(totals.values()) for kind, value in totals.items()}}


def _median_cpu_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median CPU seconds of ``run()`` over ``repeats`` calls, after one warm-up call."""
    run()
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        seconds.append(time.process_time() - start)
    return statistics.median(seconds)


def _gflops(run: Callable[[], object], flops: float, repeats: int = 20) -> float:
    return flops / _median_cpu_seconds(run, repeats) / 1e9


def reference_rates() -> dict[str, float]:
    """GFLOP/s of wong-small's second convolution on 576 rows, its transpose, and a matrix product."""
    rows, weight = 576, torch.rand(32, 16, 4, 4)
    maps, grads = torch.rand(rows, 16, 14, 14), torch.rand(rows, 32, 7, 7)
    flops = 2 * rows * 32 * 49 * 256
    a, b = torch.rand(rows, 1568), torch.rand(1568, 100)
    return {"convolution": _gflops(lambda: F.conv2d(maps, weight, stride=2, padding=1), flops),
            "transposed convolution": _gflops(lambda: F.conv_transpose2d(grads, weight, stride=2, padding=1), flops),
            "matrix product 576x1568x100": _gflops(lambda: a @ b, 2 * rows * 1568 * 100)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["wong-small", "cert-teacher"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = [kind for kind, _ in KINDS] + ["elementwise and other"]
    print("| network | MMAC / example | CPU ms / example | GFLOP/s | " + " | ".join(kinds) + " |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in kinds) + " |")
    for spec in args.specs:
        row = profile_spec(spec, args.steps)
        shares = " | ".join(f"{100 * row['shares'].get(kind, 0.0):.0f}%" for kind in kinds)
        print(f"| {spec} | {row['mmac']:.1f} | {row['cpu_ms']:.2f} | {row['gflops']:.1f} | {shares} |")
    print("\n| reference operation | GFLOP/s |\n| --- | ---: |")
    for name, rate in reference_rates().items():
        print(f"| {name} | {rate:.0f} |")


if __name__ == "__main__":
    main()
