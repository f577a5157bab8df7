"""The auto_LiRPA side of ``benchmarks/lirpa.py``: a worker run in auto_LiRPA's own environment.

    /work/lirpa-venv/bin/python benchmarks/lirpa_peer.py

It imports only torch and auto_LiRPA (never shallowcert). Each line on stdin is the path of a
task file written by ``lirpa.py`` (``torch.save`` of plain tensors, lists and strings, read
with ``weights_only=True``); the worker runs it and answers with the path of a result file on
stdout. A task names the layers of an ``nn.Sequential`` (``["conv", in, out, kernel, stride,
padding]``, ``["maxpool", kernel, stride, padding]``, ``["relu"]``, ``["flatten"]``,
``["linear", in, out]``) with their state dict, the
threads, and either

* ``bounds``: lower bounds of ``C · f(x')`` over the L-inf ball ``eps`` around ``x`` by
  ``method`` (``IBP``, ``CROWN``, ``CROWN-IBP``, ``alpha-CROWN``) with the given
  ``bound_opts``; the result holds the bounds and the wall and CPU seconds of each repeat;
* ``train``: ``steps`` training steps of ``method`` (``CROWN-IBP`` or ``CROWN``) on one batch:
  the bounds ``J`` of the margin rows ``C`` (label minus each other class), the cross-entropy
  of the logits ``(0, -J)`` with target 0 (equal to ``CE(-J, y)`` with 0 at the label), backward
  and Adam (lr 1e-3); the result holds each step's loss and wall and CPU seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from auto_LiRPA import BoundedModule, BoundedTensor
from auto_LiRPA.perturbations import PerturbationLpNorm
from torch import nn


def build(layers: list[list]) -> nn.Sequential:
    """The ``nn.Sequential`` the layer list names (module docstring)."""
    modules: list[nn.Module] = []
    for kind, *sizes in layers:
        if kind == "conv":
            channels_in, channels_out, kernel, stride, padding = sizes
            modules.append(nn.Conv2d(channels_in, channels_out, kernel, stride=stride, padding=padding))
        elif kind == "maxpool":
            modules.append(nn.MaxPool2d(*sizes))
        elif kind == "linear":
            modules.append(nn.Linear(*sizes))
        elif kind == "relu":
            modules.append(nn.ReLU())
        elif kind == "flatten":
            modules.append(nn.Flatten())
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
    return nn.Sequential(*modules)


def _bounded(task: dict) -> tuple[nn.Sequential, BoundedModule]:
    net = build(task["layers"])
    net.load_state_dict(task["state"])
    net = net.to(task["x"].dtype)
    torch.set_default_dtype(task["x"].dtype)  # its max-pool bounds allocate buffers in the default dtype
    return net, BoundedModule(net, torch.empty_like(task["x"][:1]), bound_opts=task.get("bound_opts", {}),
                              device="cpu")


def _method(name: str) -> str:
    return "CROWN-Optimized" if name == "alpha-CROWN" else name


def _input(task: dict, x: torch.Tensor) -> BoundedTensor:
    eps = task["eps"]
    if task.get("domain") is not None:
        low, high = task["domain"]
        return BoundedTensor(x, PerturbationLpNorm(norm=float("inf"), x_L=(x - eps).clamp(min=low),
                                                   x_U=(x + eps).clamp(max=high)))
    return BoundedTensor(x, PerturbationLpNorm(norm=float("inf"), eps=eps))


def run_bounds(task: dict) -> dict:
    _, model = _bounded(task)
    x, spec, batch = task["x"], task["spec"], task["batch"]
    seconds, cpu, lower = [], [], None
    with torch.no_grad() if task["method"] != "alpha-CROWN" else torch.enable_grad():
        for _ in range(task["repeats"]):
            start, start_cpu = time.perf_counter(), time.process_time()
            parts = []
            for begin in range(0, len(x), batch):
                chunk = x[begin:begin + batch]
                bound, _ = model.compute_bounds(x=(_input(task, chunk),), C=spec[begin:begin + batch],
                                                method=_method(task["method"]), bound_upper=False)
                parts.append(bound.detach())
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            lower = torch.cat(parts)
    return {"lower": lower, "seconds": seconds, "cpu_seconds": cpu}


def run_train(task: dict) -> dict:
    _, model = _bounded(task)
    x, spec = task["x"], task["spec"]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    target = torch.zeros(len(x), dtype=torch.long)
    losses, seconds, cpu = [], [], []
    for _ in range(task["steps"]):
        start, start_cpu = time.perf_counter(), time.process_time()
        optimiser.zero_grad()
        bound, _ = model.compute_bounds(x=(_input(task, x),), C=spec, method=task["method"], bound_upper=False)
        loss = F.cross_entropy(torch.cat([torch.zeros_like(bound[:, :1]), -bound], 1), target)
        loss.backward()
        optimiser.step()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        losses.append(float(loss.detach()))
    return {"losses": losses, "seconds": seconds, "cpu_seconds": cpu}


def main() -> None:
    for line in sys.stdin:
        path = Path(line.strip())
        task = torch.load(path, weights_only=True)
        torch.set_num_threads(task["threads"])
        result = run_bounds(task) if task["kind"] == "bounds" else run_train(task)
        out = path.with_suffix(".result.pt")
        torch.save(result, out)
        print(out, flush=True)


if __name__ == "__main__":
    main()
