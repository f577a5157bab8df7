"""auto_LiRPA's side of ``benchmarks/maxpool.py``; runs in auto_LiRPA's own virtual environment.

    /work/lirpa-venv/bin/python benchmarks/lirpa_peer.py PROBLEM.pt RESULT.json [--threads T] [--chunk N]

``PROBLEM.pt`` (written by ``maxpool.py``, read with ``weights_only=True``): the layers of an
``nn.Sequential`` as ``[type, *arguments]`` lists, its state dict, the points ``x``, the margin
specification ``spec`` and the radius ``eps``. CROWN lower bounds of ``spec · f`` over the
L-inf ball (no domain clipping), float64, ``chunk`` points per ``compute_bounds`` call; writes the
bounds and the seconds spent in ``compute_bounds`` (model building excluded) as JSON.
This file is never imported by shallowcert.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from auto_LiRPA import BoundedModule, BoundedTensor
from auto_LiRPA.perturbations import PerturbationLpNorm
from torch import nn

LAYERS = {"Conv2d": nn.Conv2d, "ReLU": nn.ReLU, "MaxPool2d": nn.MaxPool2d, "AvgPool2d": nn.AvgPool2d,
          "Flatten": nn.Flatten, "Linear": nn.Linear}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem")
    parser.add_argument("result")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)  # its max-pool bounds build float32 buffers from the default dtype
    problem = torch.load(args.problem, weights_only=True)
    model = nn.Sequential(*(LAYERS[kind](*arguments) for kind, *arguments in problem["layers"]))
    model.load_state_dict(problem["state"])
    model = model.double().eval()
    x, spec, eps = problem["x"].double(), problem["spec"].double(), float(problem["eps"])
    bounded = BoundedModule(model, torch.zeros_like(x[:1]), device="cpu")
    bounds, seconds = [], 0.0
    for begin in range(0, len(x), args.chunk):
        points = x[begin:begin + args.chunk]
        inputs = BoundedTensor(points, PerturbationLpNorm(norm=float("inf"), eps=eps))
        start = time.perf_counter()
        lower, _ = bounded.compute_bounds(x=(inputs,), C=spec[begin:begin + args.chunk], method="CROWN",
                                          bound_upper=False)
        seconds += time.perf_counter() - start
        bounds.append(lower.detach())
    with open(args.result, "w") as handle:
        json.dump({"seconds": seconds, "lower": torch.cat(bounds).tolist(), "threads": args.threads,
                   "chunk": args.chunk}, handle)


if __name__ == "__main__":
    main()
