"""Counterexamples in the VNN-COMP text format, and their re-check on the network.

The format lists every input, then every output, one ``(NAME value)`` pair a line, all in
one pair of parentheses::

    ((X_0 0.25)
     (X_1 0.0)
     (Y_0 -1.5))

``X_i`` follows the row-major flattening of one model input; values are written with
``repr`` of a Python float, so a float64 reads back bit for bit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from shallowcert.errors import UserError
from shallowcert.verify.property import Property

_PAIR = re.compile(r"\(\s*([XY])_(\d+)\s+([^\s()]+)\s*\)")


def format_counterexample(x: torch.Tensor, y: torch.Tensor) -> str:
    """The VNN-COMP text of input ``x`` (any shape, flattened row-major) and output ``y``."""
    pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(x.detach().reshape(-1).tolist())]
    pairs += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(y.detach().reshape(-1).tolist())]
    return "(" + "\n ".join(pairs) + ")\n"


def read_counterexample(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and outputs of a VNN-COMP counterexample file, flat float64 ``(inputs,)``, ``(outputs,)``."""
    text = Path(path).read_text()
    values: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
    for kind, index, value in _PAIR.findall(text):
        try:
            values[kind][int(index)] = float(value)
        except ValueError:
            raise UserError(f"{path}: '{value}' is not a number") from None
    flat = []
    for kind in ("X", "Y"):
        found = values[kind]
        if sorted(found) != list(range(len(found))) or not found:
            raise UserError(f"{path}: {kind} values must be numbered {kind}_0, {kind}_1, ... without gaps")
        flat.append(torch.tensor([found[i] for i in range(len(found))], dtype=torch.float64))
    return flat[0], flat[1]


@dataclass(frozen=True)
class Recheck:
    """A candidate counterexample ``x`` run through the network: ``output`` (no batch
    dimension), whether ``x`` lies in the box and the property's ``violation`` of the output
    (``<= 0``: unsafe). ``holds`` is both: ``x`` is a genuine counterexample."""

    output: torch.Tensor
    in_box: bool
    violation: float

    @property
    def holds(self) -> bool:
        return self.in_box and self.violation <= 0.0


def recheck(model: nn.Module, prop: Property, x: torch.Tensor) -> Recheck:
    """Run ``model`` (in its own dtype and device) on ``x`` (one input, no batch dimension)."""
    parameter = next(iter(model.parameters()), None)
    dtype = parameter.dtype if parameter is not None else x.dtype
    device = parameter.device if parameter is not None else x.device
    with torch.no_grad():
        output = model(x.to(device=device, dtype=dtype).reshape(1, *prop.lower.shape))
    in_box = bool(prop.contains(x.reshape(1, *prop.lower.shape).to(prop.lower))[0])
    violation = float(prop.violation(output.to(torch.float64))[0])
    return Recheck(output[0], in_box, violation)
