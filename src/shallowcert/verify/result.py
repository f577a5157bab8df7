"""What the complete verifier answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

Status = Literal["unsat", "sat", "unknown", "timeout"]


@dataclass(frozen=True)
class VerificationResult:
    """``status``: ``unsat`` (the property holds: no input in the box is unsafe), ``sat`` (a
    counterexample was found and re-checked by running the network), ``unknown`` (the
    method gave up, e.g. a split budget ran out) or ``timeout``.

    ``counterexample``: for ``sat``, the input (shaped like one model input) and
    ``output`` the network's output on it; ``None`` otherwise. ``seconds``: wall time.
    ``method``: which part settled it (``bounds``, ``bab``, ``milp``, ``attack``).
    ``stats``: counts such as subdomains visited, for the JSON record.
    """

    status: Status
    seconds: float
    method: str
    counterexample: torch.Tensor | None = None
    output: torch.Tensor | None = None
    stats: dict[str, Any] = field(default_factory=dict)
